//! `CommitId`: the 40-hex name of a commit, as it travels through Raft and the API.
//!
//! It wraps a `gix::ObjectId` (cheap to copy and compare) but serializes as a plain 40-hex
//! string, so the replicated state and the HTTP API do not depend on gix's serde support, and a
//! value read back from disk or the network is validated once, at the boundary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::SyncError;

/// A full SHA-1 commit id; displayed and serialized as 40 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(gix::ObjectId);

impl CommitId {
    /// Accepts exactly 40 hex digits, either case. Abbreviated ids are refused: they are
    /// ambiguous over time, and the replicated state must name one commit forever.
    pub fn parse(input: &str) -> Result<Self, SyncError> {
        let invalid = || SyncError::InvalidCommitId {
            input: input.to_owned(),
        };
        if input.len() != gix::hash::Kind::Sha1.len_in_hex() {
            return Err(invalid());
        }
        gix::ObjectId::from_hex(input.as_bytes())
            .map(CommitId)
            .map_err(|_| invalid())
    }

    /// The gix form, for lookups in the mirror.
    pub fn object_id(&self) -> gix::ObjectId {
        self.0
    }
}

impl From<gix::ObjectId> for CommitId {
    fn from(id: gix::ObjectId) -> Self {
        CommitId(id)
    }
}

impl FromStr for CommitId {
    type Err = SyncError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommitId::parse(s)
    }
}

impl TryFrom<String> for CommitId {
    type Error = SyncError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CommitId::parse(&s)
    }
}

impl From<CommitId> for String {
    fn from(id: CommitId) -> Self {
        id.to_string()
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_40_hex_and_lowercases() {
        let id = CommitId::parse("ABCDEF0123456789abcdef0123456789ABCDEF01").expect("valid id");
        assert_eq!(id.to_string(), "abcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(CommitId::from(id.object_id()), id);
    }

    #[test]
    fn parse_rejects_short_and_non_hex() {
        assert!(matches!(
            CommitId::parse("abc"),
            Err(SyncError::InvalidCommitId { .. })
        ));
        let not_hex = "g".repeat(40);
        assert!(matches!(
            CommitId::parse(&not_hex),
            Err(SyncError::InvalidCommitId { .. })
        ));
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id = CommitId::parse(&"a".repeat(40)).expect("valid id");
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{}\"", "a".repeat(40)));
        assert_eq!(
            serde_json::from_str::<CommitId>(&json).expect("deserialize"),
            id
        );
        assert!(serde_json::from_str::<CommitId>("\"nope\"").is_err());
    }
}
