//! `POST /api/v1/audit/events`: calls the client decided locally, appended to the chain
//! once each (idempotent by `action_id`), redacted, and counted for their agents.

use ascend_core::redact;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::actions::{APPROVED, AgentCount, DENIED, PENDING};
use crate::audit::{self, Entry};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::limits::{check_name_length, check_parameter_count};
use crate::routes::AppState;
use crate::util::{now, parse_ts};

pub const MAX_EVENTS: usize = 500;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UploadBatch {
    pub events: Vec<UploadEvent>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UploadEvent {
    pub action_id: String,
    pub agent_id: String,
    pub agent_name: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
    pub action_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    pub region: Option<String>,
    pub decision: String,
    pub risk_score: Option<u8>,
    pub risk_level: Option<String>,
    pub reason: Option<String>,
    #[serde(default)]
    pub policy_ids: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
    pub timestamp: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Value>,
}

fn check(e: &UploadEvent) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::invalid(format!("event {}: {m}", e.action_id)));
    if e.action_id.trim().is_empty() || e.action_id.len() > 100 {
        return bad("action_id must hold 1 to 100 characters");
    }
    if e.agent_id.trim().is_empty() || e.agent_id.len() > 200 {
        return bad("agent_id must hold 1 to 200 characters");
    }
    if !matches!(e.decision.as_str(), "approved" | "denied" | "pending") {
        return bad("decision must be approved, denied or pending");
    }
    if e.risk_level
        .as_deref()
        .is_some_and(|l| ascend_core::RiskLevel::parse(l).is_none())
    {
        return bad("risk_level must be low, medium, high or critical");
    }
    if e.timestamp
        .as_deref()
        .is_some_and(|t| parse_ts(t).is_none())
    {
        return bad("timestamp must be RFC 3339");
    }
    if e.parameters
        .as_ref()
        .is_some_and(|p| !p.is_object() && !p.is_null())
    {
        return bad("parameters must be an object");
    }
    for (field, value) in [("parameters", &e.parameters), ("outcome", &e.outcome)] {
        if let Some(v) = value {
            check_parameter_count(field, v).map_err(|err| {
                ApiError::invalid(format!("event {}: {}", e.action_id, err.detail))
            })?;
        }
    }
    for (field, value) in [
        ("service", &e.service),
        ("operation", &e.operation),
        ("action_type", &e.action_type),
        ("region", &e.region),
    ] {
        check_name_length(field, value.as_deref())
            .map_err(|err| ApiError::invalid(format!("event {}: {}", e.action_id, err.detail)))?;
    }
    Ok(())
}

fn entry(e: UploadEvent) -> Entry {
    let operation = match (&e.service, &e.operation) {
        (Some(s), Some(o)) => format!("{s}.{o}"),
        _ => e.action_type.clone().unwrap_or_default(),
    };
    let decision = match e.decision.as_str() {
        "approved" => APPROVED,
        "denied" => DENIED,
        _ => PENDING,
    };
    let ts = e
        .timestamp
        .as_deref()
        .and_then(parse_ts)
        .unwrap_or_else(now);
    let params = e.parameters.as_ref().map(redact).unwrap_or(json!({}));
    Entry {
        action_id: e.action_id,
        kind: "local",
        agent_id: e.agent_id,
        decision: decision.into(),
        ts,
        body: json!({
            "agent_name": e.agent_name, "operation": operation, "parameters": params,
            "region": e.region, "risk_score": e.risk_score, "risk_level": e.risk_level,
            "reason": e.reason, "policy_ids": e.policy_ids, "dry_run": e.dry_run,
            "outcome": e.outcome, "source": "client", "received_at": now(),
        }),
    }
}

async fn append_once(conn: &mut AnyConnection, org: &str, e: Entry) -> Result<bool, ApiError> {
    let seen: Option<(i64,)> = sqlx::query_as(
        "SELECT seq FROM audit_events WHERE org_id = $1 AND action_id = $2 AND kind = 'local'",
    )
    .bind(org)
    .bind(&e.action_id)
    .fetch_optional(&mut *conn)
    .await?;
    if seen.is_some() {
        return Ok(false);
    }
    let name = e.body["agent_name"]
        .as_str()
        .unwrap_or(&e.agent_id)
        .to_string();
    let agent = AgentCount {
        org_id: org,
        agent_id: &e.agent_id.clone(),
        agent_name: &name,
        status: &e.decision.clone(),
    };
    crate::actions::count_agent(conn, &agent, 1, None).await?;
    audit::append(conn, org, e).await?;
    Ok(true)
}

/// Stores a batch; returns (accepted, duplicates).
pub async fn upload(
    state: &AppState,
    who: &Principal,
    batch: UploadBatch,
) -> Result<(usize, usize), ApiError> {
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_EVENTS} events per request"
        )));
    }
    batch.events.iter().try_for_each(check)?;
    let entries: Vec<Entry> = batch.events.into_iter().map(entry).collect();
    let total = entries.len();
    let org = who.org_id.clone();
    let accepted = state
        .store
        .write(move |conn| {
            Box::pin(async move {
                // Lock the organisation's chain first (a row lock on PostgreSQL), so that
                // two replicas receiving the same event cannot both find it new.
                sqlx::query("UPDATE orgs SET audit_seq = audit_seq WHERE id = $1")
                    .bind(&org)
                    .execute(&mut *conn)
                    .await?;
                let mut accepted = 0;
                for e in entries {
                    accepted += usize::from(append_once(conn, &org, e).await?);
                }
                Ok(accepted)
            })
        })
        .await?;
    Ok((accepted, total - accepted))
}
