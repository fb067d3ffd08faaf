//! One sync pass (leader only): fetch the branch, record new commits through Raft, and decide
//! the head: accepted whole as the new desired state, or rejected whole with every problem.

use crate::manifest::{load_files, SourceFile};
use crate::raft::state::{Command, CommitRecord, Outcome};
use crate::scheduler::{place, Host, Placement};
use crate::sync::{CommitId, CommitInfo, SyncError};

use super::live::now_millis;
use super::{Controller, ControllerError};

/// Commits listed per fetch at most; older ones of a huge push are not recorded one by one.
const HISTORY_PER_FETCH: usize = 1000;

impl Controller {
    pub(super) async fn sync_once(&self) -> Result<(), ControllerError> {
        let fetched = self.git.fetch().await;
        {
            let mut live = self.live.write().expect("live lock");
            live.git.last_fetch = Some(now_millis());
            match &fetched {
                Ok(head) => {
                    live.git.ok = true;
                    live.git.error = None;
                    live.git.head = Some(head.to_string());
                }
                Err(e) => {
                    live.git.ok = false;
                    live.git.error = Some(error_chain(e));
                }
            }
        }
        let head = fetched?;
        let sha = head.to_string();
        let (last_head, pending) = self.raft.state().read(|s| {
            (
                s.last_head.clone(),
                s.commit(&sha)
                    .map(|c| c.outcome == Outcome::Pending)
                    .unwrap_or(false),
            )
        });
        if last_head.as_deref() == Some(sha.as_str()) && !pending {
            return Ok(());
        }
        if last_head.as_deref() != Some(sha.as_str()) {
            self.record_seen(last_head.as_deref(), &head).await?;
        }
        self.decide(&head).await
    }

    async fn record_seen(
        &self,
        last_head: Option<&str>,
        head: &CommitId,
    ) -> Result<(), ControllerError> {
        let old = last_head.and_then(|s| CommitId::parse(s).ok());
        let history = match self
            .git
            .history_between(old.as_ref(), head, HISTORY_PER_FETCH)
            .await
        {
            Ok(h) => h,
            // The old head vanished with a force-push before it was ever fetched here.
            Err(SyncError::CommitNotFound { .. }) => {
                self.git.history_between(None, head, 1).await?
            }
            Err(e) => return Err(e.into()),
        };
        let seen_at = now_millis();
        let mut commits: Vec<CommitRecord> = history
            .commits
            .into_iter()
            .rev()
            .map(|c| record(c, seen_at))
            .collect();
        if let Some(newest) = commits.last_mut() {
            newest.forced = history.forced;
        }
        if history.forced {
            tracing::warn!(head = %head, "branch was force-pushed: the new head does not descend from {}", last_head.unwrap_or("-"));
        }
        self.raft.propose(Command::Seen { commits }).await?;
        Ok(())
    }

    async fn decide(&self, head: &CommitId) -> Result<(), ControllerError> {
        let sha = head.to_string();
        let limits = &self.config.limits;
        let files = match self.git.read_tree(head, &self.config.path, limits).await {
            Ok(files) => files,
            Err(e @ SyncError::SubdirNotFound { .. }) => {
                return self.reject(sha, vec![error_chain(&e)]).await
            }
            Err(SyncError::OverBudget { problems, .. }) => {
                let errors = problems.iter().map(ToString::to_string).collect();
                return self.reject(sha, errors).await;
            }
            Err(e) => return Err(e.into()),
        };
        let files: Vec<SourceFile> = files
            .into_iter()
            .map(|f| SourceFile {
                path: f.path,
                bytes: f.bytes,
            })
            .collect();
        // Parsing a tree within budget is still CPU work (up to 64 MiB of YAML): off the
        // async runtime, so the status API and the engine keep answering meanwhile.
        let checked = {
            let limits = *limits;
            tokio::task::spawn_blocking(move || load_files(&files, &limits)).await
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                return self
                    .reject(sha, vec![format!("validating the tree failed: {e}")])
                    .await
            }
        };
        match checked {
            Err(problems) => {
                let errors = problems.iter().map(ToString::to_string).collect();
                self.reject(sha, errors).await?;
            }
            Ok(desired) => {
                // "Changes no manifest": the decoded objects are identical (comments, README files
                // and formatting do not count).
                let (unchanged, current) = self.raft.state().read(|s| {
                    (
                        s.desired_commit.is_some() && s.desired == desired,
                        Placement {
                            replicas: s.replicas.clone(),
                            pod_nodes: s.pod_nodes.clone(),
                        },
                    )
                });
                let placement = place(&desired, &current, &self.hosts_for_scheduler(), &sha);
                tracing::info!(commit = %sha, objects = desired.len(), unchanged, "commit accepted");
                self.raft
                    .propose(Command::Accept {
                        sha,
                        desired,
                        replicas: placement.replicas,
                        pod_nodes: placement.pod_nodes,
                        unchanged,
                        at: now_millis(),
                    })
                    .await?;
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Records the head as rejected with every problem; the desired state stays as it was.
    async fn reject(&self, sha: String, errors: Vec<String>) -> Result<(), ControllerError> {
        tracing::warn!(commit = %sha, problems = errors.len(), "commit rejected: running state left as it was");
        self.raft
            .propose(Command::Reject {
                sha,
                errors,
                at: now_millis(),
            })
            .await?;
        Ok(())
    }

    pub(super) fn hosts_for_scheduler(&self) -> Vec<Host> {
        let live = self.live.read().expect("live lock");
        self.config
            .nodes
            .iter()
            .map(|n| Host {
                name: n.name.clone(),
                ready: live.nodes.get(&n.name).is_some_and(|s| s.ready),
            })
            .collect()
    }
}

fn record(c: CommitInfo, seen_at: u64) -> CommitRecord {
    CommitRecord::pending(c.sha, c.parents, c.author, c.message, c.time, seen_at)
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
