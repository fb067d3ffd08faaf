//! Loading a tree of manifest files: parse every document, decode every object, then check the
//! tree as a whole. A tree is accepted whole or rejected whole, with every problem listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::decode::{self, Ctx, Object};
use super::error::{ManifestError, Problem};
use super::host_paths::HostPathPolicy;
use super::limits::{Limits, Listed};
use super::model::{Manifests, Origin};
use super::yaml;

/// One file of a manifest tree, from disk or from a Git commit's tree.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Shown in messages: relative to the directory or repository it was read from.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Is this path part of a manifest tree? Files ending `.yaml`, `.yml` or `.json` (any case),
/// outside hidden files and directories (`.git/`, `.github/`, editor swap files). One rule for
/// `berth validate` on a directory and for sync on a Git tree, so both read the same files.
pub fn is_manifest_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        && !path.split('/').any(|part| part.starts_with('.'))
}

/// Decodes and checks a whole tree. Pure: no I/O, so sync and `validate` share it exactly.
///
/// The tree's budgets are checked first (readers should also check them before reading, see
/// [`Limits::check_listing`]); a tree over budget is not parsed at all.
pub fn load_files(files: &[SourceFile], limits: &Limits) -> Result<Manifests, Vec<Problem>> {
    let listing: Vec<Listed> = files
        .iter()
        .map(|f| Listed {
            path: f.path.clone(),
            size: f.bytes.len() as u64,
        })
        .collect();
    let over = limits.check_listing(".", &listing);
    if !over.is_empty() {
        return Err(over);
    }
    let mut problems = Vec::new();
    let mut objects = Vec::new();
    for file in files {
        load_file(file, &mut objects, &mut problems);
    }
    let manifests = collect(objects, &mut problems);
    // File order, then position: duplicates found by `collect` join their file's other problems.
    // A file's problems without a position (its "N more" note) come after the others.
    problems.sort_by(|a, b| {
        (&a.file, a.line.is_none(), a.line, a.column).cmp(&(
            &b.file,
            b.line.is_none(),
            b.line,
            b.column,
        ))
    });
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

/// [`load_files`], then the tree against the `hostPath` policy: what both `berth validate` and
/// sync accept, given the same settings.
pub fn load_and_check(
    files: &[SourceFile],
    limits: &Limits,
    host_paths: &HostPathPolicy,
) -> Result<Manifests, Vec<Problem>> {
    let manifests = load_files(files, limits)?;
    let problems = host_paths.check(&manifests);
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
            // serde_json says column 0 at the start of a line (nothing read on it yet, as at
            // the end of a file ending in a newline); berth's columns start at 1.
            let pos = yaml::Pos {
                line: e.line() as u32,
                col: (e.column() as u32).max(1),
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
    if ctx.more > 0 {
        problems.push(Problem::new(
            &file.path,
            None,
            "",
            format!(
                "{} more problem(s) in this file not shown (the first {} are)",
                ctx.more,
                decode::MAX_PROBLEMS_PER_FILE
            ),
        ));
    }
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
///
/// Sizes are checked against `limits` before anything is read, so a huge file or tree costs
/// nothing: over budget is [`ManifestError::Invalid`] with a problem naming the file or tree
/// and the limit, as sync reports it for a Git tree. Inside a directory, only manifest files
/// count ([`is_manifest_file`]) and symbolic links are skipped, as in a Git tree, where a link's
/// target is not part of the commit; a path given explicitly is read whatever its name.
pub fn read_paths(paths: &[PathBuf], limits: &Limits) -> Result<Vec<SourceFile>, ManifestError> {
    let mut listed: Vec<(PathBuf, Listed)> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| io(path, source))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, path, &mut found)?;
            found.sort_by(|a, b| a.0.cmp(&b.0));
            listed.extend(found);
        } else {
            let entry = Listed {
                path: path.display().to_string(),
                size: meta.len(),
            };
            listed.push((path.clone(), entry));
        }
    }
    let root = match paths {
        [one] => one.display().to_string(),
        _ => ".".to_string(),
    };
    let entries: Vec<Listed> = listed.iter().map(|(_, l)| l.clone()).collect();
    let over = limits.check_listing(&root, &entries);
    if !over.is_empty() {
        return Err(ManifestError::Invalid(over));
    }
    let mut files = Vec::with_capacity(listed.len());
    for (path, entry) in listed {
        let bytes = std::fs::read(&path).map_err(|source| io(&path, source))?;
        // The file may have grown since it was listed.
        if let Some(p) = limits.check_file_size(&entry.path, bytes.len() as u64) {
            return Err(ManifestError::Invalid(vec![p]));
        }
        files.push(SourceFile {
            path: entry.path,
            bytes,
        });
    }
    Ok(files)
}

fn io(path: &Path, source: std::io::Error) -> ManifestError {
    ManifestError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Listed)>) -> Result<(), ManifestError> {
    for entry in std::fs::read_dir(dir).map_err(|source| io(dir, source))? {
        let entry = entry.map_err(|source| io(dir, source))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| io(&path, source))?;
        if entry.file_name().to_string_lossy().starts_with('.') || file_type.is_symlink() {
            continue;
        }
        if file_type.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path);
        if file_type.is_file() && is_manifest_file(&relative.to_string_lossy()) {
            let size = entry.metadata().map_err(|source| io(&path, source))?.len();
            let listed = Listed {
                path: path.display().to_string(),
                size,
            };
            out.push((path, listed));
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
        let m = load_files(&[file("a.yaml", POD)], &Limits::default()).unwrap();
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
        let problems = load_files(&[file("a.yaml", &text)], &Limits::default()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "a.yaml:10:1: metadata.name: duplicate Pod default/one: already defined at a.yaml:1"
        );
    }

    #[test]
    fn json_syntax_errors_name_line_and_column() {
        let problems = load_files(
            &[file("x.json", "{\n  \"kind\": \"Pod\",\n}")],
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(problems[0].line, Some(3));
        assert!(problems[0].message.starts_with("JSON syntax"));
    }

    #[test]
    fn a_json_error_at_the_start_of_a_line_is_at_column_one() {
        // Found by the fuzzer: serde_json gives column 0 there.
        let problems = load_files(&[file("x.json", "\r\n")], &Limits::default()).unwrap_err();
        assert_eq!((problems[0].line, problems[0].column), (Some(2), Some(1)));
    }

    #[test]
    fn problems_per_file_are_capped_and_the_rest_counted() {
        let bad: String = (0..300)
            .map(|i| format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec: {{containerz: []}}\n---\n"))
            .collect();
        let problems = load_files(&[file("a.yaml", &bad)], &Limits::default()).unwrap_err();
        assert_eq!(
            problems.len(),
            crate::manifest::decode::MAX_PROBLEMS_PER_FILE + 1
        );
        let last = problems.last().expect("some").to_string();
        assert!(last.contains("more problem(s) in this file"), "{last}");
        assert_eq!(problems[0].line, Some(4), "{}", problems[0]);
    }
}
