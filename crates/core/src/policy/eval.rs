//! Evaluation of prebuilt policy conditions.
//!
//! Cedar's `Authorizer` rebuilds every policy's condition expression and runs the partial
//! evaluator on each request; for the few policies that can match one action, that
//! costs more than the evaluation itself. Here each condition is built once, at compile
//! time, and evaluated with Cedar's own concrete `Evaluator` under the authorizer's rule:
//! a satisfied forbid denies; otherwise a satisfied permit allows; an erroring policy is
//! not satisfied. `tests::agrees_with_cedars_authorizer` checks the two stay the same.

use cedar_policy::{Effect, Policy};
use cedar_policy_core::ast::{self, Literal, SlotEnv, ValueKind};
use cedar_policy_core::entities::Entities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

/// One policy, ready to evaluate.
pub(super) struct Compiled {
    /// Index into the engine's `PolicyInfo`s.
    pub info: usize,
    pub effect: Effect,
    condition: ast::Expr,
    slots: SlotEnv,
}

impl Compiled {
    pub fn new(info: usize, policy: &Policy) -> Self {
        let ast: &ast::Policy = policy.as_ref();
        Self {
            info,
            effect: policy.effect(),
            condition: ast.condition(),
            slots: ast.env().clone(),
        }
    }
}

/// Which policies were satisfied, by `info` index: forbids first if any.
pub(super) enum Satisfied {
    None,
    Forbid(Vec<usize>),
    Permit(Vec<usize>),
}

pub(super) fn evaluate(
    policies: &[Compiled],
    request: ast::Request,
    entities: &Entities,
) -> Satisfied {
    let evaluator = Evaluator::new(request, entities, Extensions::all_available());
    let mut forbids = Vec::new();
    let mut permits = Vec::new();
    for policy in policies {
        let satisfied = matches!(
            evaluator.interpret(&policy.condition, &policy.slots),
            Ok(ast::Value {
                value: ValueKind::Lit(Literal::Bool(true)),
                ..
            })
        );
        if satisfied {
            match policy.effect {
                Effect::Forbid => forbids.push(policy.info),
                Effect::Permit => permits.push(policy.info),
            }
        }
    }
    if !forbids.is_empty() {
        Satisfied::Forbid(forbids)
    } else if !permits.is_empty() {
        Satisfied::Permit(permits)
    } else {
        Satisfied::None
    }
}
