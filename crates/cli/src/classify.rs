//! `ascend classify`: score one call and say why.

use std::process::ExitCode;

use ascend_core::{OperationName, classify};
use clap::Args;
use serde_json::{Value, json};

use crate::CliError;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// The call, in any spelling: s3.delete_bucket, s3:DeleteBucket, S3.DELETE_BUCKET.
    pub call: String,
    /// The call's parameters as a JSON object, e.g. '{"Bucket":"b"}'.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Print {"service","operation","risk_score","risk_level","reasons"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--params`: absent → null; otherwise it must be a JSON object.
pub fn parse_params(text: Option<&str>) -> Result<Value, CliError> {
    let Some(text) = text else {
        return Ok(Value::Null);
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| CliError::usage(format!("--params is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(CliError::usage(
            "--params must be a JSON object of parameter names to values, e.g. '{\"Bucket\":\"b\"}'",
        ));
    }
    Ok(value)
}

pub fn parse_call(text: &str) -> Result<OperationName, CliError> {
    OperationName::parse(text).map_err(|e| CliError::usage(e.to_string()))
}

pub fn run(args: ClassifyArgs) -> Result<ExitCode, CliError> {
    let name = parse_call(&args.call)?;
    let params = parse_params(args.params.as_deref())?;
    let result = classify(&name, &params);
    if args.json {
        let out = json!({
            "service": name.service,
            "operation": name.operation,
            "risk_score": result.score,
            "risk_level": result.level.as_str(),
            "reasons": result.reasons,
        });
        println!("{out}");
    } else {
        println!("{name}: {} ({})", result.level, result.score);
        for reason in &result.reasons {
            println!("  - {reason}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
