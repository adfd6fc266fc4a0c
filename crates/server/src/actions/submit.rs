//! `POST /api/v1/actions/submit`: read either body shape, re-decide with the
//! organisation's policies (never trusting a client's score), use an approval grant if
//! one matches, store, audit.

use ascend_core::{
    Call, Decision, OperationName, RiskLevel, Settings, Verdict, classify_action_type, decide,
    redact,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{APPROVED, ActionRecord, DENIED, PENDING};
use crate::args;
use crate::audit;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::limits::{check_name_length, check_parameter_count};
use crate::org::OrgContext;
use crate::routes::AppState;
use crate::store::{Event, Tx, WriteJob};
use crate::util::{canonical, fingerprint, in_secs, is_action_id, new_id, now};

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

/// Everything the write needs, owned.
struct NewAction {
    record: ActionRecord,
    verdict: Verdict,
    requested_id: Option<String>,
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
    serde_json::to_string(items).expect("a list of strings serialises")
}

/// What the dashboard's live queue listens for.
fn pending_event(r: &ActionRecord) -> Event {
    Event::Pending {
        org: r.org_id.clone(),
        id: r.id.clone(),
    }
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
    metrics::counter!("ascend_decisions_total", "status" => record.status.clone(), "risk_level" => level.as_str())
        .increment(1);
    if let Some(alert) = &record.alert_id {
        metrics::counter!("ascend_alerts_total").increment(1);
        tracing::warn!(alert_id = %alert, action_id = %record.id, operation = %record.operation,
            risk_score = record.risk_score, "high-risk action: alert raised");
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
    // Keys in UTF-16 order, as RFC 8785 sorts them; serde writes strings as `canonical`
    // does (it is what `canonical` calls for them).
    #[derive(Serialize)]
    struct Body<'a> {
        action_id: &'a str,
        action_type: &'a str,
        agent_id: &'a str,
        agent_name: &'a str,
        comment: Option<&'a str>,
        decided_by: Option<&'a str>,
        decided_via: &'a str,
        decision: &'a str,
        kind: &'a str,
        operation: &'a str,
        parameters: &'a RawValue,
        policy_ids: &'a RawValue,
        reason: &'a str,
        risk_level: &'a str,
        risk_score: i64,
        seq: i64,
        source: &'a str,
        timestamp: &'a str,
    }
    let parameters = canonical_raw(&r.parameters);
    let policy_ids = canonical_raw(&r.policy_ids);
    let body = Body {
        action_id: meta.action_id,
        action_type: &r.action_type,
        agent_id: meta.agent_id,
        agent_name: &r.agent_name,
        comment: r.comment.as_deref(),
        decided_by: r.decided_by.as_deref(),
        decided_via: &r.decided_via,
        decision: meta.decision,
        kind: meta.kind,
        operation: &r.operation,
        parameters: &parameters,
        policy_ids: &policy_ids,
        reason: &r.reason,
        risk_level: &r.risk_level,
        risk_score: r.risk_score,
        seq,
        source: "platform",
        timestamp: meta.ts,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// A stored JSON column as canonical text; `null` where it does not parse.
fn canonical_raw(stored: &str) -> Box<RawValue> {
    let text = match stored {
        // The common cases, already canonical.
        "{}" | "[]" => stored.to_string(),
        _ => serde_json::from_str::<Value>(stored)
            .map_or_else(|_| "null".to_string(), |v| canonical(&v)),
    };
    RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("`null` is JSON"))
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

    #[test]
    fn a_blocked_custom_action_is_denied_with_the_reason() {
        let d = custom_decision("database_write", &Settings::default(), Some("incident 7"));
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.reason.contains("incident 7"));
        let d = custom_decision("read_report", &Settings::default(), None);
        assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    }
}
