//! `POST /api/v1/actions/submit`: read either body shape, re-decide with the
//! organisation's policies (never trusting a client's score), then hand the record to the
//! writer (`write.rs`: grant, row, audit event).

use std::sync::OnceLock;

use ascend_core::{
    Call, Decision, OperationName, RiskLevel, Settings, Verdict, classify_action_type, decide,
    redact,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::write::{NewAction, pending_event};
use super::{APPROVED, ActionRecord, DENIED, PENDING};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json;
use crate::limits::{check_name_length, check_parameter_count};
use crate::org::OrgContext;
use crate::routes::AppState;
use crate::util::{fingerprint, in_secs, is_action_id, new_id, now};

/// Both body shapes: ours (`service`, `operation`, `parameters`) and the ASCEND SDK's
/// (`action_type`, `resource`, `action_details`, `context`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SubmitRequest {
    pub action_type: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub action_details: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    pub resource: Option<String>,
    pub resource_id: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub tool_name: Option<String>,
    pub description: Option<String>,
    pub region: Option<String>,
    /// Kept for the record; never used for the decision.
    pub risk_score: Option<f64>,
    pub auto_approve_low_risk: Option<bool>,
    pub auto_approve_medium_risk: Option<bool>,
    pub client_action_id: Option<String>,
}

enum Target {
    Aws(OperationName),
    Custom(String),
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn known_aws(text: &str) -> Option<OperationName> {
    OperationName::parse(text)
        .ok()
        .filter(|n| n.info().is_some())
}

fn target(req: &SubmitRequest) -> Result<Target, ApiError> {
    if let (Some(s), Some(o)) = (nonempty(&req.service), nonempty(&req.operation)) {
        return OperationName::parse(&format!("{s}.{o}"))
            .map(Target::Aws)
            .map_err(|e| ApiError::invalid(e.to_string()));
    }
    let Some(action_type) = nonempty(&req.action_type) else {
        return Err(ApiError::invalid(
            "action_type (or service and operation) is required",
        ));
    };
    if let Ok(name) = OperationName::parse(action_type) {
        return Ok(Target::Aws(name));
    }
    // The 1.x wrapper's SDK path: `aws_api_call` with the call in `resource` or details.
    let details = req.action_details.as_ref();
    let from_details = details.and_then(|d| {
        let s = d.get("service")?.as_str()?;
        let o = d.get("operation")?.as_str()?;
        known_aws(&format!("{s}.{o}"))
    });
    let found = nonempty(&req.resource).and_then(known_aws).or(from_details);
    Ok(found.map_or_else(|| Target::Custom(action_type.to_string()), Target::Aws))
}

fn object(field: &str, v: &Option<Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(ApiError::invalid(format!("`{field}` must be an object"))),
    }
}

fn parameters(req: &SubmitRequest) -> Result<Value, ApiError> {
    let params = object("parameters", &req.parameters)?;
    let details = object("action_details", &req.action_details)?;
    object("context", &req.context)?;
    if let Some(p) = params {
        return Ok(Value::Object(p));
    }
    let Some(mut details) = details else {
        return Ok(json!({}));
    };
    if let Some(Value::Object(p)) = details.get("params") {
        return Ok(Value::Object(p.clone()));
    }
    details.remove("tool_name");
    details.remove("description");
    Ok(Value::Object(details))
}

fn custom_decision(action_type: &str, settings: &Settings, blocked: Option<&str>) -> Decision {
    let c = classify_action_type(action_type);
    let mut d = Decision {
        verdict: Verdict::Deny,
        risk_score: c.score,
        risk_level: c.level,
        reasons: c.reasons,
        policy_ids: Vec::new(),
        reason: String::new(),
        dry_run: false,
    };
    let (level, score) = (d.risk_level, d.risk_score);
    let (verdict, reason) = match blocked {
        Some(why) => (Verdict::Deny, blocked_reason(why)),
        None if settings.auto_approves(level) => (
            Verdict::Allow,
            format!("{level} risk ({score}): auto-approved"),
        ),
        None => (
            Verdict::NeedsApproval,
            format!("{level} risk ({score}) requires approval"),
        ),
    };
    d.verdict = verdict;
    d.reasons.push(reason.clone());
    d.reason = reason;
    d
}

