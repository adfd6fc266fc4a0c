//! The call's main resource (bucket, table, function, instance, ARN …), read from the
//! parameters the catalog names for the operation, or by naming convention otherwise.

use serde_json::Value;

use crate::catalog::OperationInfo;

/// The resource a call acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The parameter it came from (`Bucket`, `InstanceIds`).
    pub kind: String,
    /// Its value; the first one when the parameter is a list.
    pub name: String,
    /// Every value, when the parameter is a list.
    pub all: Vec<String>,
}

fn looks_like_resource_param(key: &str) -> bool {
    const ENDINGS: &[&str] = &["Name", "Id", "Ids", "Arn", "Identifier", "Url", "Bucket"];
    ENDINGS.iter().any(|end| key.ends_with(end))
        && !matches!(key, "NextToken" | "ClientRequestToken" | "KeyName")
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

fn from_param(key: &str, value: &Value) -> Option<Resource> {
    let all = strings(value);
    let name = all.first()?.clone();
    Some(Resource {
        kind: key.to_string(),
        name,
        all,
    })
}

/// Finds the call's main resource: the first resource parameter of the catalog entry that
/// the call sets, else the first top-level parameter named like a resource.
pub fn main_resource(info: Option<&OperationInfo>, params: &Value) -> Option<Resource> {
    main_param(info, params).and_then(|(key, value)| from_param(key, value))
}

fn names_something(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Number(_) => true,
        Value::Array(items) => items.first().is_some_and(Value::is_string),
        _ => false,
    }
}

/// The parameter `main_resource` reads, borrowed: name and value.
pub(crate) fn main_param<'a>(
    info: Option<&OperationInfo>,
    params: &'a Value,
) -> Option<(&'a str, &'a Value)> {
    let map = params.as_object()?;
    if let Some(info) = info {
        for key in &info.resource_params {
            if let Some((key, value)) = map.get_key_value(*key)
                && names_something(value)
            {
                return Some((key.as_str(), value));
            }
        }
    }
    map.iter()
        .find(|(key, value)| looks_like_resource_param(key) && names_something(value))
        .map(|(key, value)| (key.as_str(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalog_params_come_first_then_conventions() {
        let bucket = main_resource(None, &json!({"Bucket": "b", "Key": "k"})).unwrap();
        assert_eq!(
            (bucket.kind.as_str(), bucket.name.as_str()),
            ("Bucket", "b")
        );
        let ids = main_resource(None, &json!({"InstanceIds": ["i-1", "i-2"]})).unwrap();
        assert_eq!(ids.name, "i-1");
        assert_eq!(ids.all, ["i-1", "i-2"]);
        assert!(main_resource(None, &json!({"MaxItems": 3})).is_none());
        assert!(main_resource(None, &Value::Null).is_none());
    }
}
