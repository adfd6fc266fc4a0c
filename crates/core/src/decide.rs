//! The one decision pipeline every front end calls: bypass, kill switch, classify,
//! policies, defaults, dry run (DESIGN.md §3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::fold;
use crate::name::OperationName;
use crate::policy::{PolicyEngine, PolicyInfo, PolicyInput, PolicyOutcome};
use crate::resource::main_resource;
use crate::risk::{RiskLevel, classify};

/// What a governed call is.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub agent_id: &'a str,
    pub name: &'a OperationName,
    pub params: &'a Value,
    pub region: &'a str,
}

/// The knobs of DESIGN.md §9's `enable_governance`, as the pipeline needs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub auto_approve_low_risk: bool,
    pub auto_approve_medium_risk: bool,
    /// Services never governed (`s3`), any case.
    pub bypass_services: Vec<String>,
    /// Operations never governed (`s3.list_buckets`, `s3:ListBuckets`), any case.
    pub bypass_operations: Vec<String>,
    /// Decide and record, but let every call run.
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auto_approve_low_risk: true,
            auto_approve_medium_risk: false,
            bypass_services: Vec::new(),
            bypass_operations: Vec::new(),
            dry_run: false,
        }
    }
}

impl Settings {
    /// Whether the call is outside governance altogether.
    pub fn bypasses(&self, name: &OperationName) -> bool {
        let service_matches = |s: &str| s.trim().eq_ignore_ascii_case(&name.service);
        if self.bypass_services.iter().any(|s| service_matches(s)) {
            return true;
        }
        self.bypass_operations.iter().any(|entry| {
            entry
                .split_once(['.', ':'])
                .is_some_and(|(service, operation)| {
                    service_matches(service) && fold(operation) == fold(&name.operation)
                })
        })
    }

    /// Whether the defaults let a call of this level run without a person.
    pub fn auto_approves(&self, level: RiskLevel) -> bool {
        match level {
            RiskLevel::Low => self.auto_approve_low_risk,
            RiskLevel::Medium => self.auto_approve_medium_risk,
            RiskLevel::High | RiskLevel::Critical => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    NeedsApproval,
    /// Not governed: no decision, no audit.
    Bypass,
}

/// The outcome of `decide()`, with everything a person needs to see why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub risk_score: u8,
    pub risk_level: RiskLevel,
    /// Why this score and this verdict, one line each.
    pub reasons: Vec<String>,
    /// The policies that decided, by `@id`.
    pub policy_ids: Vec<String>,
    /// One line for the agent and the approver.
    pub reason: String,
    pub dry_run: bool,
}

impl Decision {
    /// Whether the call runs now: allowed, bypassed, or any verdict in dry run.
    pub fn executes(&self) -> bool {
        matches!(self.verdict, Verdict::Allow | Verdict::Bypass) || self.dry_run
    }
}

fn policy_reason(policies: &[&PolicyInfo], fallback: impl Fn(&str) -> String) -> String {
    policies
        .iter()
        .find_map(|p| p.reason.clone())
        .unwrap_or_else(|| fallback(policies.first().map_or("", |p| p.id.as_str())))
}

/// Decides one call. Pure and deterministic: the same inputs give the same decision.
pub fn decide(
    call: &Call<'_>,
    settings: &Settings,
    policies: &PolicyEngine,
    blocked: Option<&str>,
) -> Decision {
    let name = call.name;
    if settings.bypasses(name) {
        return Decision {
            verdict: Verdict::Bypass,
            risk_score: 0,
            risk_level: RiskLevel::Low,
            reasons: vec![format!("{name} is in the bypass list")],
            policy_ids: Vec::new(),
            reason: "bypassed".into(),
            dry_run: settings.dry_run,
        };
    }
    let classification = classify(name, call.params);
    let mut decision = Decision {
        verdict: Verdict::Deny,
        risk_score: classification.score,
        risk_level: classification.level,
        reasons: classification.reasons,
        policy_ids: Vec::new(),
        reason: String::new(),
        dry_run: settings.dry_run,
    };
    if let Some(why) = blocked {
        decision.reason = if why.trim().is_empty() {
            format!("agent `{}` is blocked by an administrator", call.agent_id)
        } else {
            format!(
                "agent `{}` is blocked by an administrator: {why}",
                call.agent_id
            )
        };
        decision.reasons.push(decision.reason.clone());
        return decision;
    }

    let outcome = if policies.may_match_operation(name) {
        let action = name.cedar_action();
        let info = name.info();
        let resource = main_resource(info, call.params);
        policies.evaluate(&PolicyInput {
            agent_id: call.agent_id,
            action: &action,
            resource: resource.as_ref(),
            service: &name.service,
            operation: &name.operation,
            risk_score: decision.risk_score,
            risk_level: decision.risk_level.as_str(),
            region: call.region,
            params: call.params,
        })
    } else {
        PolicyOutcome::NoMatch
    };
    let (verdict, reason, matched) = match outcome {
        PolicyOutcome::Deny(p) => (
            Verdict::Deny,
            policy_reason(&p, |id| format!("denied by policy `{id}`")),
            p,
        ),
        PolicyOutcome::NeedsApproval(p) => (
            Verdict::NeedsApproval,
            policy_reason(&p, |id| format!("policy `{id}` requires approval")),
            p,
        ),
        PolicyOutcome::Allow(p) => (
            Verdict::Allow,
            policy_reason(&p, |id| format!("allowed by policy `{id}`")),
            p,
        ),
        PolicyOutcome::NoMatch => {
            let level = decision.risk_level;
            let score = decision.risk_score;
            let (verdict, reason) = if settings.auto_approves(level) {
                (
                    Verdict::Allow,
                    format!("{level} risk ({score}): auto-approved"),
                )
            } else {
                (
                    Verdict::NeedsApproval,
                    format!("{level} risk ({score}) requires approval"),
                )
            };
            (verdict, reason, Vec::new())
        }
    };
    decision.verdict = verdict;
    decision.policy_ids = matched.iter().map(|p| p.id.clone()).collect();
    decision.reasons.push(reason.clone());
    decision.reason = reason;
    decision
}
