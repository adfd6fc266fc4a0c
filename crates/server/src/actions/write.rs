//! What a decided submit writes, in one job on the writer: the action's row (with an
//! unused id), the approval grant it consumes if one matches, the agent's counters, its
//! decision event on the organisation's audit chain and the webhook deliveries it raises.
//! Deciding is `submit.rs`'s; nothing here re-decides or reads the request.

use std::borrow::Cow;

use ascend_core::Verdict;
use serde_json::Value;
#[cfg(test)]
use serde_json::json;

use super::{APPROVED, ActionRecord, PENDING};
use crate::args;
use crate::audit;
use crate::error::ApiError;
use crate::json;
use crate::store::{Event, Tx, WriteJob};
use crate::util::{canonical, new_id};

/// Everything the write needs, owned.
pub(super) struct NewAction {
    pub(super) record: ActionRecord,
    pub(super) verdict: Verdict,
    pub(super) requested_id: Option<String>,
}

/// What the dashboard's live queue listens for.
pub(super) fn pending_event(r: &ActionRecord) -> Event {
    Event::Pending {
        org: r.org_id.clone(),
        id: r.id.clone(),
    }
}

async fn unused_id<T: Tx>(conn: &mut T, requested: Option<String>) -> Result<String, ApiError> {
    if let Some(id) = requested {
        let taken = conn
            .fetch_optional("SELECT id FROM actions WHERE id = $1", &args![&id])
            .await?;
        if taken.is_none() {
            return Ok(id);
        }
    }
    Ok(new_id("act"))
}

/// Consumes an unused approval of the same call (agent, operation, fingerprint).
async fn take_grant<T: Tx>(
    conn: &mut T,
    r: &ActionRecord,
) -> Result<Option<(String, String)>, ApiError> {
    let row = conn
        .fetch_optional(
            "UPDATE actions SET grant_state = 'used' WHERE id = (SELECT id FROM actions \
             WHERE org_id = $1 AND agent_id = $2 AND operation = $3 AND fingerprint = $4 \
             AND grant_state = 'available' ORDER BY decided_at LIMIT 1) \
             AND grant_state = 'available' RETURNING id, decided_by",
            &args![&r.org_id, &r.agent_id, &r.operation, &r.fingerprint],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id = row.text(0)?;
    let reason = format!(
        "approved against the grant of {id} (approved by {})",
        row.opt_text(1).unwrap_or_default()
    );
    Ok(Some((id, reason)))
}

impl WriteJob for NewAction {
    type Output = ActionRecord;

    async fn run<T: Tx>(self, conn: &mut T) -> Result<ActionRecord, ApiError> {
        let record = store_new(conn, self).await?;
        if record.status == PENDING {
            conn.notify(pending_event(&record).encode()).await?;
        }
        Ok(record)
    }
}

async fn store_new<T: Tx>(conn: &mut T, new: NewAction) -> Result<ActionRecord, ApiError> {
    let mut r = new.record;
    r.id = unused_id(conn, new.requested_id).await?;
    if new.verdict == Verdict::NeedsApproval
        && let Some((grant, reason)) = take_grant(conn, &r).await?
    {
        r.granted_from = Some(grant);
        r.status = APPROVED.into();
        r.decided_via = "grant".into();
        r.decided_at = Some(r.created_at.clone());
        r.expires_at = None;
        r.reason = reason;
    }
    insert(conn, &r).await?;
    super::review::count_agent(conn, &r.agent_count(), 1, None).await?;
    append_decision(conn, &r, "decision").await?;
    crate::webhooks::on_submit(conn, &r).await?;
    Ok(r)
}

/// Appends `r`'s decision to its organisation's audit chain.
pub(crate) async fn append_decision<T: Tx>(
    conn: &mut T,
    r: &ActionRecord,
    kind: &'static str,
) -> Result<i64, ApiError> {
    let meta = decision_meta(r, kind);
    audit::append_rendered(conn, &r.org_id, meta, |seq| decision_text(r, meta, seq)).await
}

/// The row fields of `r`'s decision event.
fn decision_meta<'a>(r: &'a ActionRecord, kind: &'static str) -> audit::Meta<'a> {
    audit::Meta {
        action_id: &r.id,
        kind,
        agent_id: &r.agent_id,
        decision: &r.status,
        ts: r.decided_at.as_deref().unwrap_or(&r.created_at),
    }
}

/// A decision event's body in canonical form, written field by field in sorted key order
/// instead of built as a map and sorted (this runs once per submit on the single writer).
/// `decision_entry_text_is_canonical` holds it to [`canonical`] of the same body.
fn decision_text(r: &ActionRecord, meta: audit::Meta<'_>, seq: i64) -> String {
    let parameters = canonical_raw(&r.parameters);
    let policy_ids = canonical_raw(&r.policy_ids);
    let mut out = Vec::with_capacity(512 + r.reason.len() + parameters.len());
    // Keys in UTF-16 order, as RFC 8785 sorts them; strings escape as `canonical` escapes
    // them (both write serde_json's escapes).
    let mut o = json::Object::new(&mut out);
    o.str("action_id", meta.action_id);
    o.str("action_type", &r.action_type);
    o.str("agent_id", meta.agent_id);
    o.str("agent_name", &r.agent_name);
    o.opt_str("comment", r.comment.as_deref());
    o.opt_str("decided_by", r.decided_by.as_deref());
    o.str("decided_via", &r.decided_via);
    o.str("decision", meta.decision);
    o.str("kind", meta.kind);
    o.str("operation", &r.operation);
    o.raw("parameters", &parameters);
    o.raw("policy_ids", &policy_ids);
    o.str("reason", &r.reason);
    o.str("risk_level", &r.risk_level);
    o.int("risk_score", r.risk_score);
    o.int("seq", seq);
    o.str("source", "platform");
    o.str("timestamp", meta.ts);
    o.end();
    // Only `str`s and ASCII were written.
    String::from_utf8(out).unwrap_or_default()
}

/// A stored JSON column as canonical text; `null` where it does not parse.
fn canonical_raw(stored: &str) -> Cow<'_, str> {
    match stored {
        // The common cases, already canonical.
        "{}" | "[]" => Cow::Borrowed(stored),
        _ => Cow::Owned(
            serde_json::from_str::<Value>(stored)
                .map_or_else(|_| "null".to_string(), |v| canonical(&v)),
        ),
    }
}