fn blocked_reason(why: &str) -> String {
    if why.trim().is_empty() {
        "agent is blocked by an administrator".into()
    } else {
        format!("agent is blocked by an administrator: {why}")
    }
}

fn validate_ids(agent_id: &str, agent_name: &str) -> Result<(), ApiError> {
    if agent_id.len() > 200 || agent_name.len() > 200 {
        return Err(ApiError::invalid(
            "agent_id and agent_name hold at most 200 characters",
        ));
    }
    if agent_id.contains(['/', '|']) || agent_id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "agent_id must not contain `/`, `|` or control characters",
        ));
    }
    Ok(())
}

/// Bounds on what the body holds, checked before anything reads it further.
fn check_sizes(req: &SubmitRequest) -> Result<(), ApiError> {
    for (field, value) in [
        ("parameters", &req.parameters),
        ("action_details", &req.action_details),
        ("context", &req.context),
    ] {
        if let Some(v) = value {
            check_parameter_count(field, v)?;
        }
    }
    for (field, value) in [
        ("action_type", &req.action_type),
        ("service", &req.service),
        ("operation", &req.operation),
        ("resource", &req.resource),
        ("resource_id", &req.resource_id),
        ("tool_name", &req.tool_name),
        ("region", &req.region),
    ] {
        check_name_length(field, value.as_deref())?;
    }
    Ok(())
}

/// The call a submit names, read from either body shape.
struct Parsed {
    target: Target,
    params: Value,
    agent_id: String,
    agent_name: String,
    region: String,
}

fn parse(req: &SubmitRequest) -> Result<Parsed, ApiError> {
    check_sizes(req)?;
    let target = target(req)?;
    let params = parameters(req)?;
    let agent_id = nonempty(&req.agent_id).unwrap_or("unknown").to_string();
    let agent_name = nonempty(&req.agent_name).unwrap_or(&agent_id).to_string();
    validate_ids(&agent_id, &agent_name)?;
    let region = nonempty(&req.region)
        .or_else(|| req.context.as_ref()?.get("region")?.as_str())
        .unwrap_or("")
        .to_string();
    Ok(Parsed {
        target,
        params,
        agent_id,
        agent_name,
        region,
    })
}

/// The decision, with the canonical operation name and service.
fn decide_call(
    call: &Parsed,
    settings: &Settings,
    org: &OrgContext,
    blocked: Option<&str>,
) -> (Decision, String, Option<String>) {
    match &call.target {
        Target::Aws(name) => {
            let input = Call {
                agent_id: &call.agent_id,
                name,
                params: &call.params,
                region: &call.region,
            };
            let mut d = decide(&input, settings, &org.engine, blocked);
            if d.verdict == Verdict::Bypass {
                d.verdict = Verdict::Allow;
            }
            (d, name.to_string(), Some(name.service.clone()))
        }
        Target::Custom(t) => (
            custom_decision(t, settings, blocked),
            t.to_ascii_lowercase(),
            None,
        ),
    }
}

fn status_of(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow | Verdict::Bypass => APPROVED,
        Verdict::Deny => DENIED,
        Verdict::NeedsApproval => PENDING,
    }
}

/// The record to store (its id is given on write).
fn record(
    who: &Principal,
    req: &SubmitRequest,
    call: Parsed,
    d: &Decision,
    op: String,
    service: Option<String>,
    ttl: u64,
) -> ActionRecord {
    let status = status_of(d.verdict);
    let (now, pending) = (now(), status == PENDING);
    let resource = nonempty(&req.resource)
        .or(nonempty(&req.resource_id))
        .map(str::to_string)
        .or_else(|| {
            let Target::Aws(name) = &call.target else {
                return None;
            };
            ascend_core::main_resource(name.info(), &call.params).map(|r| r.name)
        });
    ActionRecord {
        id: String::new(),
        org_id: who.org_id.clone(),
        key_id: who.key_id.clone(),
        action_type: nonempty(&req.action_type).unwrap_or(&op).to_string(),
        operation: op,
        service,
        resource,
        tool_name: req.tool_name.clone(),
        description: req.description.clone(),
        parameters: redact(&call.params).to_string(),
        fingerprint: fingerprint(&call.params),
        agent_id: call.agent_id,
        agent_name: call.agent_name,
        region: call.region,
        client_risk_score: req.risk_score.map(|s| s.round() as i64),
        risk_score: d.risk_score.into(),
        risk_level: d.risk_level.as_str().to_string(),
        status: status.to_string(),
        reason: d.reason.clone(),
        reasons: json_list(&d.reasons),
        policy_ids: json_list(&d.policy_ids),
        alert_id: (d.risk_score >= ALERT_SCORE).then(|| new_id("alr")),
        created_at: now.clone(),
        expires_at: pending.then(|| in_secs(ttl)),
        decided_at: (!pending).then_some(now),
        decided_by: None,
        decided_via: if d.policy_ids.is_empty() {
            "auto"
        } else {
            "policy"
        }
        .into(),
        comment: None,
        grant_state: None,
        granted_from: None,
        result: None,
    }
}

