//! What a commit is, and what happened between two commits.
//!
//! The controller records which commit it last applied; when a fetch brings a new head, it asks
//! `history_between(last, new)` to log and expose the commits being rolled out, and to learn how
//! the head moved ([`HeadMove`]): forward as usual, back to one of its own ancestors (a rollback
//! by `git reset` and force-push, which brings no new commit at all), or onto a history that
//! does not contain it (a rewrite). The last two deserve one louder event each, naming the head
//! they replaced.

use gix::revision::walk::Sorting;
use gix::traverse::commit::simple::CommitTimeOrder;
use serde::{Deserialize, Serialize};

use super::source::GitSource;
use super::{CommitId, SyncError};

/// One commit, as shown to operators and stored alongside the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// 40 hex digits.
    pub sha: String,
    /// Parent shas, first parent first; empty for a root commit.
    pub parents: Vec<String>,
    /// `Name <email>` of the author.
    pub author: String,
    /// The full message, trailing newlines removed.
    pub message: String,
    /// The first line of the message.
    pub summary: String,
    /// Committer time, unix seconds: when the commit entered history, which (unlike author time)
    /// changes on rebase and cherry-pick and so matches when it could first have been deployed.
    pub time: i64,
}

/// How the branch head moved from one commit to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadMove {
    /// No old head to compare with (first sync).
    First,
    /// The same commit.
    Unchanged,
    /// The old head is an ancestor of the new one: an ordinary push.
    FastForward,
    /// The new head is an ancestor of the old one: the branch was reset back and
    /// force-pushed. No commit is new; commits that were deployed are gone from the branch.
    ToAncestor,
    /// Neither is an ancestor of the other: the branch was rewritten (rebase, amend, unrelated
    /// history) and force-pushed.
    Diverged,
}

impl HeadMove {
    /// `true` for the moves only a force-push can make.
    pub fn is_forced(self) -> bool {
        matches!(self, HeadMove::ToAncestor | HeadMove::Diverged)
    }
}

/// The commits a move from one head to another brings in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Reachable from the new head and not from the old one, newest first. Empty for
    /// [`HeadMove::ToAncestor`] and [`HeadMove::Unchanged`]: record the move itself then, once,
    /// with [`GitSource::commit_info`] of the new head and `replaced`.
    pub commits: Vec<CommitInfo>,
    /// `true` when more such commits exist than `commits` holds (the limit was hit, or, on a
    /// first sync, the new head has ancestors that were deliberately not listed).
    pub truncated: bool,
    /// `true` when the old head is not an ancestor of the new one (`head_move.is_forced()`):
    /// the branch was force-pushed or rewritten, and commits that were deployed are gone from it.
    pub forced: bool,
    /// How the head moved.
    pub head_move: HeadMove,
    /// The old head, when a force-push dropped it from the branch
    /// ([`HeadMove::ToAncestor`] or [`HeadMove::Diverged`]).
    pub replaced: Option<String>,
}

impl GitSource {
    /// Describes one commit of the mirror.
    pub fn commit_info(&self, id: &CommitId) -> Result<CommitInfo, SyncError> {
        let commit = self.find_commit(id)?;
        describe(&commit).map_err(|source| self.read_error(format!("commit {id}"), source))
    }

    /// The commits from `old` (exclusive) to `new` (inclusive), newest first, at most `limit`.
    ///
    /// With `old` = `None` (first sync) only `new` itself is listed: walking a whole history that
    /// nobody deployed would be slow and tell the operator nothing. Both commits must be in the
    /// mirror; an `old` dropped by a force-push before this mirror fetched it is
    /// [`SyncError::CommitNotFound`], and the caller can fall back to `None`.
    pub fn history_between(
        &self,
        old: Option<&CommitId>,
        new: &CommitId,
        limit: usize,
    ) -> Result<History, SyncError> {
        let new_commit = self.find_commit(new)?;
        let Some(old) = old else {
            let info =
                describe(&new_commit).map_err(|e| self.read_error(format!("commit {new}"), e))?;
            let truncated = !info.parents.is_empty();
            let commits = if limit == 0 { Vec::new() } else { vec![info] };
            return Ok(History {
                commits,
                truncated,
                forced: false,
                head_move: HeadMove::First,
                replaced: None,
            });
        };
        let head_move = self.head_move(old, new)?;

        let mut commits = Vec::new();
        let mut truncated = false;
        for id in self.walk(new, old)? {
            if commits.len() == limit {
                truncated = true;
                break;
            }
            commits.push(self.commit_info(&id?)?);
        }
        let forced = head_move.is_forced();
        Ok(History {
            commits,
            truncated,
            forced,
            head_move,
            replaced: forced.then(|| old.to_string()),
        })
    }

