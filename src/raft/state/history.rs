//! The history of commits: what became of every Git commit berth saw, one record each.
//!
//! The outcomes form one schema, written down here with explicit serde names because operators,
//! the CLI and scripts read them from the API:
//!
//! | outcome | meaning | final? |
//! |---|---|---|
//! | `pending` | seen, not yet validated | no |
//! | `applying` | valid and desired; containers are being brought in line (a rollout may be running) | no |
//! | `applied` | converged: `converged_at` is set (see `controller::converge` for the definition) | yes |
//! | `rejected` | invalid, or over a budget: the running state was left exactly as it was | yes |
//! | `failed` | halted: a rollout (or a bare Pod's update) missed its deadline; `errors` says why per replica. Final for this commit, until the next one | yes |
//! | `superseded` | a newer commit arrived before this one was decided or had converged; `refers_to` names it when known | yes |
//! | `rolled-back` | failed, and berth re-applied the last commit that converged (`--on-failure rollback`); `refers_to` names that commit | yes |
//!
//! `refers_to` is the one field that names another commit, its meaning given by the outcome
//! (or by `forced`: the head a force-push replaced). `trigger` says what made berth look.

use serde::{Deserialize, Serialize};

use super::Millis;

/// Bytes of a commit message or author kept in the replicated history. Messages are for
/// people to recognise a commit; a pushed 50 MB message must not travel through Raft.
pub const MAX_TEXT_BYTES: usize = 4 << 10;
/// Lines of an executed plan kept per commit; a 100k-replica rollout is summarised, not listed.
pub const MAX_PLAN_LINES: usize = 1_000;
/// Errors kept per commit.
pub const MAX_ERRORS: usize = 200;
/// Parents kept per commit. Git allows any number (an octopus merge); the first ones say enough.
/// Parents are commit ids that scripts parse, so the rest are dropped without a marker.
pub const MAX_PARENTS: usize = 64;
/// Bytes of a short identifier from outside (a webhook's delivery id) kept.
pub const MAX_ID_BYTES: usize = 256;
/// What a record's plan becomes when the history drops it to stay within its byte budget.
pub const PLAN_DROPPED: &str = "… plan dropped: the history is over its byte budget";
/// The allowance for a record's field names, numbers and punctuation in
/// [`CommitRecord::estimated_bytes`]: about the JSON of a record with empty strings and lists.
const RECORD_OVERHEAD: u64 = 300;
/// The allowance for the quotes and comma around each string.
const STRING_OVERHEAD: u64 = 3;

/// What became of a Git commit. See the module documentation for the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pending,
    Applying,
    Applied,
    Rejected,
    Failed,
    Superseded,
    RolledBack,
}

impl Outcome {
    /// No later event changes it (a new commit gets a record of its own).
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Pending | Outcome::Applying)
    }
}

/// What made berth look at the branch and find this commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// The poll timer (or berth starting up).
    #[default]
    Poll,
    /// A watched local repository's refs changed.
    Watch,
    /// A webhook from a Git host.
    Webhook {
        provider: String,
        delivery: Option<String>,
    },
    /// Not a push: berth re-applied this commit after a later one failed.
    Rollback,
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
    /// What was done for this commit, once each, as human-readable lines.
    pub plan: Vec<String>,
    /// Another commit this record refers to; what it means depends on the outcome.
    #[serde(default)]
    pub refers_to: Option<String>,
    #[serde(default)]
    pub trigger: Trigger,
}

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

