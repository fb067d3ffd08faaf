//! The simulated process of a container: starting it, signals, dying, and Docker's restart
//! policy. A container "runs" until a signal it does not ignore or a crash (through the
//! control interface) ends it.
//!
//! Docker's rules kept here, because berth depends on them: a signal sent through the API marks
//! the container manually stopped, so its restart policy does not bring it back; a crash does
//! not, so `always` (and `on-failure` for a non-zero exit) restarts it after a backoff that
//! starts at 100 ms and doubles while it keeps exiting within 10 s, counting `RestartCount`.
//! A container joining `container:<id>` starts only while that one runs.

use std::time::Duration;

use super::container::Status;
use super::Engine;
use crate::sim::error::Refusal;
use crate::sim::time::now;

/// A container ran at least this long: its restart backoff starts over.
const STEADY: u64 = 10_000_000_000;
/// Docker's longest restart backoff.
const MAX_BACKOFF_MS: u64 = 60_000;

/// A policy restart the caller must run after `delay` ([`Engine::policy_restart`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRestart {
    pub id: String,
    pub generation: u64,
    pub delay: Duration,
}

/// A signal by name (`SIGTERM`, `term`) or number, as Docker parses it.
pub fn parse_signal(raw: &str) -> Result<i32, Refusal> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    if let Ok(n) = raw.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| i as i32 + 1)
        .ok_or_else(|| Refusal::BadRequest(format!("Invalid signal: {raw}")))
}

impl Engine {
    /// Starts a container: `Ok(false)` when it already runs (Docker's 304).
    pub fn start(&mut self, reference: &str) -> Result<bool, Refusal> {
        let id = self.resolve(reference)?.to_string();
        if self.containers[&id].run.status == Status::Running {
            return Ok(false);
        }
        self.start_id(&id).map(|()| true)
    }

    fn start_id(&mut self, id: &str) -> Result<(), Refusal> {
        let c = &self.containers[id];
        let mode = c.spec.network_mode.clone();
        if let Some(owner) = c.network_owner() {
            let joined = match self.resolve(owner) {
                Err(e) => Err(e),
                Ok(oid) if oid == id => Err(Refusal::BadRequest("cannot join own network".into())),
                Ok(oid) if self.containers[oid].run.status != Status::Running => {
                    Err(Refusal::JoinNotRunning(owner.to_string()))
                }
                Ok(_) => Ok(()),
            };
            if let Err(e) = joined {
                return Err(self.failed_start(id, e));
            }
        }
        let own_network = !mode.starts_with("container:") && mode != "host" && mode != "none";
        let (published, ip) = if own_network {
            let (name, bindings) = (c.name.clone(), c.spec.port_bindings.clone());
            match self.allocate_ports(&name, &bindings) {
                Ok(p) => (p, Some(self.allocate_ip())),
                Err(e) => return Err(self.failed_start(id, e)),
            }
        } else {
            (Vec::new(), None)
        };
        self.seq += 1;
        let pid = 1000 + (self.seq % 4_000_000) as u32;
        let c = self
            .containers
            .get_mut(id)
            .expect("started id is in the table");
        let run = &mut c.run;
        run.status = Status::Running;
        run.pid = pid;
        run.exit_code = 0;
        run.error.clear();
        run.started_at = now();
        run.manually_stopped = false;
        run.generation += 1;
        run.ip = ip;
        run.published = published;
        self.events.container(&self.containers[id], "start", &[]);
        Ok(())
    }

    /// Docker's record of a start that failed: the error, and exit code 128 if none.
    fn failed_start(&mut self, id: &str, e: Refusal) -> Refusal {
        let c = self
            .containers
            .get_mut(id)
            .expect("started id is in the table");
        c.run.error = e.to_string();
        if c.run.exit_code == 0 {
            c.run.exit_code = 128;
        }
        e
    }

