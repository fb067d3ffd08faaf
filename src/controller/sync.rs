//! One sync pass (leader only): fetch the branch, record new commits through Raft, and decide
//! the head: accepted whole as the new desired state, or rejected whole with every problem.

use crate::clock::now_millis;
use crate::manifest::{load_and_check, SourceFile};
use crate::raft::state::{object_key, Command, CommitRecord, DesiredChanges, Outcome};
use crate::scheduler::{kept_pods, place_pods, Load};
use crate::sync::{CommitId, CommitInfo, SyncError};

use super::{Controller, ControllerError};

/// Commits listed per fetch at most; older ones of a huge push are not recorded one by one.
const HISTORY_PER_FETCH: usize = 1000;

impl Controller {
    pub(super) async fn sync_once(
        &self,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<(), ControllerError> {
        let fetched = self.git.fetch_cancellable(shutdown).await.map(|f| f.head);
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
            // Nothing new: a webhook for a push already seen (or another branch) changes nothing.
            self.pending_trigger.lock().expect("trigger lock").take();
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
        let forced = history.head_move.is_forced();
        let mut infos = history.commits;
        if infos.is_empty() {
            // The head moved back to one of its ancestors (a reset and force-push): no commit
            // is new, but the move is. It is recorded once, as a new sighting of that commit.
            infos = vec![self.git.commit_info(head).await?];
        }
        let mut commits: Vec<CommitRecord> = infos
            .into_iter()
            .rev()
            .map(|c| record(c, seen_at))
            .collect();
        let trigger = self.pending_trigger.lock().expect("trigger lock").take();
        if let Some(newest) = commits.last_mut() {
            newest.forced = forced;
            if forced {
                newest.refers_to = history
                    .replaced
                    .clone()
                    .or_else(|| last_head.map(String::from));
            }
            if let Some(t) = trigger {
                newest.trigger = t;
            }
        }
        if forced {
            tracing::warn!(head = %head, "branch was force-pushed: the new head does not descend from {}", last_head.unwrap_or("-"));
        }
        self.raft.propose(Command::Seen { commits }).await?;
        Ok(())
    }

    async fn decide(&self, head: &CommitId) -> Result<(), ControllerError> {
        let sha = head.to_string();
        if let Some(refusal) = self.check_signature(head).await? {
            return self.reject(sha, vec![refusal]).await;
        }
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
            let host_paths = self.config.host_paths.clone();
            tokio::task::spawn_blocking(move || load_and_check(&files, &limits, &host_paths)).await
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
                // Hosts as the new commit's Node manifests describe them.
                let hosts = self.scheduler_hosts(&desired.nodes);
                // Until every host has been looked at once, new bare Pods stay pending (and
                // are placed by the pending key as soon as it has), instead of all landing on
                // the first hosts to answer.
                let looked = self.hosts_looked_at();
                let (unchanged, changes) = self.raft.state().read(|s| {
                    let mut load = Load::of(s, &hosts);
                    let pod_nodes = if looked {
                        place_pods(&desired, &s.pod_nodes, &mut load)
                    } else {
                        kept_pods(&desired, &s.pod_nodes, &load)
                    };
                    // Replicas keep their names, hosts and revisions; a replica from before
                    // revisions were recorded runs the RC's template of now.
                    let mut replicas = s.replicas.clone();
                    for rc in &s.desired.replication_controllers {
                        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
                        let revision = rc.template.revision();
                        for r in replicas.get_mut(&key).into_iter().flatten() {
                            if r.revision.is_empty() {
                                r.revision = revision.clone();
                            }
                        }
                    }
                    // Only what changed travels through Raft, against this desired commit.
                    let changes = DesiredChanges::between(s, &desired, &replicas, &pod_nodes);
                    (
                        s.desired_commit.is_some() && changes.manifests.is_empty(),
                        changes,
                    )
                });
                tracing::info!(commit = %sha, objects = desired.len(), unchanged, "commit accepted");
                let accepted = self
                    .raft
                    .propose(Command::AcceptChanges {
                        sha: sha.clone(),
                        changes,
                        unchanged,
                        at: now_millis(),
                    })
                    .await?;
                if !accepted.ok {
                    return Err(ControllerError::Refused {
                        what: format!("accepting commit {sha}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Records the head as rejected with every problem; the desired state stays as it was.
    async fn reject(&self, sha: String, errors: Vec<String>) -> Result<(), ControllerError> {
        tracing::warn!(commit = %sha, problems = errors.len(), "commit rejected: running state left as it was");
        let response = self
            .raft
            .propose(Command::Reject {
                sha: sha.clone(),
                errors,
                at: now_millis(),
            })
            .await?;
        if !response.ok {
            return Err(ControllerError::Refused {
                what: format!("rejecting commit {sha}"),
            });
        }
        Ok(())
    }

    /// In signed mode, why `head` may not be applied (unsigned, unknown signer, or an older
    /// signed commit replayed by a force-push), if it may not.
    async fn check_signature(&self, head: &CommitId) -> Result<Option<String>, ControllerError> {
        let Some(policy) = &self.config.signatures else {
            return Ok(None);
        };
        match self.git.verify_commit(head, policy).await {
            Ok(signer) => {
                tracing::info!(commit = %head, signer = %signer.principal, "signature verified")
            }
            Err(crate::sync::SignatureError::Sync(e)) => return Err(e.into()),
            Err(e) => return Ok(Some(format!("signature: {}", error_chain(&e)))),
        }
        if self.config.allow_signed_rewind {
            return Ok(None);
        }
        let applied = self
            .raft
            .state()
            .read(|s| s.desired_commit.clone())
            .and_then(|sha| CommitId::parse(&sha).ok());
        if let Some(applied) = applied {
            if applied != *head && !self.git.is_fast_forward(&applied, head).await? {
                return Ok(Some(format!(
                    "signature: {head} is not a fast-forward of the applied commit {applied}: an older signed commit is not replayed (--allow-signed-rewind allows it)"
                )));
            }
        }
        Ok(None)
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