/// At most `max` items, the last one saying how many more there were.
pub fn capped(mut items: Vec<String>, max: usize) -> Vec<String> {
    if items.len() > max {
        let dropped = items.len() - (max - 1);
        items.truncate(max - 1);
        items.push(format!("… and {dropped} more"));
    }
    items
        .into_iter()
        .map(|i| truncated(i, MAX_TEXT_BYTES))
        .collect()
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
            refers_to: None,
            trigger: Trigger::Poll,
        }
    }

    /// Adds plan lines not recorded yet, keeping at most [`MAX_PLAN_LINES`] and then one line
    /// counting the others (`… 12 more steps not recorded`). A step repeated after the cap is
    /// counted again: it was not recorded, so it cannot be recognised.
    pub fn note(&mut self, lines: Vec<String>) {
        for line in lines {
            let line = truncated(line, MAX_TEXT_BYTES);
            if self.plan.contains(&line) {
                continue;
            }
            if self.plan.len() < MAX_PLAN_LINES {
                self.plan.push(line);
                continue;
            }
            let more = self.plan.get(MAX_PLAN_LINES).and_then(|l| unrecorded(l));
            self.plan.truncate(MAX_PLAN_LINES);
            self.plan.push(more_steps(more.unwrap_or(0) + 1));
        }
    }

    /// The record with every field that can come from outside within its cap, whoever built it:
    /// `apply` bounds each record it keeps, so the history stays bounded even if a proposer
    /// forgot to.
    pub fn bounded(mut self) -> CommitRecord {
        self.author = truncated(self.author, MAX_TEXT_BYTES);
        self.message = truncated(self.message, MAX_TEXT_BYTES);
        self.parents.truncate(MAX_PARENTS);
        for id in self.parents.iter_mut().chain(self.refers_to.as_mut()) {
            *id = truncated(std::mem::take(id), MAX_ID_BYTES);
        }
        self.sha = truncated(self.sha, MAX_ID_BYTES);
        self.errors = capped(self.errors, MAX_ERRORS);
        if self.plan.len() > MAX_PLAN_LINES + 1 {
            let more = self.plan.len() - MAX_PLAN_LINES;
            self.plan.truncate(MAX_PLAN_LINES);
            self.plan.push(more_steps(more));
        }
        for line in &mut self.plan {
            *line = truncated(std::mem::take(line), MAX_TEXT_BYTES);
        }
        if let Trigger::Webhook { provider, delivery } = &mut self.trigger {
            *provider = truncated(std::mem::take(provider), MAX_ID_BYTES);
            if let Some(d) = delivery {
                *d = truncated(std::mem::take(d), MAX_ID_BYTES);
            }
        }
        self
    }

    /// About the size of this record's JSON: its strings' lengths plus fixed allowances for
    /// names, numbers and punctuation. Computed from lengths alone (no serialising), so it is
    /// cheap and every member computes the same number; characters JSON escapes (control
    /// characters, quotes) count once, so it can undercount a record full of them.
    pub fn estimated_bytes(&self) -> u64 {
        let text = |s: &str| s.len() as u64 + STRING_OVERHEAD;
        let list = |l: &[String]| l.iter().map(|s| text(s)).sum::<u64>();
        let trigger = match &self.trigger {
            Trigger::Webhook { provider, delivery } => {
                text(provider) + delivery.as_deref().map_or(0, text)
            }
            _ => 0,
        };
        RECORD_OVERHEAD
            + text(&self.sha)
            + text(&self.author)
            + text(&self.message)
            + list(&self.parents)
            + list(&self.errors)
            + list(&self.plan)
            + self.refers_to.as_deref().map_or(0, text)
            + trigger
    }

    /// The plan holds steps the history may drop (not only the marker of an earlier drop).
    pub fn has_plan(&self) -> bool {
        !self.plan.is_empty() && self.plan != [PLAN_DROPPED]
    }

    /// Replaces the plan by [`PLAN_DROPPED`].
    pub fn drop_plan(&mut self) {
        self.plan = vec![PLAN_DROPPED.to_string()];
    }
}

fn more_steps(n: usize) -> String {
    format!("… {n} more steps not recorded")
}

/// The count of a [`more_steps`] line.
fn unrecorded(line: &str) -> Option<usize> {
    line.strip_prefix("… ")?
        .strip_suffix(" more steps not recorded")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_their_documented_names() {
        let names: Vec<String> = [
            Outcome::Pending,
            Outcome::Applying,
            Outcome::Applied,
            Outcome::Rejected,
            Outcome::Failed,
            Outcome::Superseded,
            Outcome::RolledBack,
        ]
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                "\"pending\"",
                "\"applying\"",
                "\"applied\"",
                "\"rejected\"",
                "\"failed\"",
                "\"superseded\"",
                "\"rolled-back\""
            ]
        );
    }

    #[test]
    fn records_written_before_refers_to_and_trigger_still_load() {
        let old = r#"{"sha":"a","parents":[],"author":"A","message":"m","time":0,"outcome":"failed","errors":["x"],"forced":false,"unchanged":false,"seen_at":1,"applied_at":null,"converged_at":null,"plan":[]}"#;
        let r: CommitRecord = serde_json::from_str(old).unwrap();
        assert_eq!(
            (r.outcome, r.refers_to, r.trigger),
            (Outcome::Failed, None, Trigger::Poll)
        );
    }

    #[test]
    fn long_messages_are_cut_with_a_marker_on_a_character_boundary() {
        let long = "é".repeat(3000); // 6000 bytes
        let r = CommitRecord::pending("a".into(), vec![], "A".into(), long, 0, 1);
        assert!(r.message.len() < MAX_TEXT_BYTES + 40, "{}", r.message.len());
        assert!(r.message.ends_with("… [truncated: 1904 more bytes]"));
        assert_eq!(truncated("short".into(), 10), "short");
    }

    #[test]
    fn plan_lines_are_recorded_once_and_capped() {
        let mut r = CommitRecord::pending("a".into(), vec![], "A".into(), "m".into(), 0, 1);
        r.note(vec!["create x".into(), "create x".into()]);
        r.note(vec!["create x".into(), "create y".into()]);
        assert_eq!(r.plan, ["create x", "create y"]);
        r.note((0..2000).map(|i| format!("line {i}")).collect());
        assert_eq!(r.plan.len(), MAX_PLAN_LINES + 1);
        assert_eq!(r.plan[MAX_PLAN_LINES], "… 1002 more steps not recorded");
        // Recorded steps retried do not count; unrecorded ones cannot be told apart.
        r.note(vec!["create x".into(), "line 1999".into()]);
        assert_eq!(r.plan[MAX_PLAN_LINES], "… 1003 more steps not recorded");
        assert_eq!(capped(vec!["a".into(); 5], 3), ["a", "a", "… and 3 more"]);
    }
}
