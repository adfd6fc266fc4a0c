//! The operator commands: each is one or two HTTP calls and some printing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::args::{
    ActionsArgs, ActionsCommand, AgentsArgs, AgentsCommand, AuditArgs, AuditCommand, KeysArgs,
    KeysCommand, Remote,
};
use super::http::Api;
use crate::CliError;

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn seg(id: &str) -> Result<&str, CliError> {
    if id.is_empty() || id.contains(['/', '?', '#']) {
        return Err(CliError::usage(format!("`{id}` is not a valid id")));
    }
    Ok(id)
}

pub fn keys(args: KeysArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.remote)?;
    match args.command {
        KeysCommand::Create { role, name } => {
            let body = json!({"role": role, "name": name});
            let v = api.json(api.request(Method::POST, "/api/v1/keys").json(&body))?;
            eprintln!(
                "created {} key {} ({}); it is shown only now:",
                s(&v["role"]),
                s(&v["id"]),
                s(&v["name"])
            );
            println!("{}", s(&v["key"]));
        }
        KeysCommand::List { json } => {
            let v = api.json(api.request(Method::GET, "/api/v1/keys"))?;
            if json {
                print_json(&v);
            } else {
                for k in v["keys"].as_array().into_iter().flatten() {
                    let state = if k["revoked"].as_bool() == Some(true) {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        s(&k["id"]),
                        s(&k["role"]),
                        state,
                        s(&k["prefix"]),
                        s(&k["created_at"]),
                        s(&k["name"])
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            api.json(api.request(Method::DELETE, &format!("/api/v1/keys/{}", seg(&id)?)))?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn actions(args: ActionsArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.remote)?;
    match args.command {
        ActionsCommand::List {
            status,
            agent,
            limit,
            offset,
            json,
        } => {
            let mut query = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
            query.extend(status.map(|v| ("status", v)));
            query.extend(agent.map(|v| ("agent_id", v)));
            let v = api.json(api.request(Method::GET, "/api/v1/actions").query(&query))?;
            if json {
                print_json(&v);
                return Ok(ExitCode::SUCCESS);
            }
            for a in v["actions"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{} {}\t{}\t{}",
                    s(&a["id"]),
                    s(&a["status"]),
                    s(&a["operation"]),
                    s(&a["risk_level"]),
                    a["risk_score"],
                    s(&a["agent_id"]),
                    s(&a["created_at"])
                );
            }
            eprintln!(
                "{} of {} actions",
                v["actions"].as_array().map_or(0, Vec::len),
                v["total"]
            );
        }
        ActionsCommand::Show { id } => {
            print_json(
                &api.json(api.request(Method::GET, &format!("/api/v1/actions/{}", seg(&id)?)))?,
            );
        }
        ActionsCommand::Approve { id, comment } => {
            let path = format!("/api/v1/actions/{}/approve", seg(&id)?);
            let v = api.json(
                api.request(Method::POST, &path)
                    .json(&json!({"comment": comment})),
            )?;
            println!("{}: {} ({})", id, s(&v["status"]), s(&v["reason"]));
        }
        ActionsCommand::Reject { id, reason } => {
            let path = format!("/api/v1/actions/{}/reject", seg(&id)?);
            let v = api.json(
                api.request(Method::POST, &path)
                    .json(&json!({"reason": reason})),
            )?;
            println!("{}: {} ({})", id, s(&v["status"]), s(&v["reason"]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn agents(args: AgentsArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.remote)?;
    match args.command {
        AgentsCommand::List { json } => {
            let v = api.json(api.request(Method::GET, "/api/v1/agents"))?;
            if json {
                print_json(&v);
                return Ok(ExitCode::SUCCESS);
            }
            for a in v["agents"].as_array().into_iter().flatten() {
                let blocked = if a["blocked"].as_bool() == Some(true) {
                    "BLOCKED"
                } else {
                    "active"
                };
                let c = &a["counts"];
                println!(
                    "{}\t{}\tapproved={} denied={} pending={}\tlast seen {}\t{}",
                    s(&a["agent_id"]),
                    blocked,
                    c["approved"],
                    c["denied"],
                    c["pending_approval"],
                    s(&a["last_seen"]),
                    s(&a["name"])
                );
            }
        }
        AgentsCommand::Block { agent_id, reason } => {
            let path = format!("/api/v1/agents/{}/block", seg(&agent_id)?);
            api.json(
                api.request(Method::POST, &path)
                    .json(&json!({"reason": reason})),
            )?;
            println!("blocked {agent_id}");
        }
        AgentsCommand::Unblock { agent_id } => {
            let path = format!("/api/v1/agents/{}/unblock", seg(&agent_id)?);
            api.json(api.request(Method::POST, &path).json(&json!({})))?;
            println!("unblocked {agent_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn policy_push(remote: &Remote, file: &Path) -> Result<ExitCode, CliError> {
    let text = if file == Path::new("-") {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .map_err(|e| CliError::failed(format!("cannot read stdin: {e}")))?;
        t
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?
    };
    let api = Api::new(remote)?;
    let request = api
        .request(Method::PUT, "/api/v1/policies")
        .header("Content-Type", "text/plain")
        .body(text);
    let v = api.json(request)?;
    println!(
        "stored policies version {} ({} policies)",
        v["version"],
        v["policy_ids"].as_array().map_or(0, Vec::len)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn policy_pull(remote: &Remote, output: Option<&Path>) -> Result<ExitCode, CliError> {
    let api = Api::new(remote)?;
    let text = api
        .send(
            api.request(Method::GET, "/api/v1/policies")
                .header("Accept", "text/plain"),
        )?
        .text()
        .map_err(|e| CliError::failed(format!("cannot read the policies: {e}")))?;
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(args: AuditArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.remote)?;
    match args.command {
        AuditCommand::Export {
            agent,
            decision,
            since,
            until,
            output,
        } => {
            let mut query = Vec::new();
            query.extend(agent.map(|v| ("agent_id", v)));
            query.extend(decision.map(|v| ("decision", v)));
            query.extend(since.map(|v| ("since", v)));
            query.extend(until.map(|v| ("until", v)));
            let response = api.send(api.request(Method::GET, "/api/v1/audit").query(&query))?;
            export(response, output.as_deref())
        }
        AuditCommand::Verify => {
            let v = api.json(api.request(Method::GET, "/api/v1/audit/verify"))?;
            if v["valid"].as_bool() == Some(true) {
                println!("audit chain valid: {} events", v["events"]);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "audit chain BROKEN after {} good events; first broken: {} ({})",
                    v["events"],
                    s(&v["first_broken"]),
                    s(&v["detail"])
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

fn export(
    response: reqwest::blocking::Response,
    output: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let io = |e: std::io::Error| CliError::failed(format!("export failed: {e}"));
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(io)?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let bar = if output.is_some() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} events ({per_sec}) {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut events = 0u64;
    for line in BufReader::new(response).lines() {
        let line = line.map_err(io)?;
        writeln!(out, "{line}").map_err(io)?;
        events += 1;
        bar.inc(1);
    }
    out.flush().map_err(io)?;
    bar.finish_and_clear();
    eprintln!("exported {events} events");
    Ok(ExitCode::SUCCESS)
}
