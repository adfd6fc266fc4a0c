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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Effect, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
};
use cedar_policy_core::ast::{self, PartialValue};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use rustc_hash::FxHashSet;
use serde::Serialize;
use serde_json::Value;
use smol_str::SmolStr;

use crate::catalog::catalog;
use crate::resource::Resource;

mod diagnostics;
mod eval;
mod needs;
mod schema;

use eval::{Compiled, Satisfied};
use needs::Needs;

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
    /// Kept for `tests::agrees_with_cedars_authorizer`.
    #[cfg_attr(not(test), allow(dead_code))]
    policies: PolicySet,
    compiled: Vec<Compiled>,
    needs: Needs,
}

/// A validated policy set, indexed by action.
pub struct PolicyEngine {
    source: String,
    infos: Vec<PolicyInfo>,
    index_of: HashMap<PolicyId, usize>,
    by_action: HashMap<String, ActionEntry>,
    /// (service, operation) of every action in `by_action`.
    by_operation: FxHashSet<(&'static str, &'static str)>,
    /// Policies that name no action: they may match any call.
    unconstrained: PolicySet,
    unconstrained_compiled: Vec<Compiled>,
    unconstrained_needs: Needs,
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
            by_operation: FxHashSet::default(),
            unconstrained: PolicySet::new(),
            unconstrained_compiled: Vec::new(),
            unconstrained_needs: Needs::default(),
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
        let needs: HashMap<PolicyId, Needs> = set
            .policies()
            .map(|p| (p.id().clone(), Needs::of(p)))
            .collect();
        let param_names: BTreeSet<String> = needs
            .values()
            .flat_map(|n| n.params.iter().cloned())
            .collect();
        schema::validate(source, &set, &actions, &param_names)?;

