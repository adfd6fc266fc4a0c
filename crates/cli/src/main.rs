//! `ascend`: the command line. It parses arguments and calls the library crates; it holds
//! no logic of its own (decisions live in `ascend-core`, the platform in `ascend-server`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod classify;
mod error;
mod platform;
mod policy;

pub use error::CliError;

// The platform allocates per request from every worker thread; glibc's allocator spent
// about a tenth of `ascend serve`'s CPU under load (its arenas and consolidation).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "ascend",
    version,
    about = "Governance for every AWS call an agent makes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score an AWS call's risk and say why.
    Classify(classify::ClassifyArgs),
    /// Check, test, push and pull Cedar policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    #[command(flatten)]
    Platform(platform::PlatformCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints usage errors with exit code 2 and --help/--version with 0.
            e.exit();
        }
    };
    let result = match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Platform(cmd) => platform::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