    /// How the head moved from `old` to `new`; both must be in the mirror.
    ///
    /// Also the replay check for signed deployments: a head that is not
    /// [`HeadMove::FastForward`] of the last applied one is either nothing new or a force-push,
    /// and an attacker replaying an old, validly signed commit produces exactly
    /// [`HeadMove::ToAncestor`].
    pub fn head_move(&self, old: &CommitId, new: &CommitId) -> Result<HeadMove, SyncError> {
        self.find_commit(old)?;
        self.find_commit(new)?;
        if old == new {
            return Ok(HeadMove::Unchanged);
        }
        // `a` is an ancestor of `b` exactly when nothing is reachable from `a` but not from `b`;
        // each walk stops at the first such commit.
        let old_in_new = self.walk(old, new)?.next().transpose()?.is_none();
        if old_in_new {
            return Ok(HeadMove::FastForward);
        }
        let new_in_old = self.walk(new, old)?.next().transpose()?.is_none();
        Ok(if new_in_old {
            HeadMove::ToAncestor
        } else {
            HeadMove::Diverged
        })
    }

    /// `true` when `new` is a fast-forward of `old` (`old` is a proper ancestor of `new`).
    ///
    /// For signed deployments: applying only fast-forwards of the last applied commit refuses
    /// replays of older signed commits and histories rewritten by someone else.
    pub fn is_fast_forward(&self, old: &CommitId, new: &CommitId) -> Result<bool, SyncError> {
        Ok(self.head_move(old, new)? == HeadMove::FastForward)
    }

    /// Commits reachable from `tip` and not from `hidden`, newest first, lazily.
    fn walk(
        &self,
        tip: &CommitId,
        hidden: &CommitId,
    ) -> Result<impl Iterator<Item = Result<CommitId, SyncError>> + '_, SyncError> {
        let what = format!("history between {hidden} and {tip}");
        let walk = self
            .repo
            .rev_walk([tip.object_id()])
            .with_hidden([hidden.object_id()])
            .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst))
            .all()
            .map_err(|e| self.read_error(what.clone(), e))?;
        Ok(walk.map(move |info| {
            info.map(|info| CommitId::from(info.id))
                .map_err(|e| self.read_error(what.clone(), e))
        }))
    }

    pub(super) fn find_commit(&self, id: &CommitId) -> Result<gix::Commit<'_>, SyncError> {
        if !self.repo.has_object(id.object_id()) {
            return Err(SyncError::CommitNotFound {
                commit: id.to_string(),
                dir: self.location.dir.clone(),
            });
        }
        self.repo
            .find_commit(id.object_id())
            .map_err(|e| self.read_error(format!("commit {id}"), e))
    }

    pub(super) fn read_error(&self, what: String, source: gix::Error) -> SyncError {
        SyncError::Read {
            what,
            dir: self.location.dir.clone(),
            source,
        }
    }
}

fn describe(commit: &gix::Commit<'_>) -> gix::Result<CommitInfo> {
    let author = commit.author()?.trim();
    let message = String::from_utf8_lossy(commit.message_raw()?)
        .trim_end_matches(['\n', '\r'])
        .to_owned();
    Ok(CommitInfo {
        sha: commit.id.to_string(),
        parents: commit.parent_ids().map(|p| p.to_string()).collect(),
        author: format!("{} <{}>", author.name, author.email),
        summary: message.lines().next().unwrap_or_default().to_owned(),
        message,
        time: commit.time()?.seconds,
    })
}