        let mut engine = Self {
            source: source.to_string(),
            index_of: infos
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (id.clone(), i))
                .collect(),
            infos: infos.into_iter().map(|(_, info)| info).collect(),
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
            engine.unconstrained_needs.merge(&needs[policy.id()]);
            let info = engine.index_of[policy.id()];
            engine
                .unconstrained_compiled
                .push(Compiled::new(info, policy));
        }
        engine.unconstrained_compiled.sort_by_key(eval::phase);
        for action in indexed.keys() {
            for info in catalog().all_by_cedar_action(action) {
                engine.by_operation.insert((info.service, info.name));
            }
        }
        for (action, ids) in indexed {
            let mut policies = engine.unconstrained.clone();
            let mut action_needs = engine.unconstrained_needs.clone();
            let mut compiled: Vec<Compiled> = unconstrained
                .iter()
                .map(|p| Compiled::new(engine.index_of[p.id()], p))
                .collect();
            for id in ids {
                let policy = set.policy(&id).expect("indexed from this set").clone();
                action_needs.merge(&needs[&id]);
                compiled.push(Compiled::new(engine.index_of[&id], &policy));
                // A policy naming the same action twice (`in [a, a]`) is added once.
                let _ = policies.add(policy);
            }
            compiled.sort_by_key(|c| c.info);
            compiled.dedup_by_key(|c| c.info);
            compiled.sort_by_key(eval::phase);
            let uid = EntityUid::from_type_name_and_id(
                engine.action_type.clone(),
                EntityId::new(&action),
            );
            engine.by_action.insert(
                action,
                ActionEntry {
                    uid,
                    policies,
                    compiled,
                    needs: action_needs,
                },
            );
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
        let fallback;
        let (uid, policies, needs) = match self.by_action.get(input.action) {
            Some(entry) => (&entry.uid, &entry.compiled, &entry.needs),
            None if self.unconstrained.is_empty() => return PolicyOutcome::NoMatch,
            None => (
                {
                    fallback = EntityUid::from_type_name_and_id(
                        self.action_type.clone(),
                        EntityId::new(input.action),
                    );
                    &fallback
                },
                &self.unconstrained_compiled,
                &self.unconstrained_needs,
            ),
        };
        let Some((request, entities)) = self.request(input, uid, needs) else {
            return PolicyOutcome::NoMatch;
        };
        let infos = |indexes: Vec<usize>| indexes.into_iter().map(|i| &self.infos[i]).collect();
        match eval::evaluate(policies, request, &entities) {
            Satisfied::None => PolicyOutcome::NoMatch,
            Satisfied::Forbid(forbids) => PolicyOutcome::Deny(infos(forbids)),
            Satisfied::Permit(permits) => {
                let matched: Vec<&PolicyInfo> = infos(permits);
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

    /// Builds the request with only what `needs` says the policies read, from Cedar's
    /// AST types directly: the public builders evaluate every value as an expression and
    /// compute the entity hierarchy, which costs more than evaluating the policies.
    fn request(
        &self,
        input: &PolicyInput<'_>,
        action: &EntityUid,
        needs: &Needs,
    ) -> Option<(ast::Request, CoreEntities)> {
        let uid = |ty: &EntityTypeName, id: &str| {
            ast::EntityUID::from_components(ty.as_ref().clone(), ast::Eid::new(id), None)
        };
        let (name, kind) = input
            .resource
            .map_or(("", ""), |r| (r.name.as_str(), r.kind.as_str()));
        let resource_uid = uid(&self.resource_type, name);
        let mut context: BTreeMap<SmolStr, ast::Value> = BTreeMap::new();
        for (key, value) in [
            ("service", Some(input.service)),
            ("operation", Some(input.operation)),
            ("risk_level", Some(input.risk_level)),
            ("region", Some(input.region)),
            ("risk_score", None),
            ("params", None),
        ] {
            if !needs.context_has(key) {
                continue;
            }
            let value = match (key, value) {
                (_, Some(text)) => ast::Value::from(text),
                ("risk_score", _) => ast::Value::from(i64::from(input.risk_score)),
                _ => ast::Value::record(
                    needs.params.iter().filter_map(|k| {
                        let text = match input.params.get(k)? {
                            Value::String(s) => s.clone(),
                            Value::Null => return None,
                            other => other.to_string(),
                        };
                        Some((k.as_str(), ast::Value::from(text)))
                    }),
                    None,
                ),
            };
            context.insert(key.into(), value);
        }
        let entities = if needs.resource {
            let attrs = [("name", name), ("type", kind), ("service", input.service)]
                .map(|(k, v)| (SmolStr::from(k), PartialValue::from(ast::Value::from(v))));
            let resource = ast::Entity::new_with_attr_partial_value(
                resource_uid.clone(),
                attrs,
                HashSet::new(),
                HashSet::new(),
                [],
            );
            CoreEntities::from_entities(
                [resource],
                None::<&NoEntitiesSchema>,
                TCComputation::AssumeAlreadyComputed,
                Extensions::all_available(),
            )
            .ok()?
        } else {
            CoreEntities::new()
        };
        let request = ast::Request::new(
            (uid(&self.agent_type, input.agent_id), None),
            (action.as_ref().clone(), None),
            (resource_uid, None),
            ast::Context::Value(Arc::new(context)),
            None::<&ast::RequestSchemaAllPass>,
            Extensions::all_available(),
        )
        .ok()?;
        Some((request, entities))
    }

    /// Whether any policy names this Cedar action (or names no action at all).
    pub fn may_match(&self, action: &str) -> bool {
        !self.unconstrained.is_empty() || self.by_action.contains_key(action)
    }

    /// `may_match` by operation name, without building the action id: policies can name
    /// only catalog operations, so this is a set lookup.
    pub fn may_match_operation(&self, name: &crate::OperationName) -> bool {
        let operations: &FxHashSet<(&str, &str)> = &self.by_operation;
        !self.unconstrained.is_empty()
            || operations.contains(&(name.service.as_str(), name.operation.as_str()))
    }

    /// The catalog's knowledge is what makes an action id valid.
    pub fn is_known_action(action: &str) -> bool {
        catalog().by_cedar_action(action).is_some()
    }
}

#[cfg(test)]
mod tests;
