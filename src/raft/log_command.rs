//! A command as it travels in the Raft log: one this berth understands, or the raw JSON of one
//! written by a newer berth.
//!
//! Why not `Command` itself: during a rolling upgrade the leader may already run a newer berth
//! that proposes a command this member does not know. Decoding the whole entry would then fail
//! in the log store or in the RPC handler, where the only outcomes are "refuse the entry" (the
//! leader retries it forever) or a misleading storage error. Keeping the raw JSON lets the entry
//! be stored and replicated like any other (it counts towards the quorum: it is durable here),
//! and lets `apply` stop at exactly that entry and name it (see `state_machine.rs`), never
//! applying a guess.
//!
//! The serialised form is the command's own JSON, so the log format is unchanged: entries written
//! before this wrapper existed decode as [`LogCommand::Known`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::Command;

/// The payload of a normal Raft log entry.
// `Unknown` is the rare case (a newer member's command); boxing `Known` would add an
// allocation to every entry to save bytes on the rare one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LogCommand {
    /// A command this berth decodes and applies.
    Known(Command),
    /// A command this berth cannot decode, kept verbatim.
    Unknown {
        /// The entry's JSON exactly as received, so it is stored and forwarded unchanged.
        json: serde_json::Value,
        /// Why it did not decode as a [`Command`].
        error: String,
    },
}

impl From<Command> for LogCommand {
    fn from(cmd: Command) -> Self {
        LogCommand::Known(cmd)
    }
}

impl Serialize for LogCommand {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LogCommand::Known(cmd) => cmd.serialize(s),
            LogCommand::Unknown { json, .. } => json.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LogCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Two steps (any JSON value, then a `Command`) so that a value that is valid JSON but not
        // a command of this version is kept instead of failing the whole entry or RPC.
        let json = serde_json::Value::deserialize(d)?;
        Ok(match Command::deserialize(&json) {
            Ok(cmd) => LogCommand::Known(cmd),
            Err(e) => LogCommand::Unknown {
                json,
                error: e.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_command_keeps_its_json_form() {
        let cmd = Command::Seen { commits: vec![] };
        let wrapped = serde_json::to_value(LogCommand::Known(cmd.clone())).unwrap();
        assert_eq!(wrapped, serde_json::to_value(&cmd).unwrap());
        let back: LogCommand = serde_json::from_value(wrapped).unwrap();
        assert!(matches!(back, LogCommand::Known(c) if c == cmd));
    }

    #[test]
    fn a_command_from_a_newer_berth_is_kept_verbatim_not_guessed() {
        let json = serde_json::json!({"FromTheFuture": {"x": 1}});
        let back: LogCommand = serde_json::from_value(json.clone()).unwrap();
        let LogCommand::Unknown { json: kept, error } = &back else {
            panic!("decoded as known: {back:?}");
        };
        assert_eq!(kept, &json);
        assert!(error.contains("FromTheFuture"), "{error}");
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }
}