    /// Sends signal `signo`; returns whether the container died of it. A container waiting
    /// to restart just stays stopped.
    pub fn signal(&mut self, reference: &str, signo: i32) -> Result<bool, Refusal> {
        let id = self.resolve(reference)?.to_string();
        let c = &self.containers[&id];
        if !c.is_running() {
            return Err(Refusal::KillNotRunning {
                reference: reference.to_string(),
                id,
            });
        }
        self.events
            .container(c, "kill", &[("signal", signo.to_string())]);
        let c = self
            .containers
            .get_mut(&id)
            .expect("resolved id is in the table");
        c.run.manually_stopped = true;
        if c.run.status == Status::Restarting {
            c.run.status = Status::Exited;
            c.run.generation += 1;
            return Ok(true);
        }
        if !c.dies_of(signo) {
            return Ok(false);
        }
        let restart = self.die(&id, 128 + i64::from(signo));
        debug_assert!(
            restart.is_none(),
            "a signalled container is manually stopped"
        );
        Ok(true)
    }

    /// The process of a running container exits with `exit_code` by itself (the control
    /// interface's crash): its restart policy applies.
    pub fn crash(
        &mut self,
        reference: &str,
        exit_code: i64,
    ) -> Result<Option<PendingRestart>, Refusal> {
        let id = self.resolve(reference)?.to_string();
        if self.containers[&id].run.status != Status::Running {
            return Err(Refusal::NotRunning(id));
        }
        Ok(self.die(&id, exit_code))
    }

    /// The process ended: the container stops, and restarts later if its policy says so.
    fn die(&mut self, id: &str, exit_code: i64) -> Option<PendingRestart> {
        let base = self.restart_base_ms;
        let c = self
            .containers
            .get_mut(id)
            .expect("dying id is in the table");
        let finished = now();
        let ran = finished.saturating_sub(c.run.started_at);
        let run = &mut c.run;
        run.status = Status::Exited;
        run.exit_code = exit_code;
        run.finished_at = finished;
        run.pid = 0;
        run.ip = None;
        run.published.clear();
        run.generation += 1;
        let policy = c
            .spec
            .restart
            .clone()
            .unwrap_or(super::container::RestartPolicy {
                name: String::new(),
                max_retries: 0,
            });
        let restarts = !c.run.manually_stopped
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    exit_code != 0
                        && (policy.max_retries <= 0
                            || i64::from(c.run.restart_count) < policy.max_retries)
                }
                _ => false,
            };
        let pending = restarts.then(|| {
            let run = &mut c.run;
            run.status = Status::Restarting;
            run.backoff_ms = if ran >= STEADY || run.backoff_ms == 0 {
                base
            } else {
                (run.backoff_ms * 2).min(MAX_BACKOFF_MS)
            };
            PendingRestart {
                id: id.to_string(),
                generation: run.generation,
                delay: Duration::from_millis(run.backoff_ms),
            }
        });
        self.events.container(
            &self.containers[id],
            "die",
            &[("exitCode", exit_code.to_string())],
        );
        pending
    }

    /// Runs a restart the policy asked for, unless the container was stopped, removed or
    /// started meanwhile. A restart that cannot start (its network owner is down) leaves the
    /// container exited with the error, where Docker would keep trying.
    pub fn policy_restart(&mut self, pending: &PendingRestart) {
        let Some(c) = self.containers.get_mut(&pending.id) else {
            return;
        };
        if c.run.generation != pending.generation || c.run.status != Status::Restarting {
            return;
        }
        c.run.restart_count += 1;
        if self.start_id(&pending.id).is_err() {
            let c = self.containers.get_mut(&pending.id).expect("checked above");
            c.run.status = Status::Exited;
        }
    }

    /// Publishes the event of a finished API stop or restart (`stop`, `restart`).
    pub fn announce(&mut self, id: &str, action: &str) {
        if let Some(c) = self.containers.get(id) {
            self.events.container(c, action, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_or_number() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("kill"), Ok(9));
        assert_eq!(parse_signal("10"), Ok(10));
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
