//! Running the machine's tools (`ip`, `iptables`, `kill`, `htpasswd`) from the test helpers.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Runs `command` and fails with its stderr when it exits non-zero: for set-up steps,
/// where a half-done step would make a test fail later for a reason far harder to read.
pub fn run(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `command` with `input` on its stdin, checked like [`run`]. `ip -batch -` takes
/// several changes in one process, which keeps an engine's start short.
pub fn run_with_input(command: &mut Command, input: &str) -> Result<String> {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {command:?}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("writing to {command:?}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}) on input:\n{input}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a best-effort cleanup command: failures are expected (already gone) and ignored.
pub fn quiet(command: &mut Command) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok();
}

/// Signals one process by its pid (never by name: other engines run beside ours).
pub fn signal(pid: u32, signal: &str) {
    quiet(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string()),
    );
}

/// Whether `tool` is an executable file on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}
