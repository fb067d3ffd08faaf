//! Loading a tree of manifest files: parse every document, decode every object, then check the
//! tree as a whole. A tree is accepted whole or rejected whole, with every problem listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::decode::{self, Ctx, Object};
use super::error::{ManifestError, Problem};
use super::model::{Manifests, Origin};
use super::yaml;

/// One file of a manifest tree, from disk or from a Git commit's tree.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Shown in messages: relative to the directory or repository it was read from.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Is this a manifest file by its name? (`.yaml`, `.yml`, `.json`; others are ignored.)
pub fn is_manifest_file(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Decodes and checks a whole tree. Pure: no I/O, so sync and `validate` share it exactly.
pub fn load_files(files: &[SourceFile]) -> Result<Manifests, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut objects = Vec::new();
    for file in files {
        load_file(file, &mut objects, &mut problems);
    }
    let manifests = collect(objects, &mut problems);
    // File order, then position: duplicates found by `collect` join their file's other problems.
    problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

fn load_file(file: &SourceFile, objects: &mut Vec<Object>, problems: &mut Vec<Problem>) {
    let Ok(text) = std::str::from_utf8(&file.bytes) else {
        problems.push(Problem::new(&file.path, None, "", "not UTF-8 text"));
        return;
    };
    if file.path.ends_with(".json") {
        // serde_json's messages are the clearer ones for JSON syntax.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            let pos = yaml::Pos {
                line: e.line() as u32,
                col: e.column() as u32,
            };
            problems.push(Problem::new(
                &file.path,
                Some(pos),
                "",
                format!("JSON syntax: {e}"),
            ));
            return;
        }
    }
    let docs = match yaml::parse(text) {
        Ok(docs) => docs,
        Err(errors) => {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| Problem::new(&file.path, Some(e.pos), "", e.message)),
            );
            return;
        }
    };
    let mut ctx = Ctx::new(&file.path);
    for doc in docs.iter().flatten() {
        decode::document(&mut ctx, doc, objects);
    }
    problems.append(&mut ctx.problems);
}

/// Sorts objects by kind and reports names defined twice in one namespace.
fn collect(objects: Vec<Object>, problems: &mut Vec<Problem>) -> Manifests {
    let mut out = Manifests::default();
    let mut seen: HashMap<(&'static str, String, String), Origin> = HashMap::new();
    for object in objects {
        let (kind, meta, origin) = match &object {
            Object::Pod(p) => ("Pod", &p.metadata, &p.origin),
            Object::Rc(r) => ("ReplicationController", &r.metadata, &r.origin),
            Object::Service(s) => ("Service", &s.metadata, &s.origin),
        };
        let key = (kind, meta.namespace.clone(), meta.name.clone());
        if let Some(first) = seen.get(&key) {
            problems.push(Problem::new(
                &origin.file,
                Some(yaml::Pos {
                    line: origin.line,
                    col: 1,
                }),
                "metadata.name",
                format!(
                    "duplicate {kind} {}/{}: already defined at {first}",
                    meta.namespace, meta.name
                ),
            ));
            continue;
        }
        seen.insert(key, origin.clone());
        match object {
            Object::Pod(p) => out.pods.push(p),
            Object::Rc(r) => out.replication_controllers.push(r),
            Object::Service(s) => out.services.push(s),
        }
    }
    out
}

/// Reads the manifest files under each path (a file, or a directory read recursively), sorted
/// by path so that messages and results do not depend on directory order.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<SourceFile>, ManifestError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| io(path, source))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            for f in found {
                let bytes = std::fs::read(&f).map_err(|source| io(&f, source))?;
                files.push(SourceFile {
                    path: f.display().to_string(),
                    bytes,
                });
            }
        } else {
            let bytes = std::fs::read(path).map_err(|source| io(path, source))?;
            files.push(SourceFile {
                path: path.display().to_string(),
                bytes,
            });
        }
    }
    Ok(files)
}

fn io(path: &Path, source: std::io::Error) -> ManifestError {
    ManifestError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    for entry in std::fs::read_dir(dir).map_err(|source| io(dir, source))? {
        let entry = entry.map_err(|source| io(dir, source))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| io(&path, source))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue; // .git, editor swap files
        }
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if is_manifest_file(&name) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: one\nspec:\n  containers:\n  - name: c\n    image: busybox:1\n";

    #[test]
    fn a_valid_tree_fills_defaults() {
        let m = load_files(&[file("a.yaml", POD)]).unwrap();
        assert_eq!(m.pods.len(), 1);
        let pod = &m.pods[0];
        assert_eq!(pod.metadata.namespace, "default");
        assert_eq!(
            pod.origin,
            Origin {
                file: "a.yaml".into(),
                line: 1
            }
        );
        assert_eq!(pod.spec.termination_grace_period_seconds, 30);
    }

    #[test]
    fn duplicate_names_are_reported_with_both_places() {
        let text = format!("{POD}---\n{POD}");
        let problems = load_files(&[file("a.yaml", &text)]).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "a.yaml:10:1: metadata.name: duplicate Pod default/one: already defined at a.yaml:1"
        );
    }

    #[test]
    fn json_syntax_errors_name_line_and_column() {
        let problems = load_files(&[file("x.json", "{\n  \"kind\": \"Pod\",\n}")]).unwrap_err();
        assert_eq!(problems[0].line, Some(3));
        assert!(problems[0].message.starts_with("JSON syntax"));
    }
}
