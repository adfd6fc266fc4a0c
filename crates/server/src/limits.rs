//! How much a caller may put inside a body that already passed the 1 MiB limit. A
//! parameter map is classified, redacted, stored and hashed into the audit chain, so the
//! number of values in it is bounded; names are bounded like agent ids.

use serde_json::Value;

use crate::error::ApiError;

/// Values (object members, array items and scalars, nested ones included) a parameter
/// map may hold. Real calls stay far below: S3 `DeleteObjects` with its maximum of 1000
/// keys is about 3000; DynamoDB `BatchWriteItem` with 25 items of 100 attributes, 5000.
pub const MAX_PARAMETER_VALUES: usize = 20_000;

/// Characters an action type, service, operation or resource may hold.
pub const MAX_NAME_CHARS: usize = 500;

/// 422 when `value` holds more than [`MAX_PARAMETER_VALUES`] values. Counts without
/// recursion and stops at the limit, so a hostile map costs no more than the limit.
pub fn check_parameter_count(field: &str, value: &Value) -> Result<(), ApiError> {
    let mut stack = vec![value];
    let mut seen = 0usize;
    while let Some(v) = stack.pop() {
        seen += 1;
        if seen > MAX_PARAMETER_VALUES {
            return Err(ApiError::invalid(format!(
                "`{field}` holds more than {MAX_PARAMETER_VALUES} values; send the call's own parameters only"
            )));
        }
        match v {
            Value::Object(map) => stack.extend(map.values()),
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    Ok(())
}

/// 422 when a name-like field is longer than [`MAX_NAME_CHARS`].
pub fn check_name_length(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > MAX_NAME_CHARS => Err(ApiError::invalid(format!(
            "`{field}` holds at most {MAX_NAME_CHARS} characters"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_nested_values_and_stops_at_the_limit() {
        assert!(check_parameter_count("parameters", &json!({"a": [1, 2, {"b": 3}]})).is_ok());
        let wide: serde_json::Map<String, Value> = (0..MAX_PARAMETER_VALUES)
            .map(|i| (i.to_string(), json!(0)))
            .collect();
        let e = check_parameter_count("parameters", &Value::Object(wide)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.detail.contains("20000"), "{}", e.detail);
        assert!(check_name_length("action_type", Some(&"a".repeat(MAX_NAME_CHARS))).is_ok());
        assert!(check_name_length("action_type", Some(&"a".repeat(MAX_NAME_CHARS + 1))).is_err());
    }
}
