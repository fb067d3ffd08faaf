//! A fuzzer for the manifest loader that runs on stable Rust: proptest's generators and
//! shrinking, driven against `berth::manifest::load_files` with properties checked on every
//! input (see [`check`]).
//!
//! - [`case`]: one input, a tree of one to three files, each from one of three mixes:
//!   [`grammar::raw_text`] (bytes, text, YAML token soups), [`grammar::grammar_text`]
//!   (documents from a YAML grammar), [`mutate::mutant_text`] (the repository's own manifests,
//!   mutated as trees and as bytes); [`tree`] writes trees out as YAML or JSON.
//! - [`check`]: the properties; [`alloc`] counts heap bytes, [`panics`] records panics.
//! - [`run`]: seeded batches, the watchdog for hangs and blow-ups, findings;
//!   [`regressions`]: saved findings, replayed by every `cargo test`.

pub mod alloc;
pub mod case;
pub mod check;
pub mod grammar;
pub mod mutate;
pub mod panics;
pub mod regressions;
pub mod run;
pub mod tree;
pub mod vocab;
