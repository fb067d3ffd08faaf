//! `tests/fuzz-regressions/`: every input the fuzzer ever failed on, replayed by every
//! `cargo test`.
//!
//! A one-file case is saved as one file, named `KIND-HASH-NAME` (its extension kept, since a
//! `.json` file is read differently); a case of several files as a directory of that name
//! holding them at their paths. Replay gives each file its name (or its path inside the
//! directory) as its path. `README.md` is the directory's own notice, not a case.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use super::case::Case;

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

/// Saves `case` under `kind` (`panic`, `slow`, `memory`, `hang`, `property`); returns where.
pub fn save(kind: &str, case: &Case) -> std::io::Result<PathBuf> {
    let mut h = DefaultHasher::new();
    case.files.hash(&mut h);
    let stem = format!("{kind}-{:016x}", h.finish());
    let root = dir();
    std::fs::create_dir_all(&root)?;
    match case.files.as_slice() {
        [(path, bytes)] => {
            let name = path.rsplit('/').next().unwrap_or(path);
            let file = root.join(format!("{stem}-{name}"));
            std::fs::write(&file, bytes)?;
            Ok(file)
        }
        files => {
            let dir = root.join(stem);
            for (path, bytes) in files {
                let file = dir.join(path);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(file, bytes)?;
            }
            Ok(dir)
        }
    }
}

/// Every saved case, by name.
pub fn load_all() -> std::io::Result<Vec<(String, Case)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "README.md" {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            walk(&path, &path, &mut files)?;
            files.sort();
        } else {
            files.push((name.clone(), std::fs::read(&path)?));
        }
        out.push((name, Case { files }));
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), std::fs::read(&path)?));
        }
    }
    Ok(())
}
