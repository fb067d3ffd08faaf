//! Exec instances: a command "run" in a running container, ending at once with the exit code
//! the container is set to give (the `sim.exec-exit-code` label or the control interface;
//! 0 by default) and no output.
//!
//! Docker forgets finished exec instances after a while; here each host keeps its last
//! [`KEPT`], so that probes running every few seconds do not grow the table forever.

use std::collections::{HashMap, VecDeque};

use super::container::{Status, EXEC_EXIT_CODE};
use super::Engine;
use crate::sim::error::Refusal;

/// Finished exec instances kept per host.
pub const KEPT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub cmd: Vec<String>,
    pub running: bool,
    /// Set once it has run.
    pub exit_code: Option<i64>,
    pub pid: u32,
}

#[derive(Debug, Default)]
pub struct Execs {
    by_id: HashMap<String, Exec>,
    order: VecDeque<String>,
}

impl Execs {
    pub fn forget_container(&mut self, container_id: &str) {
        self.by_id.retain(|_, e| e.container_id != container_id);
        let by_id = &self.by_id;
        self.order.retain(|id| by_id.contains_key(id));
    }
}

impl Engine {
    /// `POST /containers/{id}/exec`: a new exec instance of a running container.
    pub fn create_exec(&mut self, reference: &str, cmd: Vec<String>) -> Result<String, Refusal> {
        let container_id = self.resolve(reference)?.to_string();
        if self.containers[&container_id].run.status != Status::Running {
            return Err(Refusal::NotRunning(container_id));
        }
        let id = self.new_id();
        let line = cmd.join(" ");
        self.events.container(
            &self.containers[&container_id],
            &format!("exec_create: {line}"),
            &[("execID", id.clone())],
        );
        self.execs.order.push_back(id.clone());
        self.execs.by_id.insert(
            id.clone(),
            Exec {
                id: id.clone(),
                container_id,
                cmd,
                running: false,
                exit_code: None,
                pid: 0,
            },
        );
        while self.execs.order.len() > KEPT {
            if let Some(old) = self.execs.order.pop_front() {
                self.execs.by_id.remove(&old);
            }
        }
        Ok(id)
    }

    /// `POST /exec/{id}/start`: runs it to its end; returns its exit code.
    pub fn run_exec(&mut self, id: &str) -> Result<i64, Refusal> {
        let exec = self
            .execs
            .by_id
            .get(id)
            .ok_or_else(|| Refusal::NoSuchExec(id.to_string()))?;
        let c = self.container(&exec.container_id)?;
        if c.run.status != Status::Running {
            return Err(Refusal::NotRunning(c.id.clone()));
        }
        let code = c
            .exec_exit_code
            .or_else(|| c.label(EXEC_EXIT_CODE).and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let line = exec.cmd.join(" ");
        let container_id = exec.container_id.clone();
        let c = &self.containers[&container_id];
        let exec_id = [("execID", id.to_string())];
        self.events
            .container(c, &format!("exec_start: {line}"), &exec_id);
        self.events.container(
            c,
            "exec_die",
            &[("execID", id.to_string()), ("exitCode", code.to_string())],
        );
        self.seq += 1;
        let pid = 1000 + (self.seq % 4_000_000) as u32;
        let exec = self.execs.by_id.get_mut(id).expect("looked up above");
        exec.exit_code = Some(code);
        exec.pid = pid;
        Ok(code)
    }

    pub fn exec(&self, id: &str) -> Result<&Exec, Refusal> {
        self.execs
            .by_id
            .get(id)
            .ok_or_else(|| Refusal::NoSuchExec(id.to_string()))
    }

    /// Sets the exit code of the container's execs from now on (the control interface).
    pub fn set_exec_exit_code(&mut self, reference: &str, code: i64) -> Result<(), Refusal> {
        self.container_mut(reference)?.exec_exit_code = Some(code);
        Ok(())
    }
}
