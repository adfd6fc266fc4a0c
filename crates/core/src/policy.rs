//! Cedar policies: validation against Ascend's schema, an index by action, and the
//! three-way outcome (forbid → Deny, permit + `@approval("required")` → NeedsApproval,
//! permit → Allow).
//!
//! The schema: principal `Agent::"<agent id>"`; action `Action::"<iam-prefix>:<ApiName>"`
//! for every operation in the catalog; resource `Resource::"<name>"` with attributes
//! `name`, `type` (the parameter it came from, e.g. `Bucket`) and `service`; context
//! `{service, operation, risk_score, risk_level, region, params}`, where `params` holds
//! the call's top-level parameters as strings. Any parameter a policy names is declared
//! optional, so policies test it with `context.params has Bucket && …`.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Effect, Entities, Entity,
    EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Request, RestrictedExpression,
};
use serde::Serialize;
use serde_json::Value;

use crate::catalog::catalog;
use crate::resource::Resource;

mod diagnostics;
mod schema;

pub use diagnostics::{PolicyDiagnostic, PolicyError};

/// What one policy says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// The `@id` annotation, or `policyN` by position.
    pub id: String,
    pub effect: PolicyEffect,
    /// The `@reason` annotation, shown to the agent and the approver.
    pub reason: Option<String>,
    /// `@approval("required")`.
    pub approval_required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyEffect {
    Permit,
    Forbid,
}

/// What the policies say about one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyOutcome<'a> {
    /// No policy matched; the defaults decide.
    NoMatch,
    Allow(Vec<&'a PolicyInfo>),
    NeedsApproval(Vec<&'a PolicyInfo>),
    Deny(Vec<&'a PolicyInfo>),
}

/// The call as the policies see it.
#[derive(Clone, Copy, Debug)]
pub struct PolicyInput<'a> {
    pub agent_id: &'a str,
    /// Cedar action id: `s3:DeleteBucket`.
    pub action: &'a str,
    pub resource: Option<&'a Resource>,
    pub service: &'a str,
    pub operation: &'a str,
    pub risk_score: u8,
    pub risk_level: &'a str,
    pub region: &'a str,
    pub params: &'a Value,
}

struct ActionEntry {
    uid: EntityUid,
    policies: PolicySet,
}

/// A validated policy set, indexed by action.
pub struct PolicyEngine {
    source: String,
    infos: Vec<PolicyInfo>,
    index_of: HashMap<PolicyId, usize>,
    by_action: HashMap<String, ActionEntry>,
    /// Policies that name no single action: they may match any call.
    unconstrained: PolicySet,
    /// Parameters the policies read from `context.params`.
    param_names: Vec<String>,
    authorizer: Authorizer,
    agent_type: EntityTypeName,
    action_type: EntityTypeName,
    resource_type: EntityTypeName,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.infos)
            .finish_non_exhaustive()
    }
}

fn type_name(name: &str) -> EntityTypeName {
    EntityTypeName::from_str(name).expect("built-in entity type names are valid")
}

impl Default for PolicyEngine {
    fn default() -> Self {
        Self::empty()
    }
}

impl PolicyEngine {
    /// No policies: every call falls to the defaults.
    pub fn empty() -> Self {
        Self {
            source: String::new(),
            infos: Vec::new(),
            index_of: HashMap::new(),
            by_action: HashMap::new(),
            unconstrained: PolicySet::new(),
            param_names: Vec::new(),
            authorizer: Authorizer::new(),
            agent_type: type_name("Agent"),
            action_type: type_name("Action"),
            resource_type: type_name("Resource"),
        }
    }