/// A list of strings as JSON text, written straight from the strings (`json!` would copy
/// each into a `Value` first).
fn json_list(items: &[String]) -> String {
    let mut out = Vec::with_capacity(2 + items.iter().map(|s| s.len() + 3).sum::<usize>());
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::push_str(&mut out, item);
    }
    out.push(b']');
    // Only `str`s and ASCII were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Actions at or above this score raise an alert.
pub const ALERT_SCORE: u8 = 70;

/// Decides and records one submit.
pub async fn submit(
    state: &AppState,
    who: &Principal,
    req: SubmitRequest,
) -> Result<ActionRecord, ApiError> {
    let (new, level) = decide_submit(state, who, req).await?;
    let record = state.store.write_job(new).await?;
    count_decision(&record, level);
    // Only a submit that raised an event can have queued a delivery: an auto-approved LOW
    // call must not send the dispatcher to the (single SQLite) writer for nothing.
    if !crate::webhooks::submit_events(&record).is_empty() {
        crate::webhooks::wake();
    }
    if record.status == PENDING {
        state.new_pending.notify_one();
        state.store.publish(pending_event(&record));
    }
    Ok(record)
}

/// The record a submit stores and its risk level. A function of its own so that the
/// request, the decision and the organisation's context are dropped before the submit
/// waits for its commit, instead of being held across it (an async function keeps every
/// local in scope alive across its awaits).
async fn decide_submit(
    state: &AppState,
    who: &Principal,
    req: SubmitRequest,
) -> Result<(NewAction, RiskLevel), ApiError> {
    let call = parse(&req)?;
    let (org, blocked) = state
        .policies
        .context_for(&state.store, &who.org_id, &call.agent_id)
        .await?;
    // The stricter of client and organisation wins.
    let settings = Settings {
        auto_approve_low_risk: org.auto_approve_low && req.auto_approve_low_risk.unwrap_or(true),
        auto_approve_medium_risk: org.auto_approve_medium
            && req.auto_approve_medium_risk.unwrap_or(true),
        ..Settings::default()
    };
    let (decision, op, service) = decide_call(&call, &settings, &org, blocked.as_deref());
    let new = NewAction {
        record: record(
            who,
            &req,
            call,
            &decision,
            op,
            service,
            state.config.pending_ttl_secs,
        ),
        verdict: decision.verdict,
        requested_id: req.client_action_id.filter(|id| is_action_id(id)),
    };
    Ok((new, decision.risk_level))
}

fn count_decision(record: &ActionRecord, level: RiskLevel) {
    decisions_counter(&record.status, level).increment(1);
    if let Some(alert) = &record.alert_id {
        metrics::counter!("ascend_alerts_total").increment(1);
        tracing::warn!(alert_id = %alert, action_id = %record.id, operation = %record.operation,
            risk_score = record.risk_score, "high-risk action: alert raised");
    }
}

/// The statuses a submit ends in and the risk levels, which `ascend_decisions_total` counts by.
const DECIDED: [&str; 3] = [APPROVED, DENIED, PENDING];
const LEVELS: [RiskLevel; 4] = [
    RiskLevel::Low,
    RiskLevel::Medium,
    RiskLevel::High,
    RiskLevel::Critical,
];

/// `ascend_decisions_total` for a status and risk level. The handles are registered once,
/// on the first submit (after `serve` installed the recorder), instead of looked up on
/// every submit: a lookup builds the labelled key, copies the status into it and hashes it
/// under the registry's lock.
fn decisions_counter(status: &str, level: RiskLevel) -> metrics::Counter {
    static HANDLES: OnceLock<Vec<metrics::Counter>> = OnceLock::new();
    match decision_slot(status, level) {
        Some(slot) => HANDLES.get_or_init(decision_counters)[slot].clone(),
        None => decision_counter(status, level),
    }
}

