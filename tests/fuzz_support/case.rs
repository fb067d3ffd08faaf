//! One fuzz case: a small tree of manifest files, each from one of the three mixes.

use std::fmt;

use berth::manifest::SourceFile;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::grammar::{grammar_text, raw_text};
use super::mutate::mutant_text;

#[derive(Clone, PartialEq, Eq)]
pub struct Case {
    /// Paths (as Git or `berth validate` would give them) and contents.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Case {
    pub fn source_files(&self) -> Vec<SourceFile> {
        self.files
            .iter()
            .map(|(path, bytes)| SourceFile {
                path: path.clone(),
                bytes: bytes.clone(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(|(_, b)| b.len()).sum()
    }
}

/// Each file's path and text, long ones cut short (the whole input is saved to a file).
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 4000;
        for (path, bytes) in &self.files {
            writeln!(f, "--- {path} ({} bytes)", bytes.len())?;
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]);
            writeln!(f, "{text:?}")?;
            if bytes.len() > SHOWN {
                writeln!(f, "... ({} more bytes)", bytes.len() - SHOWN)?;
            }
        }
        Ok(())
    }
}

/// Generated files are cut to this length, just over the loader's 1 MiB budget.
const MAX_FILE: usize = (1 << 20) + 1024;

/// Directories and names a repository may hold, with the three extensions berth reads.
const DIRS: &[&str] = &["", "apps/", "deep/er/", "ü n i/", "-/"];

/// A file's directory, extension and contents; `case` numbers the names.
fn file() -> impl Strategy<Value = (&'static str, &'static str, Vec<u8>)> {
    let content = prop_oneof![
        2 => (raw_text(), any::<bool>()),
        3 => grammar_text(),
        4 => mutant_text(),
    ];
    (
        content,
        select(DIRS),
        select(vec![".yaml", ".yml", ".YAML"]),
    )
        .prop_map(|((bytes, json), dir, ext)| (dir, if json { ".json" } else { ext }, bytes))
}

/// One to three files; mostly one, since most of what can go wrong is within a file.
pub fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        4 => file().prop_map(|f| vec![f]),
        1 => vec(file(), 2..=3),
    ]
    .prop_map(|files| Case {
        files: files
            .into_iter()
            .enumerate()
            // Distinct paths, as in a Git tree.
            .map(|(i, (dir, ext, mut bytes))| {
                // Past the budget a file is refused unread: a little past shows that, a
                // hundred megabytes more (deep nesting of repeated blocks) only takes time.
                bytes.truncate(MAX_FILE);
                (format!("{dir}f{i}{ext}"), bytes)
            })
            .collect(),
    })
}
