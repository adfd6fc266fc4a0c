//! Parameter-aware escalations. Each can only raise a score, and each says why.

use serde_json::Value;

use super::Verb;
use crate::catalog::OperationInfo;
use crate::name::OperationName;
use crate::resource::main_param;

const PUBLIC_ACLS: &[&str] = &["public-read", "public-read-write", "authenticated-read"];
const PUBLIC_GROUPS: &[&str] = &["AllUsers", "AuthenticatedUsers"];
const OPEN_CIDRS: &[&str] = &["0.0.0.0/0", "::/0"];
const PRODUCTION_WORDS: &[&str] = &["prod", "production", "prd", "live"];
const MASS_DELETE: usize = 10;

struct Scorer<'a> {
    score: u8,
    reasons: &'a mut Vec<String>,
}

impl Scorer<'_> {
    /// Raises the score to at least `floor`.
    fn floor(&mut self, floor: u8, why: String) {
        if self.score < floor {
            self.score = floor;
            self.reasons.push(format!("{why} → at least {floor}"));
        }
    }

    fn add(&mut self, points: u8, why: std::fmt::Arguments<'_>) {
        self.score = self.score.saturating_add(points).min(100);
        self.reasons
            .push(format!("{why} (+{points} → {})", self.score));
    }
}

/// Walks every string in a JSON value.
fn any_string(value: &Value, test: &mut dyn FnMut(&str) -> bool) -> bool {
    match value {
        Value::String(s) => test(s),
        Value::Array(items) => items.iter().any(|v| any_string(v, test)),
        Value::Object(map) => map.values().any(|v| any_string(v, test)),
        _ => false,
    }
}

/// Whether an IAM-style policy document (JSON text or object) allows anyone.
fn policy_is_public(document: &Value) -> bool {
    let parsed;
    let document = match document {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(_) => return false,
        },
        other => other,
    };
    statements(document).any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && s.get("Principal").is_some_and(|p| match p {
                Value::String(p) => p == "*",
                Value::Object(map) => map.values().any(|v| any_string(v, &mut |s| s == "*")),
                _ => false,
            })
    })
}

fn statements(document: &Value) -> impl Iterator<Item = &Value> {
    let statement = document.get("Statement");
    let list: Vec<&Value> = match statement {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    };
    list.into_iter()
}

/// Whether a policy document grants every action on every resource.
fn policy_is_admin(document: &Value) -> bool {
    let parsed: Value = match document {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    let is_star =
        |v: Option<&Value>| v.is_some_and(|v| any_string(v, &mut |s| s == "*" || s == "*:*"));
    statements(&parsed).any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && is_star(s.get("Action"))
            && is_star(s.get("Resource"))
    })
}

fn count_items(params: &Value) -> usize {
    let list_len = |v: Option<&Value>| v.and_then(Value::as_array).map_or(0, Vec::len);
    let direct = list_len(params.get("InstanceIds"))
        .max(list_len(
            params.get("Delete").and_then(|d| d.get("Objects")),
        ))
        .max(list_len(params.get("Entries")));
    let batch_deletes = params
        .get("RequestItems")
        .and_then(Value::as_object)
        .map_or(0, |tables| {
            tables
                .values()
                .filter_map(Value::as_array)
                .flatten()
                .filter(|r| r.get("DeleteRequest").is_some())
                .count()
        });
    direct.max(batch_deletes)
}

fn looks_like_production(value: &str) -> bool {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            PRODUCTION_WORDS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(word))
        })
}

fn first_production_name(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()).filter(|s| looks_like_production(s)),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .find(|s| looks_like_production(s)),
        _ => None,
    }
}

pub(super) fn apply(
    name: &OperationName,
    info: Option<&OperationInfo>,
    verb: Verb,
    is_write: bool,
    params: &Value,
    score: u8,
    reasons: &mut Vec<String>,
) -> u8 {
    let mut s = Scorer { score, reasons };
    let op = name.operation.as_str();

    if let Some(acl) = params.get("ACL").and_then(Value::as_str)
        && PUBLIC_ACLS.contains(&acl)
    {
        s.floor(
            90,
            format!("ACL `{acl}` makes the resource readable outside the account"),
        );
    }
    let grants_public = params.as_object().is_some_and(|map| {
        map.iter()
            .filter(|(k, _)| k.starts_with("Grant") || *k == "AccessControlPolicy")
            .any(|(_, v)| any_string(v, &mut |s| PUBLIC_GROUPS.iter().any(|g| s.contains(g))))
    });
    if grants_public {
        s.floor(
            90,
            "a grant to AllUsers/AuthenticatedUsers makes the resource public".into(),
        );
    }
    for key in ["Policy", "PolicyDocument"] {
        if let Some(doc) = params.get(key)
            && policy_is_public(doc)
        {
            s.floor(90, format!("`{key}` allows Principal \"*\" (anyone)"));
        }
    }
    if params
        .get("Attributes")
        .and_then(|a| a.get("Policy"))
        .is_some_and(policy_is_public)
    {
        s.floor(
            90,
            "the new `Policy` attribute allows Principal \"*\" (anyone)".into(),
        );
    }
    if name.service == "lambda"
        && op == "add_permission"
        && params.get("Principal").and_then(Value::as_str) == Some("*")
    {
        s.floor(90, "the permission lets anyone invoke the function".into());
    }
    if op.contains("ingress") && any_string(params, &mut |v| OPEN_CIDRS.contains(&v)) {
        s.floor(
            90,
            "opens inbound access to the whole internet (0.0.0.0/0 or ::/0)".into(),
        );
    }
    if op.starts_with("attach_")
        && params
            .get("PolicyArn")
            .and_then(Value::as_str)
            .is_some_and(|arn| arn.ends_with("/AdministratorAccess"))
    {
        s.floor(95, "attaches AdministratorAccess".into());
    }
    if ["PolicyDocument", "Policy"]
        .iter()
        .filter_map(|k| params.get(*k))
        .any(policy_is_admin)
        && name.service == "iam"
    {
        s.floor(
            95,
            "the policy allows every action on every resource".into(),
        );
    }
    let security_off = match (name.service.as_str(), op) {
        ("guardduty", "update_detector") => params.get("Enable") == Some(&Value::Bool(false)),
        ("securityhub", "disable_security_hub") => true,
        ("cloudtrail", "update_trail") => {
            params.get("IsMultiRegionTrail") == Some(&Value::Bool(false))
        }
        ("config", "delete_delivery_channel") => true,
        _ => false,
    };
    if security_off {
        s.floor(90, format!("{name} turns off security monitoring"));
    }
    if verb == Verb::Destructive {
        let count = count_items(params);
        if count >= MASS_DELETE {
            s.add(
                10,
                format_args!("mass change: {count} resources in one call"),
            );
        }
    }
    if is_write
        && let Some((kind, value)) = main_param(info, params)
        && let Some(prod) = first_production_name(value)
    {
        s.add(10, format_args!("{kind} `{prod}` looks like production"));
    }
    s.score
}
