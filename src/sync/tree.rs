//! Reading manifests straight out of a commit's tree.
//!
//! No work tree is involved: a commit's tree is immutable, so what the controller parses is
//! exactly what that commit says, whatever fetches run meanwhile.

use gix::objs::tree::EntryKind;

use super::source::GitSource;
use super::{CommitId, SyncError};
use crate::manifest::is_manifest_file;
use crate::manifest::limits::{Limits, Listed};

/// One manifest file of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path from the repository root, `/`-separated (also when a subdirectory was read).
    pub path: String,
    /// The file's content, unparsed.
    pub bytes: Vec<u8>,
}

impl GitSource {
    /// All manifest files under `subdir` in commit `id`, recursively, sorted by path: the same
    /// files `berth validate` reads in a directory ([`is_manifest_file`]: `.yaml`, `.yml`,
    /// `.json`, outside hidden files and directories).
    ///
    /// `subdir` is relative to the repository root; `""` or `"."` mean the root. Symlinks and
    /// submodules are skipped: their targets are not part of this commit's content.
    ///
    /// Sizes come from the object headers and are checked against `limits` before any blob is
    /// read, so a commit holding a huge file or a million files costs no memory:
    /// [`SyncError::OverBudget`] lists every budget exceeded.
    pub fn read_tree(
        &self,
        id: &CommitId,
        subdir: &str,
        limits: &Limits,
    ) -> Result<Vec<ManifestFile>, SyncError> {
        let subdir = normalize(subdir);
        let tree = self
            .subdir_tree(id, &subdir)?
            .ok_or_else(|| SyncError::SubdirNotFound {
                subdir: subdir.clone(),
                commit: id.to_string(),
            })?;
        let entries = tree
            .traverse()
            .breadthfirst
            .files()
            .map_err(|e| self.read_error(format!("tree of commit {id}"), e))?;

        let mut listed: Vec<(gix::ObjectId, Listed)> = Vec::new();
        for entry in entries {
            let relative = entry.filepath.to_string();
            let path = if subdir.is_empty() {
                relative.clone()
            } else {
                format!("{subdir}/{relative}")
            };
            match entry.mode.kind() {
                EntryKind::Blob | EntryKind::BlobExecutable if is_manifest_file(&relative) => {
                    let size = self
                        .repo
                        .find_header(entry.oid)
                        .map_err(|e| self.read_error(format!("{path} of commit {id}"), e))?
                        .size();
                    listed.push((entry.oid, Listed { path, size }));
                }
                EntryKind::Link => tracing::debug!(%path, commit = %id, "skipping symlink"),
                EntryKind::Commit => tracing::debug!(%path, commit = %id, "skipping submodule"),
                _ => {}
            }
        }
        let root = if subdir.is_empty() { "." } else { &subdir };
        let entries: Vec<Listed> = listed.iter().map(|(_, l)| l.clone()).collect();
        let problems = limits.check_listing(root, &entries);
        if !problems.is_empty() {
            return Err(SyncError::OverBudget {
                commit: id.to_string(),
                problems,
            });
        }
        let mut files = Vec::with_capacity(listed.len());
        for (oid, entry) in listed {
            let bytes = self
                .repo
                .find_blob(oid)
                .map_err(|e| self.read_error(format!("{} of commit {id}", entry.path), e))?
                .take_data();
            files.push(ManifestFile {
                path: entry.path,
                bytes,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The id of the tree at `subdir` in commit `id`, `None` if there is no such directory.
    ///
    /// Two commits with the same id here have identical manifests, so the caller can skip
    /// parsing and planning for commits that only touched other parts of the repository.
    pub fn tree_id(&self, id: &CommitId, subdir: &str) -> Result<Option<gix::ObjectId>, SyncError> {
        Ok(self
            .subdir_tree(id, &normalize(subdir))?
            .map(|tree| tree.id))
    }

    /// The tree of `subdir` (already normalized) in commit `id`; `None` if missing or not a
    /// directory.
    fn subdir_tree(&self, id: &CommitId, subdir: &str) -> Result<Option<gix::Tree<'_>>, SyncError> {
        let read_err = |e| self.read_error(format!("tree of commit {id}"), e);
        let root = self.find_commit(id)?.tree().map_err(read_err)?;
        if subdir.is_empty() {
            return Ok(Some(root));
        }
        let Some(entry) = root.lookup_entry(subdir.split('/')).map_err(read_err)? else {
            return Ok(None);
        };
        if !entry.mode().is_tree() {
            return Ok(None);
        }
        let tree = entry
            .object()
            .and_then(|object| object.try_into_tree())
            .map_err(read_err)?;
        Ok(Some(tree))
    }
}

/// `"./deploy/"` → `"deploy"`, `"."` → `""`: the forms people write in config files.
fn normalize(subdir: &str) -> String {
    subdir
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_accepts_the_usual_spellings_of_a_directory() {
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("."), "");
        assert_eq!(normalize("./"), "");
        assert_eq!(normalize("./deploy/"), "deploy");
        assert_eq!(normalize("/deploy//prod"), "deploy/prod");
    }

    #[test]
    fn only_yaml_yml_and_json_outside_hidden_paths_are_manifests() {
        assert!(is_manifest_file("a/web.yaml"));
        assert!(is_manifest_file("db.YML"));
        assert!(is_manifest_file("x.json"));
        assert!(!is_manifest_file("README.md"));
        assert!(!is_manifest_file("yaml"));
        assert!(!is_manifest_file("notes.yaml.txt"));
        assert!(!is_manifest_file(".github/workflows/ci.yaml"));
        assert!(!is_manifest_file("apps/.web.yaml.swp.yaml"));
    }
}