/// The decision body as a map: the form [`decision_text`] must match.
#[cfg(test)]
fn decision_entry(r: &ActionRecord, kind: &'static str) -> audit::Entry {
    let body = json!({
        "agent_name": r.agent_name,
        "operation": r.operation,
        "action_type": r.action_type,
        "parameters": serde_json::from_str::<Value>(&r.parameters).unwrap_or(Value::Null),
        "risk_score": r.risk_score,
        "risk_level": r.risk_level,
        "reason": r.reason,
        "policy_ids": serde_json::from_str::<Value>(&r.policy_ids).unwrap_or(Value::Null),
        "decided_by": r.decided_by,
        "decided_via": r.decided_via,
        "comment": r.comment,
        "source": "platform",
    });
    audit::Entry {
        action_id: r.id.clone(),
        kind,
        agent_id: r.agent_id.clone(),
        decision: r.status.clone(),
        ts: r.decided_at.clone().unwrap_or_else(|| r.created_at.clone()),
        body,
    }
}

async fn insert<T: Tx>(conn: &mut T, r: &ActionRecord) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO actions (id, org_id, key_id, agent_id, agent_name, action_type, operation, \
         service, region, resource, tool_name, description, parameters, fingerprint, \
         client_risk_score, risk_score, risk_level, status, reason, reasons, policy_ids, \
         alert_id, created_at, expires_at, decided_at, decided_via, granted_from) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24, $25, $26, $27)",
        &args![
            &r.id,
            &r.org_id,
            &r.key_id,
            &r.agent_id,
            &r.agent_name,
            &r.action_type,
            &r.operation,
            &r.service,
            &r.region,
            &r.resource,
            &r.tool_name,
            &r.description,
            &r.parameters,
            &r.fingerprint,
            r.client_risk_score,
            r.risk_score,
            &r.risk_level,
            &r.status,
            &r.reason,
            &r.reasons,
            &r.policy_ids,
            &r.alert_id,
            &r.created_at,
            &r.expires_at,
            &r.decided_at,
            &r.decided_via,
            &r.granted_from,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `audit::append` makes of the map form: the reference `decision_text` meets.
    fn canonical_of_map(r: &ActionRecord, kind: &'static str, seq: i64) -> String {
        let mut body = decision_entry(r, kind).body;
        audit::canonical_body(&mut body, decision_meta(r, kind), seq)
    }

    proptest::proptest! {
        #[test]
        fn decision_entry_text_is_canonical(
            text in proptest::collection::vec("(\\PC|[\\x00-\\x1f\"\\\\\u{e000}\u{1f600}]){0,6}", 8),
            params in proptest::sample::select(vec![
                "{}", "[]", r#"{"b":1,"a":[true,null,"x"],"A":{"z":1.5,"y":"\u0001"}}"#,
                r#"{"Bucket":"b","Key":"\u00e9\ud83d\ude00"}"#, "not json", r#"{"n":1e21}"#,
            ]),
            policies in proptest::sample::select(vec!["[]", r#"["p1","p\"2"]"#, ""]),
            decided in proptest::bool::ANY,
            seq in 1i64..1_000_000_000_000,
            score in 0i64..=100,
        ) {
            let r = ActionRecord {
                id: text[0].clone(),
                agent_id: text[1].clone(),
                agent_name: text[2].clone(),
                action_type: text[3].clone(),
                operation: "s3.list_buckets".into(),
                parameters: params.into(),
                policy_ids: policies.into(),
                reason: text[4].clone(),
                risk_score: score,
                risk_level: "LOW".into(),
                status: text[5].clone(),
                created_at: "2026-11-27T12:00:00.123Z".into(),
                decided_at: decided.then(|| text[6].clone()),
                decided_by: decided.then(|| text[7].clone()),
                decided_via: "auto".into(),
                comment: decided.then(|| text[7].clone()),
                ..ActionRecord::default()
            };
            for kind in ["decision", "review"] {
                proptest::prop_assert_eq!(
                    decision_text(&r, decision_meta(&r, kind), seq),
                    canonical_of_map(&r, kind, seq)
                );
            }
        }
    }
}
