//! The outbox side: the hook points call these inside the write transaction that records a
//! decision, so a delivery exists exactly when its decision was committed (a rolled-back
//! batch takes its deliveries with it). The payload is fixed here, from the stored record:
//! parameters only in their stored, already-redacted form.

use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::model::{EventKind, WebhookRow};
use crate::actions::{ActionRecord, DENIED, PENDING};
use crate::args;
use crate::error::ApiError;
use crate::store::Tx;
use crate::util::{new_id, now};

/// A submit was recorded: pending → `approval.requested`, denied → `action.denied`, and
/// an alert (risk ≥ 70) → `alert.high_risk` as well.
pub async fn on_submit<T: Tx>(conn: &mut T, r: &ActionRecord) -> Result<(), ApiError> {
    let kinds = submit_events(r);
    enqueue(conn, &r.org_id, &kinds, |kind| {
        (json!({"action": action_view(r)}), action_text(kind, r))
    })
    .await
}

/// A pending action was rejected by a person or expired.
/// The events a recorded submit raises: none for an auto-approved call below the alert
/// score, the common case, which therefore neither queues nor wakes anything.
pub fn submit_events(r: &ActionRecord) -> Vec<EventKind> {
    let mut kinds = Vec::with_capacity(2);
    match r.status.as_str() {
        PENDING => kinds.push(EventKind::ApprovalRequested),
        DENIED => kinds.push(EventKind::ActionDenied),
        _ => {}
    }
    if r.alert_id.is_some() {
        kinds.push(EventKind::HighRiskAlert);
    }
    kinds
}

pub async fn on_action_denied(conn: &mut AnyConnection, r: &ActionRecord) -> Result<(), ApiError> {
    enqueue(conn, &r.org_id, &[EventKind::ActionDenied], |kind| {
        (json!({"action": action_view(r)}), action_text(kind, r))
    })
    .await
}

/// The kill switch was turned on for `agent_id`.
pub async fn on_agent_blocked(
    conn: &mut AnyConnection,
    org_id: &str,
    agent_id: &str,
    reason: &str,
    by: &str,
) -> Result<(), ApiError> {
    let found: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT name, blocked_at FROM agents WHERE org_id = $1 AND agent_id = $2")
            .bind(org_id)
            .bind(agent_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (name, at) = found.unwrap_or_else(|| (agent_id.to_string(), None));
    let agent = json!({
        "agent_id": agent_id, "name": name, "blocked": true,
        "blocked_reason": reason, "blocked_at": at, "blocked_by": by,
    });
    let why = if reason.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", short(reason))
    };
    let text = format!(
        ":octagonal_sign: agent blocked: {} by {}{why}",
        slack_escape(agent_id),
        slack_escape(by),
        why = slack_escape(&why)
    );
    enqueue(conn, org_id, &[EventKind::AgentBlocked], |_| {
        (json!({"agent": agent}), text.clone())
    })
    .await
}

/// What a delivery says about an action.
fn action_view(r: &ActionRecord) -> Value {
    let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    json!({
        "id": r.id, "agent_id": r.agent_id, "agent_name": r.agent_name,
        "service": r.service, "operation": r.operation, "action_type": r.action_type,
        "region": r.region, "resource": r.resource,
        "risk_score": r.risk_score, "risk_level": r.risk_level,
        "status": r.status, "reason": r.reason, "policy_ids": parsed(&r.policy_ids),
        // The stored form: `ascend_core::redact` ran before the action was stored.
        "parameters": parsed(&r.parameters),
        "alert_id": r.alert_id, "created_at": r.created_at,
        "decided_at": r.decided_at, "decided_by": r.decided_by, "decided_via": r.decided_via,
    })
}

/// The one line Slack shows (`text` of an incoming webhook).
fn action_text(kind: EventKind, r: &ActionRecord) -> String {
    // A custom `action_type` is the client's text: escaped like the names.
    let what = format!(
        "{} ({} {})",
        slack_escape(&r.operation),
        r.risk_level.to_ascii_uppercase(),
        r.risk_score
    );
    // The name people gave the agent, and its id when that differs (ids are unique).
    let agent = if r.agent_name == r.agent_id {
        slack_escape(&r.agent_id)
    } else {
        slack_escape(&format!("{} ({})", r.agent_name, r.agent_id))
    };
    let line = match kind {
        EventKind::ApprovalRequested => {
            format!(":warning: approval requested: {agent} wants {what}")
        }
        EventKind::ActionDenied => format!(
            ":no_entry: denied: {agent} {what}: {}",
            slack_escape(&short(&r.reason))
        ),
        EventKind::HighRiskAlert => {
            format!(
                ":rotating_light: high-risk action: {agent} {what}, {}",
                r.status
            )
        }
        // Not raised by an action (see `on_agent_blocked`); named for completeness.
        EventKind::AgentBlocked => format!(":octagonal_sign: {agent} {what}"),
    };
    format!("{line} — {}", r.id)
}

/// Slack reads `&`, `<` and `>` as markup; its docs ask for these three escapes.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Inserts one pending delivery per (event, subscribed webhook). `body` gives the event's
/// own fields (`action` or `agent`) and its `text`.
async fn enqueue<T: Tx>(
    conn: &mut T,
    org_id: &str,
    kinds: &[EventKind],
    body: impl Fn(EventKind) -> (Value, String),
) -> Result<(), ApiError> {
    if kinds.is_empty() {
        return Ok(());
    }
    let hooks = conn
        .fetch_all(
            "SELECT id, org_id, url, events, description, secret, created_at FROM webhooks \
             WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
            &args![org_id],
        )
        .await?
        .iter()
        .map(WebhookRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if hooks.is_empty() {
        return Ok(());
    }
    let org_name = conn
        .fetch_one("SELECT name FROM orgs WHERE id = $1", &args![org_id])
        .await?
        .text(0)?;
    let ts = now();
    for &kind in kinds {
        let (fields, text) = body(kind);
        for hook in hooks.iter().filter(|h| h.subscribes_to(kind)) {
            let id = new_id("whd");
            let mut payload = json!({
                "id": id, "event": kind.as_str(), "created_at": ts,
                "org": {"id": org_id, "name": org_name}, "text": text,
                "webhook_id": hook.id,
            });
            if let (Value::Object(p), Value::Object(f)) = (&mut payload, &fields) {
                p.extend(f.clone());
            }
            conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, org_id, event, payload, state, \
                 attempts, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 'pending', \
                 0, $6, $6)",
                &args![
                    &id,
                    &hook.id,
                    org_id,
                    kind.as_str(),
                    &payload.to_string(),
                    &ts
                ],
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_is_escaped_and_long_reasons_are_cut() {
        assert_eq!(slack_escape("<a> & b"), "&lt;a&gt; &amp; b");
        let long = "x".repeat(500);
        assert_eq!(short(&long).chars().count(), 201);
        assert_eq!(short("ok"), "ok");
    }
}