/// Where [`decision_counters`] keeps a status and level's handle.
fn decision_slot(status: &str, level: RiskLevel) -> Option<usize> {
    let s = DECIDED.iter().position(|known| *known == status)?;
    let l = LEVELS.iter().position(|known| *known == level)?;
    Some(s * LEVELS.len() + l)
}

/// Every status and level's handle, in [`decision_slot`] order.
fn decision_counters() -> Vec<metrics::Counter> {
    DECIDED
        .iter()
        .flat_map(|s| LEVELS.iter().map(|l| decision_counter(s, *l)))
        .collect()
}

fn decision_counter(status: &str, level: RiskLevel) -> metrics::Counter {
    let labels = [
        ("status", status.to_string()),
        ("risk_level", level.as_str().into()),
    ];
    metrics::counter!("ascend_decisions_total", &labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> SubmitRequest {
        serde_json::from_value(v).unwrap()
    }

    fn op(v: Value) -> String {
        match target(&req(v)).unwrap() {
            Target::Aws(n) => n.to_string(),
            Target::Custom(t) => format!("custom:{t}"),
        }
    }

    #[test]
    fn the_call_is_read_from_either_shape() {
        assert_eq!(
            op(json!({"service": "s3", "operation": "DeleteBucket"})),
            "s3.delete_bucket"
        );
        assert_eq!(
            op(json!({"action_type": "s3:DeleteBucket"})),
            "s3.delete_bucket"
        );
        assert_eq!(
            op(json!({"action_type": "database_write"})),
            "custom:database_write"
        );
        assert_eq!(
            op(json!({"action_type": "aws_api_call", "resource": "s3:delete_bucket"})),
            "s3.delete_bucket"
        );
        assert_eq!(
            op(
                json!({"action_type": "aws_api_call", "action_details": {"service": "ec2", "operation": "terminate_instances"}})
            ),
            "ec2.terminate_instances"
        );
        assert!(target(&req(json!({"agent_id": "a"}))).is_err());
    }

    #[test]
    fn parameters_come_from_parameters_or_action_details() {
        let p = parameters(&req(json!({"parameters": {"Bucket": "b"}}))).unwrap();
        assert_eq!(p, json!({"Bucket": "b"}));
        let p = parameters(&req(
            json!({"action_details": {"Bucket": "b", "tool_name": "s3", "description": "d"}}),
        ))
        .unwrap();
        assert_eq!(p, json!({"Bucket": "b"}));
        let p = parameters(&req(
            json!({"action_details": {"params": {"Bucket": "c"}, "service": "s3"}}),
        ))
        .unwrap();
        assert_eq!(p, json!({"Bucket": "c"}));
        assert!(parameters(&req(json!({"parameters": [1]}))).is_err());
    }

    proptest::proptest! {
        #[test]
        fn lists_are_written_as_serde_json_writes_them(
            items in proptest::collection::vec(crate::json::tests::any_text(), 0..4)
        ) {
            proptest::prop_assert_eq!(json_list(&items), serde_json::to_string(&items).unwrap());
        }
    }

    #[test]
    fn each_status_and_level_has_a_counter_of_its_own() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let rendered = recorder.handle();
        let mut expected = Vec::new();
        metrics::with_local_recorder(&recorder, || {
            let handles = decision_counters();
            for (i, status) in DECIDED.iter().enumerate() {
                for (j, level) in LEVELS.iter().enumerate() {
                    let n = (i * LEVELS.len() + j + 1) as u64;
                    handles[decision_slot(status, *level).unwrap()].increment(n);
                    expected.push(format!(
                        "ascend_decisions_total{{status=\"{status}\",risk_level=\"{}\"}} {n}",
                        level.as_str()
                    ));
                }
            }
        });
        let text = rendered.render();
        for line in expected {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert_eq!(decision_slot("expired", RiskLevel::Low), None);
    }

    #[test]
    fn a_blocked_custom_action_is_denied_with_the_reason() {
        let d = custom_decision("database_write", &Settings::default(), Some("incident 7"));
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.reason.contains("incident 7"));
        let d = custom_decision("read_report", &Settings::default(), None);
        assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    }
}
