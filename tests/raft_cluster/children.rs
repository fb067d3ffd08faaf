//! Members in child processes (the test binary re-executed), for the `kill -9` test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Instant;

use tokio::process::{Child, Command};

use super::support::WAIT;

/// Member spec for a child process: `id;data dir;1=addr,2=addr,3=addr`.
pub const MEMBER_ENV: &str = "BERTH_TEST_RAFT_MEMBER";

pub fn peers_spec(addrs: &BTreeMap<u64, SocketAddr>) -> String {
    addrs
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Collects acks until there are `want`.
pub async fn await_acks(
    acks: &mut tokio::sync::mpsc::UnboundedReceiver<(u64, String)>,
    acked: &mut Vec<(u64, String)>,
    want: usize,
) {
    let started = Instant::now();
    while acked.len() < want {
        let left = (WAIT * 2).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, acks.recv()).await {
            Ok(Some(ack)) => acked.push(ack),
            other => panic!("{} of {want} acks: {other:?}", acked.len()),
        }
    }
}

pub fn spawn_member(id: u64, dir: &std::path::Path, addrs: &BTreeMap<u64, SocketAddr>) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_member_proposes_while_leader_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(
            MEMBER_ENV,
            format!("{id};{};{}", dir.display(), peers_spec(addrs)),
        )
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn member process")
}