    /// Parses and validates a policy set. Errors carry line and column.
    pub fn compile(source: &str) -> Result<Self, PolicyError> {
        let parsed = PolicySet::from_str(source)
            .map_err(|errors| PolicyError::from_parse(source, &errors))?;
        if parsed.templates().next().is_some() {
            return Err(PolicyError::single(
                "policy templates (`?principal`, `?resource`) are not supported",
            ));
        }
        let (set, infos) = Self::rename_by_id(source, &parsed)?;
        let actions = schema::referenced_actions(source, &set)?;
        let param_names = schema::referenced_params(&set);
        schema::validate(source, &set, &actions, &param_names)?;

        let mut engine = Self {
            source: source.to_string(),
            index_of: infos
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (id.clone(), i))
                .collect(),
            infos: infos.into_iter().map(|(_, info)| info).collect(),
            param_names: param_names.into_iter().collect(),
            ..Self::empty()
        };
        let mut indexed: HashMap<String, Vec<PolicyId>> = HashMap::new();
        let mut unconstrained = Vec::new();
        for policy in set.policies() {
            match policy.action_constraint() {
                ActionConstraint::Any => unconstrained.push(policy.clone()),
                ActionConstraint::Eq(uid) => indexed
                    .entry(uid.id().unescaped().to_string())
                    .or_default()
                    .push(policy.id().clone()),
                ActionConstraint::In(uids) => {
                    for uid in uids {
                        indexed
                            .entry(uid.id().unescaped().to_string())
                            .or_default()
                            .push(policy.id().clone());
                    }
                }
            }
        }
        for policy in &unconstrained {
            engine
                .unconstrained
                .add(policy.clone())
                .expect("ids are unique within the set");
        }
        for (action, ids) in indexed {
            let mut policies = engine.unconstrained.clone();
            for id in ids {
                let policy = set.policy(&id).expect("indexed from this set").clone();
                // A policy naming the same action twice (`in [a, a]`) is added once.
                let _ = policies.add(policy);
            }
            let uid = EntityUid::from_type_name_and_id(
                engine.action_type.clone(),
                EntityId::new(&action),
            );
            engine
                .by_action
                .insert(action, ActionEntry { uid, policies });
        }
        Ok(engine)
    }

    /// Gives each policy its `@id` as Cedar id, and reads its annotations.
    fn rename_by_id(
        source: &str,
        parsed: &PolicySet,
    ) -> Result<(PolicySet, Vec<(PolicyId, PolicyInfo)>), PolicyError> {
        let mut set = PolicySet::new();
        let mut infos = Vec::new();
        let mut seen = BTreeSet::new();
        // Cedar numbers policies `policy0`, `policy1` … in source order; keep that order.
        let mut policies: Vec<_> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for policy in policies {
            let id = policy
                .annotation("id")
                .map(str::to_string)
                .unwrap_or_else(|| policy.id().to_string());
            if !seen.insert(id.clone()) {
                return Err(PolicyError::at_text(
                    source,
                    &format!("@id(\"{id}\")"),
                    format!("two policies have the id `{id}`; each @id must be unique"),
                ));
            }
            let approval = policy.annotation("approval");
            if let Some(value) = approval
                && value != "required"
            {
                return Err(PolicyError::at_text(
                    source,
                    &format!("@approval(\"{value}\")"),
                    format!("@approval takes only \"required\", not \"{value}\""),
                ));
            }
            let effect = match policy.effect() {
                Effect::Permit => PolicyEffect::Permit,
                Effect::Forbid => PolicyEffect::Forbid,
            };
            if approval.is_some() && effect == PolicyEffect::Forbid {
                return Err(PolicyError::at_text(
                    source,
                    "@approval",
                    format!(
                        "policy `{id}`: @approval(\"required\") belongs on a permit, not a forbid"
                    ),
                ));
            }
            let cedar_id = PolicyId::new(&id);
            set.add(policy.new_id(cedar_id.clone()))
                .map_err(|e| PolicyError::single(e.to_string()))?;
            infos.push((
                cedar_id,
                PolicyInfo {
                    id,
                    effect,
                    reason: policy.annotation("reason").map(str::to_string),
                    approval_required: approval.is_some(),
                },
            ));
        }
        Ok((set, infos))
    }

    /// The Cedar text this engine was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every policy, in source order.
    pub fn policies(&self) -> &[PolicyInfo] {
        &self.infos
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Evaluates one call. Calls that no policy can name return at once.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> PolicyOutcome<'_> {
        let (uid, policies) = match self.by_action.get(input.action) {
            Some(entry) => (entry.uid.clone(), &entry.policies),
            None if self.unconstrained.is_empty() => return PolicyOutcome::NoMatch,
            None => (
                EntityUid::from_type_name_and_id(
                    self.action_type.clone(),
                    EntityId::new(input.action),
                ),
                &self.unconstrained,
            ),
        };
        let response = match self.request(input, uid) {
            Some((request, entities)) => {
                self.authorizer.is_authorized(&request, policies, &entities)
            }
            None => return PolicyOutcome::NoMatch,
        };
        let matched: Vec<&PolicyInfo> = response
            .diagnostics()
            .reason()
            .filter_map(|id| self.index_of.get(id).map(|&i| &self.infos[i]))
            .collect();
        match (response.decision(), matched.is_empty()) {
            (_, true) => PolicyOutcome::NoMatch,
            (CedarDecision::Deny, false) => PolicyOutcome::Deny(matched),
            (CedarDecision::Allow, false) => {
                let approvals: Vec<_> = matched
                    .iter()
                    .copied()
                    .filter(|p| p.approval_required)
                    .collect();
                if approvals.is_empty() {
                    PolicyOutcome::Allow(matched)
                } else {
                    PolicyOutcome::NeedsApproval(approvals)
                }
            }
        }
    }

    fn request(&self, input: &PolicyInput<'_>, action: EntityUid) -> Option<(Request, Entities)> {
        let principal = EntityUid::from_type_name_and_id(
            self.agent_type.clone(),
            EntityId::new(input.agent_id),
        );
        let (name, kind) = input
            .resource
            .map_or(("", ""), |r| (r.name.as_str(), r.kind.as_str()));
        let resource_uid =
            EntityUid::from_type_name_and_id(self.resource_type.clone(), EntityId::new(name));
        let resource = Entity::new_with_tags(
            resource_uid.clone(),
            [
                (
                    "name".to_string(),
                    RestrictedExpression::new_string(name.into()),
                ),
                (
                    "type".to_string(),
                    RestrictedExpression::new_string(kind.into()),
                ),
                (
                    "service".to_string(),
                    RestrictedExpression::new_string(input.service.into()),
                ),
            ],
            [],
            [],
        )
        .ok()?;
        let params = self.param_names.iter().filter_map(|key| {
            let text = match input.params.get(key)? {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((key.clone(), RestrictedExpression::new_string(text)))
        });
        let context = Context::from_pairs([
            (
                "service".to_string(),
                RestrictedExpression::new_string(input.service.into()),
            ),
            (
                "operation".to_string(),
                RestrictedExpression::new_string(input.operation.into()),
            ),
            (
                "risk_score".to_string(),
                RestrictedExpression::new_long(input.risk_score.into()),
            ),
            (
                "risk_level".to_string(),
                RestrictedExpression::new_string(input.risk_level.into()),
            ),
            (
                "region".to_string(),
                RestrictedExpression::new_string(input.region.into()),
            ),
            (
                "params".to_string(),
                RestrictedExpression::new_record(params).ok()?,
            ),
        ])
        .ok()?;
        let request = Request::new(principal, action, resource_uid, context, None).ok()?;
        let entities = Entities::from_entities([resource], None).ok()?;
        Some((request, entities))
    }

    /// Whether any policy names this Cedar action (or names no action at all).
    pub fn may_match(&self, action: &str) -> bool {
        !self.unconstrained.is_empty() || self.by_action.contains_key(action)
    }

    /// The catalog's knowledge is what makes an action id valid.
    pub fn is_known_action(action: &str) -> bool {
        catalog().by_cedar_action(action).is_some()
    }
}

#[cfg(test)]
mod tests;
