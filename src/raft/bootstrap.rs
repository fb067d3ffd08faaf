//! Forming a new cluster from an explicit list of initial members, exactly once.
//!
//! openraft allows every initial member to call `initialize` with the same membership (they all
//! write the same first entry). berth does not, because of one case: a member whose data
//! directory was lost starts empty with the same command line, and re-initialising would
//! resurrect the initial membership next to a cluster that has moved on. So:
//!
//! - a data directory that already holds a log or a vote never initialises: it rejoins;
//! - with no peers, the member initialises a one-member cluster at once (as before clusters);
//! - otherwise only the member with the lowest id initialises, and only once a majority of the
//!   initial members answer its greeting (`/raft/hello`, authenticated) with the same cluster
//!   name and none of them reports an existing cluster. If one does, a cluster already exists:
//!   this member waits to be added (`berth cluster add`) instead.
//!
//! The other members wait for the leader's first AppendEntries. If the lowest member never comes
//! up, the cluster does not form: that is the price of never forming two.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::BasicNode;
use tokio_util::sync::CancellationToken;

use super::http_client::PeerClient;
use super::types::{NodeId, Raft};
use super::wire::{Hello, HELLO_PATH, PROTOCOL_VERSION};

/// How often the lowest member greets the others while it waits for a majority.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// What the greetings say.
#[derive(Debug, PartialEq, Eq)]
enum Census {
    /// Fewer than a majority answered (this member counts itself).
    Waiting { up: usize, needed: usize },
    /// A majority is up and nobody has a cluster yet.
    Ready,
    /// Member `id` already belongs to a cluster.
    Exists { id: NodeId },
}

fn census(
    me: NodeId,
    members: &BTreeMap<NodeId, BasicNode>,
    hellos: &[(NodeId, Hello)],
    cluster_name: &str,
) -> Census {
    if let Some((id, _)) = hellos.iter().find(|(_, h)| h.initialized) {
        return Census::Exists { id: *id };
    }
    let up = 1 + hellos
        .iter()
        .filter(|(id, h)| {
            *id != me
                && members.contains_key(id)
                && h.id == *id
                && h.cluster_name == cluster_name
                && h.protocol == PROTOCOL_VERSION
        })
        .count();
    let needed = members.len() / 2 + 1;
    if up >= needed {
        Census::Ready
    } else {
        Census::Waiting { up, needed }
    }
}

/// Greets every other initial member once.
async fn greet(
    client: &PeerClient,
    me: NodeId,
    members: &BTreeMap<NodeId, BasicNode>,
    timeout: Duration,
) -> Vec<(NodeId, Hello)> {
    let calls = members
        .iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, node)| {
            let request = client
                .request(reqwest::Method::GET, &node.addr, HELLO_PATH)
                .timeout(timeout);
            async move {
                let hello = request.send().await.ok()?.error_for_status().ok()?;
                Some((*id, hello.json::<Hello>().await.ok()?))
            }
        });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Run by the lowest initial member of a new data directory: waits for a majority, then
/// initialises the cluster, unless one exists. Ends early on `stop`.
pub(crate) async fn run(
    raft: Raft,
    client: PeerClient,
    cluster_name: String,
    members: BTreeMap<NodeId, BasicNode>,
    probe_timeout: Duration,
    stop: CancellationToken,
) {
    let me = raft.metrics().borrow().id;
    let mut last = None;
    loop {
        let hellos = greet(&client, me, &members, probe_timeout).await;
        let now = census(me, &members, &hellos, &cluster_name);
        match now {
            Census::Ready => break,
            Census::Exists { id } => {
                tracing::warn!(
                    existing = id,
                    "a cluster already exists around member {id}: not initialising; \
                     this member joins once a leader adds it (berth cluster add)"
                );
                return;
            }
            Census::Waiting { up, needed } if last.as_ref() != Some(&now) => {
                tracing::info!(up, needed, "waiting for a majority of the initial members");
            }
            Census::Waiting { .. } => {}
        }
        last = Some(now);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
        }
    }
    tracing::info!(members = ?members.keys().collect::<Vec<_>>(), "initialising the raft cluster");
    match raft.initialize(members).await {
        Ok(()) => {}
        // Someone else's leader reached this member first: the cluster exists, as intended.
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => tracing::info!("raft cluster already initialised"),
        Err(e) => tracing::error!(error = %e, "cannot initialise the raft cluster"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u64) -> BTreeMap<NodeId, BasicNode> {
        (1..=n)
            .map(|i| (i, BasicNode::new(format!("m{i}:1"))))
            .collect()
    }

    fn hello(id: NodeId, initialized: bool) -> (NodeId, Hello) {
        (
            id,
            Hello {
                id,
                cluster_name: "c".into(),
                initialized,
                protocol: PROTOCOL_VERSION,
                berth_version: "0".into(),
            },
        )
    }

    #[test]
    fn three_members_form_once_two_are_up() {
        assert_eq!(
            census(1, &members(3), &[], "c"),
            Census::Waiting { up: 1, needed: 2 }
        );
        assert_eq!(
            census(1, &members(3), &[hello(3, false)], "c"),
            Census::Ready
        );
    }

    #[test]
    fn five_members_need_three() {
        assert_eq!(
            census(1, &members(5), &[hello(2, false)], "c"),
            Census::Waiting { up: 2, needed: 3 }
        );
    }

    #[test]
    fn an_existing_cluster_is_never_initialised_again() {
        assert_eq!(
            census(1, &members(3), &[hello(2, false), hello(3, true)], "c"),
            Census::Exists { id: 3 }
        );
    }

    #[test]
    fn members_of_another_cluster_do_not_count() {
        let mut other = hello(2, false);
        other.1.cluster_name = "other".into();
        assert_eq!(
            census(1, &members(3), &[other], "c"),
            Census::Waiting { up: 1, needed: 2 }
        );
    }
}
