//! `berth validate`: check a manifest tree the way sync will, and say every problem at once.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::controller::config::PolicyArgs;
use crate::manifest::{load_and_check, read_paths, ManifestError, Problem};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (read recursively; .yaml, .yml and .json files, hidden
    /// files and directories and symbolic links skipped, as berth serve reads a Git tree).
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The TOML file `berth serve --config` reads: its budgets apply here too, so validate
    /// accepts exactly the trees that serve accepts (other keys are ignored here).
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Prints every problem on stderr and returns 1, or a one-line summary on stdout and 0.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let settings = args
        .policy
        .resolve(args.config.as_deref())
        .and_then(|limits| Ok((limits, args.policy.host_paths(args.config.as_deref())?)));
    let (limits, host_paths) = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth validate: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match read_paths(&args.paths, &limits) {
        Ok(files) => files,
        Err(ManifestError::Invalid(problems)) => return report(&problems, None),
        Err(e @ ManifestError::Io { .. }) => {
            eprintln!(
                "berth validate: {e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };
    match load_and_check(&files, &limits, &host_paths) {
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
        Err(problems) => report(&problems, Some(files.len())),
    }
}

/// Every problem on stderr, a summary line, and exit status 1.
fn report(problems: &[Problem], files: Option<usize>) -> ExitCode {
    let mut err = std::io::stderr().lock();
    for p in problems {
        let _ = writeln!(err, "{p}");
    }
    let _ = match files {
        Some(n) => writeln!(err, "{} problem(s) in {n} files: invalid", problems.len()),
        None => writeln!(err, "{} problem(s): invalid", problems.len()),
    };
    ExitCode::from(1)
}
