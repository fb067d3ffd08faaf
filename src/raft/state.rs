//! The replicated state: what every controller agrees on, changed only by applying `Command`s in
//! log order.
//!
//! `apply` is deterministic and does no I/O: timestamps and random names are chosen by the
//! leader and travel inside the commands, so every replica computes the same state.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::manifest::Manifests;

/// How many commits of history are kept before the oldest are dropped.
pub const HISTORY_LIMIT: usize = 50_000;

/// Milliseconds since the Unix epoch, from the leader's clock.
pub type Millis = u64;

/// What became of a Git commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Seen, not yet validated.
    Pending,
    /// Valid and now the desired state; containers are being brought in line.
    Applying,
    /// Every step of its plan ran.
    Applied,
    /// Invalid: the running state was left exactly as it was.
    Rejected,
    /// Valid, but some steps failed (see `errors`); retried on the next pass.
    Failed,
    /// A newer head arrived before this commit was handled.
    Superseded,
}

/// One Git commit as berth saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub sha: String,
    pub parents: Vec<String>,
    pub author: String,
    pub message: String,
    /// Commit time, seconds since the epoch (from Git).
    pub time: i64,
    pub outcome: Outcome,
    pub errors: Vec<String>,
    /// True when this head replaced a history it does not descend from (force-push).
    pub forced: bool,
    /// True when the commit changed no manifest (no Docker call was made for it).
    pub unchanged: bool,
    pub seen_at: Millis,
    pub applied_at: Option<Millis>,
    pub converged_at: Option<Millis>,
    /// The steps executed for this commit, as human-readable lines.
    pub plan: Vec<String>,
}

/// Bytes of a commit message or author kept in the replicated history. Messages are for
/// people to recognise a commit; a pushed 50 MB message must not travel through Raft.
pub const MAX_TEXT_BYTES: usize = 4 << 10;

/// `text` cut to at most `max` bytes (on a character boundary), with a marker saying how much
/// was dropped, so nobody mistakes a cut message for the whole.
pub fn truncated(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… [truncated: {} more bytes]",
        &text[..cut],
        text.len() - cut
    )
}

impl CommitRecord {
    /// A commit just seen: `pending`, nothing applied yet. Message and author are truncated to
    /// [`MAX_TEXT_BYTES`].
    pub fn pending(
        sha: String,
        parents: Vec<String>,
        author: String,
        message: String,
        time: i64,
        seen_at: Millis,
    ) -> CommitRecord {
        CommitRecord {
            sha,
            parents,
            author: truncated(author, MAX_TEXT_BYTES),
            message: truncated(message, MAX_TEXT_BYTES),
            time,
            outcome: Outcome::Pending,
            errors: Vec::new(),
            forced: false,
            unchanged: false,
            seen_at,
            applied_at: None,
            converged_at: None,
            plan: Vec::new(),
        }
    }
}

/// A replica of a ReplicationController: its name (unique, never reused) and host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Replica {
    pub name: String,
    pub node: String,
}

/// `namespace/name` of a ReplicationController or Pod.
pub type ObjectKey = String;

pub fn object_key(namespace: &str, name: &str) -> ObjectKey {
    format!("{namespace}/{name}")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The desired state of the last accepted commit, and that commit.
    pub desired: Manifests,
    pub desired_commit: Option<String>,
    /// Newest last. Capped at `HISTORY_LIMIT`.
    pub history: VecDeque<CommitRecord>,
    /// The last head handled, whatever its outcome: the next fetch is compared with it.
    pub last_head: Option<String>,
    /// Replica names and hosts per RC, committed before any container exists.
    pub replicas: BTreeMap<ObjectKey, Vec<Replica>>,
    /// Host of each bare Pod.
    pub pod_nodes: BTreeMap<ObjectKey, String>,
}

/// The changes a leader can propose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A new head (last in `commits`, newest last) was fetched; the older ones are superseded.
    Seen { commits: Vec<CommitRecord> },
    /// The head is valid: it becomes the desired state, with its replicas placed.
    Accept {
        sha: String,
        desired: Manifests,
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        unchanged: bool,
        at: Millis,
    },
    /// The head is invalid: recorded with every problem; the desired state does not change.
    Reject {
        sha: String,
        errors: Vec<String>,
        at: Millis,
    },
    /// Replica placement changed without a new commit (a host came or went).
    Place {
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
    },
    /// A reconcile pass for `sha` ran: its steps, the errors of those that failed.
    Executed {
        sha: String,
        plan: Vec<String>,
        errors: Vec<String>,
        at: Millis,
    },
    /// Everything observed matches the desired state of `sha`.
    Converged { sha: String, at: Millis },
}

/// What `apply` answers to the proposer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// False when the command referred to a commit the state does not know (stale proposal).
    pub ok: bool,
}

impl ClusterState {
    pub fn commit(&self, sha: &str) -> Option<&CommitRecord> {
        self.history.iter().rev().find(|c| c.sha == sha)
    }

    fn commit_mut(&mut self, sha: &str) -> Option<&mut CommitRecord> {
        self.history.iter_mut().rev().find(|c| c.sha == sha)
    }

