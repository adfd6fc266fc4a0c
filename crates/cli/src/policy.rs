//! `ascend policy check|test` work on local files; `push|pull` talk to a server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ascend_core::{Call, PolicyEngine, Settings, Verdict, decide};
use clap::{Args, Subcommand};

use crate::CliError;
use crate::classify::{parse_call, parse_params};
use crate::platform;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a Cedar policy file; errors name their line and column.
    Check {
        /// The Cedar policy file.
        file: PathBuf,
    },
    /// Decide a sample call against a policy file.
    Test(TestArgs),
    #[command(flatten)]
    Remote(platform::PolicyRemote),
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The Cedar policy file.
    pub file: PathBuf,
    /// The agent id making the call.
    #[arg(long, default_value = "agent")]
    pub agent: String,
    /// The call, e.g. s3.delete_bucket.
    #[arg(long)]
    pub call: String,
    /// The call's parameters as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// The region the call goes to.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Let MEDIUM calls that no policy matches run without approval.
    #[arg(long)]
    pub auto_approve_medium: bool,
}

fn load(file: &Path) -> Result<PolicyEngine, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
    PolicyEngine::compile(&text).map_err(|e| {
        let lines: Vec<String> = e
            .diagnostics
            .iter()
            .map(|d| format!("{}: {d}", file.display()))
            .collect();
        CliError::usage(lines.join("\n"))
    })
}

pub fn run(command: PolicyCommand) -> Result<ExitCode, CliError> {
    match command {
        PolicyCommand::Check { file } => {
            let engine = load(&file)?;
            println!(
                "{}: {} polic{} valid",
                file.display(),
                engine.policies().len(),
                if engine.policies().len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test(args) => test(args),
        PolicyCommand::Remote(remote) => platform::run_policy_remote(remote),
    }
}

fn test(args: TestArgs) -> Result<ExitCode, CliError> {
    // Parse the cheap inputs first, so a typo is reported before the file is read.
    let name = parse_call(&args.call)?;
    let params = parse_params(args.params.as_deref())?;
    let engine = load(&args.file)?;
    let settings = Settings {
        auto_approve_medium_risk: args.auto_approve_medium,
        ..Settings::default()
    };
    let call = Call {
        agent_id: &args.agent,
        name: &name,
        params: &params,
        region: &args.region,
    };
    let decision = decide(&call, &settings, &engine, None);
    let verdict = match decision.verdict {
        Verdict::Allow => "ALLOW",
        Verdict::Deny => "DENY",
        Verdict::NeedsApproval => "NEEDS APPROVAL",
        Verdict::Bypass => "BYPASS",
    };
    println!("{verdict}: {name} by agent {}", args.agent);
    println!("risk: {} ({})", decision.risk_level, decision.risk_score);
    match decision.policy_ids.as_slice() {
        [] => println!("policy: none matched; decided by the defaults"),
        ids => println!("policy: {}", ids.join(", ")),
    }
    println!("reason: {}", decision.reason);
    Ok(ExitCode::SUCCESS)
}
