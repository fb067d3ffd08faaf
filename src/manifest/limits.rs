//! Budgets on what a manifest tree may cost to read, the same in `berth validate` and in sync.
//!
//! Whoever can push to the manifests repository must not be able to take the controller down:
//! a 1 KB YAML "billion laughs" expands to gigabytes, a 50 MB annotation or a million files fill
//! memory, and sync validates every pushed commit (again after every restart). So every way a
//! tree can grow is bounded, checked as early as possible (sizes before bytes are read, aliases
//! before they are expanded), and a tree over any budget is rejected whole with a problem that
//! names the file and the limit, like any other invalid tree.
//!
//! Three budgets are settings (`--max-file-size`, `--max-tree-files`, `--max-tree-size`, also
//! in the TOML file that `berth validate --config` and `berth serve --config` share); the
//! structural ones follow Kubernetes and are fixed.

use super::error::Problem;

/// etcd's default request limit: no single Kubernetes object can be larger.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 20;
/// Manifest files per tree.
pub const DEFAULT_MAX_TREE_FILES: usize = 10_000;
/// Bytes of manifest files per tree.
pub const DEFAULT_MAX_TREE_BYTES: u64 = 64 << 20;
/// Kubernetes' limit on the total size (keys and values) of one object's annotations.
pub const MAX_ANNOTATION_BYTES: usize = 256 << 10;
/// Nesting of YAML collections. Kubernetes v1 objects nest about ten deep; 64 leaves room and
/// keeps recursive code (and dropping the tree) far from the stack's limit.
pub const MAX_DEPTH: usize = 64;
/// Alias expansion: the nodes that aliases add may be at most this multiple of the nodes
/// written in the file (plus [`ALIAS_ALLOWANCE`]), as Kubernetes' YAML decoder does since
/// CVE-2019-11253. Real manifests use aliases sparingly; a bomb needs exponential growth.
pub const ALIAS_RATIO: usize = 4;
/// Alias nodes always allowed, so a small file may still reuse a block a few times.
pub const ALIAS_ALLOWANCE: usize = 10_000;

/// The settable budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_tree_files: usize,
    pub max_tree_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_tree_files: DEFAULT_MAX_TREE_FILES,
            max_tree_bytes: DEFAULT_MAX_TREE_BYTES,
        }
    }
}

/// One manifest file of a tree before it is read: where, and how large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
}

impl Limits {
    /// Checks a tree's listing against the budgets, before any file is read. `root` names the
    /// tree in messages (the directory, or the repository path). Empty when within budget.
    pub fn check_listing(&self, root: &str, files: &[Listed]) -> Vec<Problem> {
        let mut problems = Vec::new();
        if files.len() > self.max_tree_files {
            problems.push(Problem::new(
                root,
                None,
                "",
                format!(
                    "{} manifest files, over the limit of {} files per tree (max_tree_files)",
                    files.len(),
                    self.max_tree_files
                ),
            ));
        }
        let total: u64 = files.iter().map(|f| f.size).sum();
        if total > self.max_tree_bytes {
            problems.push(Problem::new(
                root,
                None,
                "",
                format!(
                    "manifest files hold {} in all, over the limit of {} per tree (max_tree_size)",
                    show_bytes(total),
                    show_bytes(self.max_tree_bytes)
                ),
            ));
        }
        for f in files {
            if let Some(p) = self.check_file_size(&f.path, f.size) {
                problems.push(p);
            }
        }
        problems
    }

    /// The problem with one file's size, if it is over the per-file budget.
    pub fn check_file_size(&self, path: &str, size: u64) -> Option<Problem> {
        (size > self.max_file_bytes).then(|| {
            Problem::new(
                path,
                None,
                "",
                format!(
                    "file is {}, over the limit of {} per file (max_file_size)",
                    show_bytes(size),
                    show_bytes(self.max_file_bytes)
                ),
            )
        })
    }
}

/// `1.5 MiB`, `300 KiB`, `12 bytes`: sizes in messages.
pub fn show_bytes(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    let (unit, name) = match n {
        n if n >= GIB => (GIB, "GiB"),
        n if n >= MIB => (MIB, "MiB"),
        n if n >= KIB => (KIB, "KiB"),
        _ => return format!("{n} bytes"),
    };
    if n % unit == 0 {
        format!("{} {name}", n / unit)
    } else {
        format!("{:.1} {name}", n as f64 / unit as f64)
    }
}

/// `1Mi`, `64Mi`, `512Ki`, `1Gi` or a plain number of bytes: the form of the size settings.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size like 512Ki, 1Mi, 64Mi or 1Gi");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(factor).ok_or_else(bad)?;
    if bytes == 0 {
        return Err(format!("{s:?} must be more than zero"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, size: u64) -> Listed {
        Listed {
            path: path.into(),
            size,
        }
    }

    #[test]
    fn a_tree_within_budget_has_no_problem() {
        let limits = Limits::default();
        let files = vec![listed("a.yaml", 100), listed("b.yaml", 1 << 20)];
        assert!(limits.check_listing("deploy", &files).is_empty());
    }

    #[test]
    fn every_budget_names_the_file_and_the_limit() {
        let limits = Limits {
            max_file_bytes: 1 << 20,
            max_tree_files: 2,
            max_tree_bytes: 2 << 20,
        };
        let files = vec![
            listed("a.yaml", 10),
            listed("big.yaml", (3 << 20) / 2),
            listed("c.yaml", 1 << 20),
        ];
        let got: Vec<String> = limits
            .check_listing("deploy", &files)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            vec![
                "deploy: 3 manifest files, over the limit of 2 files per tree (max_tree_files)",
                "deploy: manifest files hold 2.5 MiB in all, over the limit of 2 MiB per tree (max_tree_size)",
                "big.yaml: file is 1.5 MiB, over the limit of 1 MiB per file (max_file_size)",
            ]
        );
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1Mi"), Ok(1 << 20));
        assert_eq!(parse_size("512Ki"), Ok(512 << 10));
        assert_eq!(parse_size("2Gi"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("1MB").is_err());
        assert!(parse_size("0Mi").is_err());
        assert!(parse_size("Mi").is_err());
        assert!(parse_size("99999999999999Gi").is_err());
        assert_eq!(show_bytes(300 << 10), "300 KiB");
        assert_eq!(show_bytes(12), "12 bytes");
    }
}
