//! Manifests: Kubernetes v1 `Pod`, `ReplicationController`, `Service` and `Node` objects, read from YAML
//! or JSON, validated strictly, with every problem reported at once.
//!
//! ```text
//! files ─► yaml (positioned tree) ─► decode (typed objects + problems) ─► load (whole-tree checks)
//! ```
//!
//! `load_files` is pure (bytes in, `Manifests` or problems out) so that `berth validate` on a
//! directory and sync on a Git commit accept and reject exactly the same trees.

pub mod annotations;
mod decode;
pub mod error;
pub mod host_paths;
pub mod limits;
pub mod load;
pub mod model;
pub mod names;
pub mod quantity;
pub mod yaml;

#[cfg(test)]
mod node_tests;

pub use error::{ManifestError, Problem};
pub use host_paths::HostPathPolicy;
pub use limits::Limits;
pub use load::{is_manifest_file, load_and_check, load_files, read_paths, SourceFile};
pub use model::*;
