//! Evaluation of prebuilt policy conditions.
//!
//! Cedar's `Authorizer` rebuilds every policy's condition expression and runs the partial
//! evaluator on each request; for the few policies that can match one action, that
//! costs more than the evaluation itself. Here each condition is built once, at compile
//! time, and evaluated with Cedar's own concrete `Evaluator` under the authorizer's rule:
//! a satisfied forbid denies; otherwise a satisfied permit allows; an erroring policy is
//! not satisfied. `tests::agrees_with_cedars_authorizer` checks the two stay the same.
//!
//! Policies are evaluated in the order that can decide soonest: forbids (any satisfied
//! one denies, so permits need not run), then permits that ask for approval, then plain
//! permits. The policies reported are every satisfied one of the deciding kind.

use cedar_policy::{Effect, Policy};
use cedar_policy_core::ast::{self, Literal, PrincipalOrResourceConstraint, SlotEnv, ValueKind};
use cedar_policy_core::entities::Entities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

/// One policy, ready to evaluate.
pub(super) struct Compiled {
    /// Index into the engine's `PolicyInfo`s.
    pub info: usize,
    pub effect: Effect,
    /// `@approval("required")`.
    pub approval: bool,
    condition: ast::Expr,
    slots: SlotEnv,
}

impl Compiled {
    pub fn new(info: usize, policy: &Policy) -> Self {
        let ast: &ast::Policy = policy.as_ref();
        Self {
            info,
            effect: policy.effect(),
            approval: policy.annotation("approval").is_some(),
            condition: condition(ast),
            slots: ast.env().clone(),
        }
    }
}

/// The policy's condition without the parts that are true for every request it can see:
/// the action scope (the engine only evaluates a policy for actions it names, and actions
/// have no hierarchy) and unconstrained principal or resource scopes. Cedar's own
/// `condition()` keeps them as `true && action == … && true && body`, and on a small
/// policy evaluating those costs as much as the body.
fn condition(policy: &ast::Policy) -> ast::Expr {
    let principal = policy.principal_constraint();
    let resource = policy.resource_constraint();
    let parts: Vec<ast::Expr> = [
        (!matches!(principal.as_inner(), PrincipalOrResourceConstraint::Any))
            .then(|| principal.as_expr()),
        (!matches!(resource.as_inner(), PrincipalOrResourceConstraint::Any))
            .then(|| resource.as_expr()),
        policy.non_scope_constraints().cloned(),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts
        .into_iter()
        .reduce(ast::Expr::and)
        .unwrap_or_else(|| ast::Expr::val(true))
}

/// The evaluation order: forbids, then approval permits, then plain permits.
pub(super) fn phase(policy: &Compiled) -> u8 {
    match (policy.effect, policy.approval) {
        (Effect::Forbid, _) => 0,
        (Effect::Permit, true) => 1,
        (Effect::Permit, false) => 2,
    }
}

/// Which policies were satisfied, by `info` index.
pub(super) enum Satisfied {
    None,
    Forbid(Vec<usize>),
    /// Satisfied permits; when any asks for approval, only those.
    Permit(Vec<usize>),
}

/// Evaluates `policies`, which must be sorted by `phase`.
pub(super) fn evaluate(
    policies: &[Compiled],
    request: ast::Request,
    entities: &Entities,
) -> Satisfied {
    let evaluator = Evaluator::new(request, entities, Extensions::all_available());
    let mut satisfied = Vec::new();
    let mut current_phase = None;
    for policy in policies {
        let phase = phase(policy);
        if current_phase != Some(phase) {
            // A finished phase with a satisfied policy decides; later phases cannot change it.
            if !satisfied.is_empty() {
                break;
            }
            current_phase = Some(phase);
        }
        if matches!(
            evaluator.interpret(&policy.condition, &policy.slots),
            Ok(ast::Value {
                value: ValueKind::Lit(Literal::Bool(true)),
                ..
            })
        ) {
            satisfied.push(policy.info);
        }
    }
    match current_phase {
        _ if satisfied.is_empty() => Satisfied::None,
        Some(0) => Satisfied::Forbid(satisfied),
        _ => Satisfied::Permit(satisfied),
    }
}
