//! Actions: what an agent asked to do, the decision, and what a person did about it.

mod review;
mod submit;
mod write;

pub(crate) use review::{ADD_AGENT_COUNTS, count_agent};
pub use review::{AgentCount, Review, expire_due, review};
pub use submit::{SubmitRequest, submit};

use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::json;
use crate::store::Store;

pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";
pub const PENDING: &str = "pending_approval";

/// One row of `actions`.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct ActionRecord {
    pub id: String,
    pub org_id: String,
    pub key_id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub action_type: String,
    pub operation: String,
    pub service: Option<String>,
    pub region: String,
    pub resource: Option<String>,
    pub tool_name: Option<String>,
    pub description: Option<String>,
    pub parameters: String,
    pub fingerprint: String,
    pub client_risk_score: Option<i64>,
    pub risk_score: i64,
    pub risk_level: String,
    pub status: String,
    pub reason: String,
    pub reasons: String,
    pub policy_ids: String,
    pub alert_id: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decided_via: String,
    pub comment: Option<String>,
    pub grant_state: Option<String>,
    pub granted_from: Option<String>,
    pub result: Option<String>,
}

/// Text in ASCII upper case, written as it is formatted instead of copied first (every
/// submit's answer carries its risk level so).
struct AsciiUpper<'a>(&'a str);

impl std::fmt::Display for AsciiUpper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        self.0
            .chars()
            .try_for_each(|c| f.write_char(c.to_ascii_uppercase()))
    }
}

fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// What `decision_view` shows: the submit's and the status's answer, which
/// [`ActionRecord::decision_json`] writes by hand and this struct defines (`full_view`
/// serialises it, and the property test compares the two).
#[derive(Debug, serde::Serialize)]
pub struct DecisionView<'a> {
    pub id: &'a str,
    pub action_id: &'a str,
    pub status: &'a str,
    pub risk_score: i64,
    pub risk_level: &'a str,
    pub requires_approval: bool,
    pub approval_request_id: Option<&'a String>,
    pub alert_triggered: bool,
    pub alert_id: Option<&'a str>,
    pub reason: &'a str,
    pub summary: String,
    pub message: &'static str,
    pub policy_ids: Value,
    pub expires_at: Option<&'a str>,
    pub decided_by: Option<&'a str>,
    pub decided_at: Option<&'a str>,
    pub decided_via: &'a str,
    pub comment: Option<&'a str>,
    pub approved_by: Option<&'a str>,
    pub rejected_by: Option<&'a str>,
    pub granted_from: Option<&'a str>,
}

impl ActionRecord {
    /// How the summary and the message put the outcome: the verdict, what follows it in
    /// the summary (the id to approve, or the reason) and the message.
    fn outcome(&self) -> (&'static str, &str, &'static str) {
        match self.status.as_str() {
            PENDING => ("awaits approval", &self.id, "Action pending approval"),
            APPROVED => ("approved", &self.reason, "Action approved"),
            _ => ("denied", &self.reason, "Action denied"),
        }
    }

    fn summary(&self) -> String {
        let (verdict, detail, _) = self.outcome();
        format!(
            "{} ({} {}) {verdict}: {detail}",
            self.operation,
            AsciiUpper(&self.risk_level),
            self.risk_score
        )
    }

