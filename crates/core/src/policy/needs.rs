//! What a set of policies reads from a request, so evaluation builds only that: the
//! resource entity's attributes, the context keys, and the call parameters.

use std::collections::BTreeSet;

use cedar_policy::Policy;
use serde_json::{Value, json};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// Some condition reads `resource`'s attributes.
    pub resource: bool,
    /// Context keys read by name.
    pub context: BTreeSet<String>,
    /// Some condition uses `context` as a whole.
    pub all_context: bool,
    /// `context.params.<name>` read by name.
    pub params: BTreeSet<String>,
}

impl Needs {
    pub fn of(policy: &Policy) -> Self {
        let mut needs = Self::default();
        if let Ok(json) = policy.to_json() {
            needs.walk(&json);
        }
        needs
    }

    pub fn merge(&mut self, other: &Needs) {
        self.resource |= other.resource;
        self.all_context |= other.all_context;
        self.context.extend(other.context.iter().cloned());
        self.params.extend(other.params.iter().cloned());
    }

    /// Whether the context must carry `key`.
    pub fn context_has(&self, key: &str) -> bool {
        self.all_context || self.context.contains(key)
    }

    fn walk(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    if (key == "." || key == "has") && self.attribute_access(inner) {
                        continue;
                    }
                    if key == "Var" {
                        match inner.as_str() {
                            Some("resource") => self.resource = true,
                            Some("context") => self.all_context = true,
                            _ => {}
                        }
                    }
                    self.walk(inner);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.walk(v)),
            _ => {}
        }
    }

    /// Records `context.<attr>` and `context.params.<attr>`; false for other accesses.
    fn attribute_access(&mut self, access: &Value) -> bool {
        let (Some(left), Some(attr)) = (
            access.get("left"),
            access.get("attr").and_then(Value::as_str),
        ) else {
            return false;
        };
        if *left == json!({"Var": "context"}) {
            self.context.insert(attr.to_string());
            return true;
        }
        if is_context_params(left) {
            self.context.insert("params".to_string());
            self.params.insert(attr.to_string());
            return true;
        }
        false
    }
}

fn is_context_params(value: &Value) -> bool {
    value.get(".").is_some_and(|access| {
        access.get("attr").and_then(Value::as_str) == Some("params")
            && access.get("left") == Some(&json!({"Var": "context"}))
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn needs(text: &str) -> Needs {
        Needs::of(&Policy::from_str(text).unwrap())
    }

    #[test]
    fn reads_are_found() {
        let n = needs(
            r#"permit(principal, action, resource) when { resource.name like "p*" && context.risk_level == "high" && context.params has Bucket && context.params.Bucket == "b" };"#,
        );
        assert!(n.resource && !n.all_context);
        assert_eq!(
            n.context,
            BTreeSet::from(["risk_level".into(), "params".into()])
        );
        assert_eq!(n.params, BTreeSet::from(["Bucket".into()]));
        let n = needs(r#"forbid(principal == Agent::"x", action, resource);"#);
        assert_eq!(n, Needs::default());
        assert!(
            needs(r#"permit(principal, action, resource) when { context == {} };"#).all_context
        );
    }
}
