//! What a pod asks of a host, and what a host has: CPU in millicores and memory in bytes.

use crate::manifest::quantity::{Cpu, Memory};
use crate::manifest::PodSpec;

/// CPU a pod that declares none is counted for: small, so such pods still spread by load
/// instead of piling onto one host as if they were free, yet forty fit on a 2-CPU host.
pub const DEFAULT_CPU_MILLIS: u64 = 50;
/// Memory a pod that declares none is counted for (64Mi).
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// An amount of CPU and memory: a host's capacity, what is allocated on it, or a pod's demand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Resources {
    /// Millicores.
    pub cpu: u64,
    /// Bytes.
    pub memory: u64,
}

impl Resources {
    pub fn new(cpu_millis: u64, memory_bytes: u64) -> Resources {
        Resources {
            cpu: cpu_millis,
            memory: memory_bytes,
        }
    }

    pub fn plus(self, o: Resources) -> Resources {
        Resources::new(
            self.cpu.saturating_add(o.cpu),
            self.memory.saturating_add(o.memory),
        )
    }

    pub fn minus(self, o: Resources) -> Resources {
        Resources::new(
            self.cpu.saturating_sub(o.cpu),
            self.memory.saturating_sub(o.memory),
        )
    }

    /// The `cpu=2,memory=4Gi` form of `--node-capacity` and the API.
    pub fn describe(self) -> String {
        format!("cpu={},memory={}", Cpu(self.cpu), Memory(self.memory))
    }

    /// Parses `cpu=2,memory=4Gi` (either may be left out: it then stays as `base` has it).
    pub fn parse_over(s: &str, base: Resources) -> Result<Resources, String> {
        let mut out = base;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("cpu", v)) => out.cpu = Cpu::parse(v).map_err(|e| format!("cpu: {e}"))?.0,
                Some(("memory", v)) => {
                    out.memory = Memory::parse(v).map_err(|e| format!("memory: {e}"))?.0
                }
                _ => return Err(format!("{part:?} is not cpu=QUANTITY or memory=QUANTITY")),
            }
        }
        Ok(out)
    }
}

/// What one instance of `spec` is counted for on its host: per container, its requests, or its
/// limits where it requests nothing (as Kubernetes defaults requests to limits); a resource no
/// container declares at all counts as the small default.
pub fn demand(spec: &PodSpec) -> Resources {
    let mut cpu: Option<u64> = None;
    let mut memory: Option<u64> = None;
    for c in &spec.containers {
        let r = &c.resources;
        if let Some(v) = r.requests.cpu.or(r.limits.cpu) {
            cpu = Some(cpu.unwrap_or(0).saturating_add(v.0));
        }
        if let Some(v) = r.requests.memory.or(r.limits.memory) {
            memory = Some(memory.unwrap_or(0).saturating_add(v.0));
        }
    }
    Resources::new(
        cpu.unwrap_or(DEFAULT_CPU_MILLIS),
        memory.unwrap_or(DEFAULT_MEMORY_BYTES),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::quantity::{Cpu, Memory};
    use crate::manifest::{Container, RestartPolicy};

    fn spec(containers: Vec<Container>) -> PodSpec {
        PodSpec {
            containers,
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 30,
        }
    }

    #[test]
    fn requests_then_limits_then_small_defaults() {
        let mut a = Container::new("a", "i:1");
        a.resources.requests.memory = Some(Memory(512 << 20));
        a.resources.limits.memory = Some(Memory(1 << 30));
        a.resources.limits.cpu = Some(Cpu(250));
        let mut b = Container::new("b", "i:1");
        b.resources.limits.memory = Some(Memory(100 << 20));
        assert_eq!(
            demand(&spec(vec![a, b])),
            Resources::new(250, (512 + 100) << 20)
        );
        assert_eq!(
            demand(&spec(vec![Container::new("c", "i:1")])),
            Resources::new(DEFAULT_CPU_MILLIS, DEFAULT_MEMORY_BYTES)
        );
    }

    #[test]
    fn capacities_parse_and_describe() {
        let r = Resources::parse_over("cpu=2,memory=4Gi", Resources::default()).unwrap();
        assert_eq!(r, Resources::new(2000, 4 << 30));
        assert_eq!(r.describe(), "cpu=2,memory=4Gi");
        let only_mem = Resources::parse_over("memory=1Gi", Resources::new(4000, 0)).unwrap();
        assert_eq!(only_mem, Resources::new(4000, 1 << 30));
        assert!(Resources::parse_over("disk=1", Resources::default()).is_err());
        assert!(Resources::parse_over("cpu=lots", Resources::default()).is_err());
    }
}