    fn message(&self) -> &'static str {
        self.outcome().2
    }

    /// The decision as clients read it (submit and status responses).
    pub fn decision_view(&self) -> DecisionView<'_> {
        let pending = self.status == PENDING;
        let rejected = self.decided_via == "rejection";
        let approved = self.decided_via == "approval";
        DecisionView {
            id: &self.id,
            action_id: &self.id,
            status: &self.status,
            risk_score: self.risk_score,
            risk_level: &self.risk_level,
            requires_approval: pending,
            approval_request_id: pending.then_some(&self.id),
            alert_triggered: self.alert_id.is_some(),
            alert_id: self.alert_id.as_deref(),
            reason: &self.reason,
            summary: self.summary(),
            message: self.message(),
            policy_ids: json_text(&self.policy_ids),
            expires_at: self.expires_at.as_deref(),
            decided_by: self.decided_by.as_deref(),
            decided_at: self.decided_at.as_deref(),
            decided_via: &self.decided_via,
            comment: self.comment.as_deref(),
            approved_by: self.decided_by.as_deref().filter(|_| approved),
            rejected_by: self.decided_by.as_deref().filter(|_| rejected),
            granted_from: self.granted_from.as_deref(),
        }
    }

    /// [`decision_view`](Self::decision_view) as JSON text, written field by field: the
    /// same bytes as serde writes for it (`decision_json_is_what_serde_writes`), for the
    /// submit's answer, which every governed call waits for.
    pub fn decision_json(&self) -> Vec<u8> {
        let pending = self.status == PENDING;
        let (verdict, detail, message) = self.outcome();
        let decided_by = self.decided_by.as_deref();
        let mut out = Vec::with_capacity(768 + self.reason.len() * 2);
        let mut o = json::Object::new(&mut out);
        o.str("id", &self.id);
        o.str("action_id", &self.id);
        o.str("status", &self.status);
        o.int("risk_score", self.risk_score);
        o.str("risk_level", &self.risk_level);
        o.bool("requires_approval", pending);
        o.opt_str("approval_request_id", pending.then_some(self.id.as_str()));
        o.bool("alert_triggered", self.alert_id.is_some());
        o.opt_str("alert_id", self.alert_id.as_deref());
        o.str("reason", &self.reason);
        // The summary's parts escaped one by one: escaping maps each character alone.
        let summary = o.key("summary");
        summary.push(b'"');
        json::push_str_body(summary, &self.operation);
        summary.extend_from_slice(b" (");
        json::push_str_body(summary, &self.risk_level.to_ascii_uppercase());
        summary.push(b' ');
        json::push_int(summary, self.risk_score);
        summary.extend_from_slice(b") ");
        summary.extend_from_slice(verdict.as_bytes());
        summary.extend_from_slice(b": ");
        json::push_str_body(summary, detail);
        summary.push(b'"');
        o.str("message", message);
        match self.policy_ids.as_str() {
            "[]" => o.raw("policy_ids", "[]"),
            text => o.raw(
                "policy_ids",
                &serde_json::to_string(&json_text(text)).unwrap_or_default(),
            ),
        }
        o.opt_str("expires_at", self.expires_at.as_deref());
        o.opt_str("decided_by", decided_by);
        o.opt_str("decided_at", self.decided_at.as_deref());
        o.str("decided_via", &self.decided_via);
        o.opt_str("comment", self.comment.as_deref());
        let via = self.decided_via.as_str();
        o.opt_str("approved_by", decided_by.filter(|_| via == "approval"));
        o.opt_str("rejected_by", decided_by.filter(|_| via == "rejection"));
        o.opt_str("granted_from", self.granted_from.as_deref());
        o.end();
        out
    }

    /// Everything stored about the action.
    pub fn full_view(&self) -> Value {
        let mut view = serde_json::to_value(self.decision_view()).unwrap_or_default();
        if let Value::Object(map) = &mut view {
            let more = json!({
                "agent_id": self.agent_id,
                "agent_name": self.agent_name,
                "action_type": self.action_type,
                "operation": self.operation,
                "service": self.service,
                "region": self.region,
                "resource": self.resource,
                "tool_name": self.tool_name,
                "description": self.description,
                "parameters": json_text(&self.parameters),
                "reasons": json_text(&self.reasons),
                "client_risk_score": self.client_risk_score,
                "created_at": self.created_at,
                "result": self.result.as_deref().map(json_text),
            });
            if let Value::Object(more) = more {
                map.extend(more);
            }
        }
        view
    }
}

pub async fn load_in(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
) -> Result<Option<ActionRecord>, ApiError> {
    Ok(
        sqlx::query_as("SELECT * FROM actions WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Loads an action the caller may see: its organisation's, and for an agent key only
/// those submitted with that key. Anything else is 404.
pub async fn load_visible(
    store: &Store,
    who: &Principal,
    id: &str,
) -> Result<ActionRecord, ApiError> {
    let record: Option<ActionRecord> =
        sqlx::query_as("SELECT * FROM actions WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(&who.org_id)
            .fetch_optional(&store.pool)
            .await?;
    match record {
        Some(r) if who.role != Role::Agent || r.key_id == who.key_id => Ok(r),
        _ => Err(ApiError::not_found("action")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::tests::any_text;
    use proptest::prelude::*;

    fn any_record() -> impl Strategy<Value = ActionRecord> {
        let status = prop_oneof![
            Just(PENDING.to_string()),
            Just(APPROVED.to_string()),
            Just(DENIED.to_string()),
            any_text(),
        ];
        let via = prop_oneof![
            Just("approval".to_string()),
            Just("rejection".to_string()),
            Just("auto".to_string()),
            any_text(),
        ];
        let policy_ids = prop_oneof![
            Just("[]".to_string()),
            prop::collection::vec(any_text(), 0..3)
                .prop_map(|ids| serde_json::to_string(&ids).unwrap()),
            any_text(),
        ];
        let text = any_text;
        let opt = || prop::option::of(any_text());
        (
            (text(), text(), text(), any::<i64>(), text(), status, text()),
            (policy_ids, via, opt(), opt(), opt(), opt(), opt(), opt()),
        )
            .prop_map(|(a, b)| ActionRecord {
                id: a.0,
                operation: a.1,
                risk_level: a.2,
                risk_score: a.3,
                reason: a.4,
                status: a.5,
                agent_id: a.6,
                policy_ids: b.0,
                decided_via: b.1,
                alert_id: b.2,
                expires_at: b.3,
                decided_by: b.4,
                decided_at: b.5,
                comment: b.6,
                granted_from: b.7,
                ..ActionRecord::default()
            })
    }

    proptest! {
        #[test]
        fn decision_json_is_what_serde_writes(r in any_record()) {
            let expected = serde_json::to_vec(&r.decision_view()).unwrap();
            prop_assert_eq!(
                String::from_utf8(r.decision_json()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn summaries_name_the_call_its_risk_and_the_outcome() {
        let record = |status: &str| ActionRecord {
            id: "act_1".into(),
            operation: "s3.delete_bucket".into(),
            risk_level: "high".into(),
            risk_score: 75,
            status: status.into(),
            reason: "HIGH risk (75) requires approval".into(),
            ..ActionRecord::default()
        };
        assert_eq!(
            record(PENDING).summary(),
            "s3.delete_bucket (HIGH 75) awaits approval: act_1"
        );
        assert_eq!(
            record(APPROVED).summary(),
            "s3.delete_bucket (HIGH 75) approved: HIGH risk (75) requires approval"
        );
        assert_eq!(
            record(DENIED).summary(),
            "s3.delete_bucket (HIGH 75) denied: HIGH risk (75) requires approval"
        );
    }
}
