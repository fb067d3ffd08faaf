use std::process::ExitCode;

use clap::Parser;

use berth::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => berth::cli::validate::run(&args),
    }
}
