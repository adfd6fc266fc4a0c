//! Platform commands: `serve`, `orgs`, and the operator commands that talk to a running
//! server over HTTP (`keys`, `actions`, `agents`, `audit`, `policy push|pull`).

use std::process::ExitCode;

use clap::Subcommand;

use crate::CliError;

mod args;
mod http;
mod ops;
mod serve;

pub use args::{ActionsArgs, AgentsArgs, AuditArgs, KeysArgs, OrgsCommand, Remote, ServeArgs};

#[derive(Subcommand, Debug)]
pub enum PlatformCommand {
    /// Run the platform (HTTP API, approvals, audit chain) on SQLite or PostgreSQL.
    Serve(ServeArgs),
    /// Create organisations directly on the store (works while a server runs).
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Create, list and revoke API keys (admin).
    Keys(KeysArgs),
    /// List, show, approve and reject actions.
    Actions(ActionsArgs),
    /// List agents; block and unblock them (kill switch).
    Agents(AgentsArgs),
    /// Export the audit log (JSON Lines) and verify its hash chain.
    Audit(AuditArgs),
}

/// `ascend policy push|pull`, flattened into the `policy` command group.
#[derive(Subcommand, Debug)]
pub enum PolicyRemote {
    /// Upload a Cedar file as the organisation's policies (validated by the server).
    Push {
        /// The Cedar file; `-` reads standard input.
        file: std::path::PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Download the organisation's policies.
    Pull {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: PlatformCommand) -> Result<ExitCode, CliError> {
    match command {
        PlatformCommand::Serve(args) => serve::serve(args),
        PlatformCommand::Orgs(cmd) => serve::orgs(cmd),
        PlatformCommand::Keys(args) => ops::keys(args),
        PlatformCommand::Actions(args) => ops::actions(args),
        PlatformCommand::Agents(args) => ops::agents(args),
        PlatformCommand::Audit(args) => ops::audit(args),
    }
}

pub fn run_policy_remote(command: PolicyRemote) -> Result<ExitCode, CliError> {
    match command {
        PolicyRemote::Push { file, remote } => ops::policy_push(&remote, &file),
        PolicyRemote::Pull { output, remote } => ops::policy_pull(&remote, output.as_deref()),
    }
}
