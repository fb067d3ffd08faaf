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
        // One entry per batch that fits well inside an append request: a follower that is
        // behind receives each entry whole, and 1,000 long messages would make one entry of
        // megabytes. Every batch but the last is recorded superseded, as one entry would have
        // recorded it; a leader lost between batches leaves the rest to the next fetch.
        for commits in seen_batches(commits, SEEN_BATCH_BYTES) {
            self.raft.propose(Command::Seen { commits }).await?;
        }
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

/// Largest `Seen` entry proposed, roughly: half of what one append request carries
/// (`raft::http_client::MAX_APPEND_BYTES`), so an entry is never larger than a batch.
const SEEN_BATCH_BYTES: usize = crate::raft::http_client::MAX_APPEND_BYTES / 2;

/// `commits` (oldest first) cut into batches of about `max_bytes` each, in order. Every commit
/// of a batch other than the last is marked superseded: only the last commit of all is the new
/// head.
fn seen_batches(commits: Vec<CommitRecord>, max_bytes: usize) -> Vec<Vec<CommitRecord>> {
    // JSON of a record: its texts and shas plus about 300 bytes of field names and numbers.
    let size = |c: &CommitRecord| {
        300 + c.sha.len()
            + c.author.len()
            + c.message.len()
            + c.parents.iter().map(|p| p.len() + 3).sum::<usize>()
            + c.refers_to.as_ref().map_or(0, String::len)
    };
    let mut batches: Vec<Vec<CommitRecord>> = Vec::new();
    let mut bytes = 0;
    for c in commits {
        let n = size(&c);
        match batches.last_mut() {
            Some(batch) if bytes + n <= max_bytes => batch.push(c),
            _ => {
                batches.push(vec![c]);
                bytes = 0;
            }
        }
        bytes += n;
    }
    let last = batches.len().saturating_sub(1);
    for batch in &mut batches[..last] {
        for c in batch {
            c.outcome = Outcome::Superseded;
        }
    }
    batches
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

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(i: usize, message_bytes: usize) -> CommitRecord {
        CommitRecord::pending(
            format!("{i:040x}"),
            vec![format!("{:040x}", i.saturating_sub(1))],
            "A U Thor <a@example.org>".into(),
            "m".repeat(message_bytes),
            0,
            0,
        )
    }

    #[test]
    fn a_few_small_commits_make_one_entry_with_only_older_ones_superseded() {
        let commits: Vec<_> = (0..5).map(|i| commit(i, 100)).collect();
        let batches = seen_batches(commits.clone(), SEEN_BATCH_BYTES);
        assert_eq!(batches.len(), 1);
        // As one entry, `apply` supersedes the older ones itself: nothing is changed here.
        assert_eq!(batches[0], commits);
    }

    #[test]
    fn long_messages_are_cut_into_entries_of_bounded_size_in_order() {
        // 1,000 commits of 4 KiB messages (the most a fetch records): about 4.4 MB in all.
        let commits: Vec<_> = (0..1000).map(|i| commit(i, 4096)).collect();
        let batches = seen_batches(commits.clone(), SEEN_BATCH_BYTES);
        assert!(batches.len() >= 16, "{} batches", batches.len());
        for batch in &batches {
            let json = serde_json::to_vec(&Command::Seen {
                commits: batch.clone(),
            })
            .unwrap();
            assert!(
                json.len() <= SEEN_BATCH_BYTES,
                "an entry of {} bytes",
                json.len()
            );
        }
        let flat: Vec<_> = batches.iter().flatten().collect();
        assert_eq!(flat.len(), 1000);
        assert!(flat.iter().zip(&commits).all(|(a, b)| a.sha == b.sha));
        // Only the very last commit can become the head; each earlier batch's last is
        // superseded already, as a single entry would have recorded it.
        let (last, earlier) = flat.split_last().unwrap();
        assert_eq!(last.outcome, Outcome::Pending);
        assert!(batches[..batches.len() - 1]
            .iter()
            .all(|b| b.last().unwrap().outcome == Outcome::Superseded));
        assert_eq!(earlier.len(), 999);
    }

    #[test]
    fn a_commit_larger_than_a_batch_still_goes_alone() {
        // Records cannot outgrow a real batch (messages are cut to 4 KiB): a tiny one here.
        let commits = vec![commit(0, 10), commit(1, 2000), commit(2, 10)];
        let batches = seen_batches(commits, 1000);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1]);
    }
}