    pub fn apply(&mut self, cmd: Command) -> Response {
        let ok = match cmd {
            Command::Seen { commits } => {
                let n = commits.len();
                // A sha may appear again (a force-push back to an old commit): each sighting is
                // its own record, and lookups find the newest.
                for (i, mut c) in commits.into_iter().enumerate() {
                    if i + 1 < n {
                        c.outcome = Outcome::Superseded;
                    } else {
                        self.last_head = Some(c.sha.clone());
                    }
                    self.history.push_back(c);
                }
                while self.history.len() > HISTORY_LIMIT {
                    self.history.pop_front();
                }
                true
            }
            Command::Accept {
                sha,
                desired,
                replicas,
                pod_nodes,
                unchanged,
                at,
            } => match self.commit_mut(&sha) {
                Some(c) => {
                    c.outcome = Outcome::Applying;
                    c.unchanged = unchanged;
                    if unchanged {
                        c.outcome = Outcome::Applied;
                        c.applied_at = Some(at);
                    }
                    self.desired = desired;
                    self.desired_commit = Some(sha);
                    self.replicas = replicas;
                    self.pod_nodes = pod_nodes;
                    true
                }
                None => false,
            },
            Command::Reject { sha, errors, at } => match self.commit_mut(&sha) {
                Some(c) => {
                    c.outcome = Outcome::Rejected;
                    c.errors = errors;
                    c.applied_at = Some(at);
                    true
                }
                None => false,
            },
            Command::Place {
                replicas,
                pod_nodes,
            } => {
                self.replicas = replicas;
                self.pod_nodes = pod_nodes;
                true
            }
            Command::Executed {
                sha,
                plan,
                errors,
                at,
            } => match self.commit_mut(&sha) {
                Some(c) => {
                    if !plan.is_empty() || c.plan.is_empty() {
                        c.plan = plan;
                    }
                    c.outcome = if errors.is_empty() {
                        Outcome::Applied
                    } else {
                        Outcome::Failed
                    };
                    c.errors = errors;
                    c.applied_at.get_or_insert(at);
                    true
                }
                None => false,
            },
            Command::Converged { sha, at } => match self.commit_mut(&sha) {
                Some(c) => {
                    c.outcome = Outcome::Applied;
                    c.errors.clear();
                    c.applied_at.get_or_insert(at);
                    c.converged_at.get_or_insert(at);
                    true
                }
                None => false,
            },
        };
        Response { ok }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn record(sha: &str) -> CommitRecord {
        CommitRecord::pending(
            sha.into(),
            vec![],
            "A <a@example.org>".into(),
            "m".into(),
            0,
            1,
        )
    }

    #[test]
    fn older_commits_of_a_fetch_are_superseded_and_the_head_is_pending() {
        let mut s = ClusterState::default();
        s.apply(Command::Seen {
            commits: vec![record("a"), record("b")],
        });
        assert_eq!(s.commit("a").unwrap().outcome, Outcome::Superseded);
        assert_eq!(s.commit("b").unwrap().outcome, Outcome::Pending);
        assert_eq!(s.last_head.as_deref(), Some("b"));
    }

    #[test]
    fn a_rejected_commit_leaves_the_desired_state_alone() {
        let mut s = ClusterState::default();
        s.apply(Command::Seen {
            commits: vec![record("a")],
        });
        s.apply(Command::Accept {
            sha: "a".into(),
            desired: Manifests::default(),
            replicas: BTreeMap::new(),
            pod_nodes: BTreeMap::new(),
            unchanged: false,
            at: 2,
        });
        s.apply(Command::Seen {
            commits: vec![record("b")],
        });
        let r = s.apply(Command::Reject {
            sha: "b".into(),
            errors: vec!["x".into()],
            at: 3,
        });
        assert!(r.ok);
        assert_eq!(s.desired_commit.as_deref(), Some("a"));
        assert_eq!(s.commit("b").unwrap().outcome, Outcome::Rejected);
        assert_eq!(s.last_head.as_deref(), Some("b"));
    }

    #[test]
    fn commands_about_unknown_commits_are_refused() {
        let mut s = ClusterState::default();
        assert!(
            !s.apply(Command::Converged {
                sha: "x".into(),
                at: 1
            })
            .ok
        );
    }

    #[test]
    fn long_messages_are_cut_with_a_marker_on_a_character_boundary() {
        let long = "é".repeat(3000); // 6000 bytes
        let r = CommitRecord::pending("a".into(), vec![], "A".into(), long, 0, 1);
        assert!(r.message.len() < MAX_TEXT_BYTES + 40, "{}", r.message.len());
        assert!(
            r.message.ends_with("… [truncated: 1904 more bytes]"),
            "{}",
            &r.message[4000..]
        );
        assert_eq!(truncated("short".into(), 10), "short");
    }

    #[test]
    fn history_is_capped_oldest_first() {
        let mut s = ClusterState::default();
        for i in 0..HISTORY_LIMIT + 5 {
            s.apply(Command::Seen {
                commits: vec![record(&i.to_string())],
            });
        }
        assert_eq!(s.history.len(), HISTORY_LIMIT);
        assert_eq!(s.history.front().unwrap().sha, "5");
    }
}
