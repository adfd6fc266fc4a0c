//! The Cedar schema a policy set is validated against, built for the actions and
//! parameters that set names, so validation stays fast and errors stay specific.

use std::collections::BTreeSet;

use cedar_policy::{ActionConstraint, PolicySet, Schema, ValidationMode, Validator};

use super::PolicyError;
use crate::catalog::{catalog, fold};

/// Every action id the set names; each must be a catalog operation.
pub(super) fn referenced_actions(
    source: &str,
    set: &PolicySet,
) -> Result<BTreeSet<String>, PolicyError> {
    let mut actions = BTreeSet::new();
    let mut problems = Vec::new();
    for policy in set.policies() {
        let uids = match policy.action_constraint() {
            ActionConstraint::Any => Vec::new(),
            ActionConstraint::Eq(uid) => vec![uid],
            ActionConstraint::In(uids) => uids,
        };
        for uid in uids {
            let id = uid.id().unescaped().to_string();
            if catalog().by_cedar_action(&id).is_some() {
                actions.insert(id);
                continue;
            }
            let hint = suggestion(&id)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            problems.extend(
                PolicyError::at_text(
                    source,
                    &format!("\"{id}\""),
                    format!(
                        "unknown action `{id}`: actions are `<iam-prefix>:<ApiName>` of an AWS \
                         operation, like `s3:DeleteBucket`{hint}"
                    ),
                )
                .diagnostics,
            );
        }
    }
    if problems.is_empty() {
        Ok(actions)
    } else {
        Err(PolicyError {
            diagnostics: problems,
        })
    }
}

/// The catalog's spelling of an action written in another case or form.
fn suggestion(id: &str) -> Option<String> {
    let (service, operation) = id.split_once([':', '.'])?;
    let found = catalog().find(service, operation)?;
    (fold(found.api_name) == fold(operation)).then(|| found.cedar_action())
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// The schema text for these actions and parameters.
pub(super) fn schema_text(actions: &BTreeSet<String>, params: &BTreeSet<String>) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|p| format!("{}?: String", quoted(p)))
        .collect();
    let mut text = format!(
        "entity Agent;\n\
         entity Resource = {{ name: String, type: String, service: String }};\n\
         type Params = {{ {} }};\n\
         type CallContext = {{ service: String, operation: String, risk_score: Long, \
         risk_level: String, region: String, params: Params }};\n",
        params.join(", ")
    );
    // A set of only unconstrained policies still needs one action to be checked against.
    let fallback = BTreeSet::from(["ascend:AnyCall".to_string()]);
    let actions = if actions.is_empty() {
        &fallback
    } else {
        actions
    };
    for action in actions {
        text.push_str(&format!(
            "action {} appliesTo {{ principal: [Agent], resource: [Resource], context: CallContext }};\n",
            quoted(action)
        ));
    }
    text
}

/// Strict Cedar validation against the schema for this set.
pub(super) fn validate(
    source: &str,
    set: &PolicySet,
    actions: &BTreeSet<String>,
    params: &BTreeSet<String>,
) -> Result<(), PolicyError> {
    let (schema, _warnings) = Schema::from_cedarschema_str(&schema_text(actions, params))
        .map_err(|e| PolicyError::single(format!("internal schema error: {e}")))?;
    let result = Validator::new(schema).validate(set, ValidationMode::Strict);
    let diagnostics: Vec<_> = result
        .validation_errors()
        .map(|e| PolicyError::diagnostic(source, e))
        .collect();
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(PolicyError { diagnostics })
    }
}
