//! `berth validate`: check a manifest tree the way sync will, and say every problem at once.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::manifest::{load_files, read_paths, ManifestError};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (read recursively; .yaml, .yml and .json files).
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Prints every problem on stderr and returns 1, or a one-line summary on stdout and 0.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let files = match read_paths(&args.paths) {
        Ok(files) => files,
        Err(e @ ManifestError::Io { .. }) => {
            eprintln!(
                "berth validate: {e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("berth validate: {e}");
            return ExitCode::from(2);
        }
    };
    match load_files(&files) {
        Ok(m) => {
            // Ignored write error: stdout closed early (`| head`) is not a validation failure.
            let _ = writeln!(
                std::io::stdout().lock(),
                "{} objects in {} files: valid",
                m.len(),
                files.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let mut err = std::io::stderr().lock();
            for p in &problems {
                let _ = writeln!(err, "{p}");
            }
            let _ = writeln!(
                err,
                "{} problem(s) in {} files: invalid",
                problems.len(),
                files.len()
            );
            ExitCode::from(1)
        }
    }
}
