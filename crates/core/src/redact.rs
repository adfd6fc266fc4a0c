//! Parameter redaction: secrets are replaced before anything is stored, logged or sent.
//!
//! A parameter is secret by its name (passwords, secret strings, tokens that grant access,
//! private keys, key material, object bodies) or by its value (PEM private keys, Ascend
//! keys). Names that merely contain "Key" (S3 `Key`, `KeyName`, `KeyId`) and pagination or
//! idempotency tokens are kept: they are identifiers, not secrets.

use serde_json::{Map, Value};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Folded names (lower case, no `_`/`-`) that are secret wherever they appear.
const SECRET_NAMES: &[&str] = &[
    "secretstring",
    "secretbinary",
    "secretaccesskey",
    "awssecretaccesskey",
    "secretkey",
    "secret",
    "secretvalue",
    "clientsecret",
    "sessiontoken",
    "awssessiontoken",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "bearertoken",
    "token",
    "privatekey",
    "keymaterial",
    "plaintext",
    "body",
    "payload",
    "zipfile",
    "userdata",
    "credentials",
    "apikey",
    "authorization",
    "masteruserpassword",
    "signingkey",
    "sharedsecret",
    "presharedkey",
    "certificatechain",
];

/// Folded name fragments that make any name secret.
const SECRET_FRAGMENTS: &[&str] = &["password", "passphrase", "privatekey", "secretaccesskey"];

/// Token names that are identifiers, not credentials.
const PUBLIC_TOKENS: &[&str] = &[
    "nexttoken",
    "continuationtoken",
    "clienttoken",
    "paginationtoken",
    "startingtoken",
    "idempotencytoken",
    "clientrequesttoken",
    "marker",
];

fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a parameter of this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let folded = fold(name);
    if PUBLIC_TOKENS.contains(&folded.as_str()) {
        return false;
    }
    SECRET_NAMES.contains(&folded.as_str())
        || SECRET_FRAGMENTS.iter().any(|f| folded.contains(f))
        || (folded.ends_with("secret") && !folded.ends_with("idsecret"))
        || (folded.ends_with("token") && !folded.ends_with("nexttoken"))
}

/// Whether a value is a secret whatever its name.
pub fn is_secret_value(value: &str) -> bool {
    value.contains("PRIVATE KEY-----") || value.starts_with("owkai_")
}

/// Returns a copy of `params` with every secret replaced by `[REDACTED]`.
pub fn redact(params: &Value) -> Value {
    match params {
        Value::Object(map) => Value::Object(redact_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if is_secret_value(s) => Value::String(REDACTED.into()),
        other => other.clone(),
    }
}

/// A member that is a secret because of its sibling, not its name: the `Value` of an SSM
/// parameter whose `Type` is `SecureString` (`ssm.put_parameter`).
fn secret_by_sibling(map: &Map<String, Value>, key: &str) -> bool {
    key == "Value" && map.get("Type").and_then(Value::as_str) == Some("SecureString")
}

fn redact_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(key, value)| {
            let value = if (is_secret_name(key) || secret_by_sibling(map, key)) && !value.is_null()
            {
                Value::String(REDACTED.into())
            } else {
                redact(value)
            };
            (key.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secure_string_parameter_value_goes_and_a_plain_one_stays() {
        let secure = json!({"Name": "/db/pw", "Value": "s3cr3t", "Type": "SecureString"});
        assert_eq!(redact(&secure)["Value"], REDACTED);
        assert_eq!(redact(&secure)["Name"], "/db/pw");
        let plain = json!({"Name": "/app/colour", "Value": "blue", "Type": "String"});
        assert_eq!(redact(&plain), plain);
        let tag = json!({"Tags": [{"Key": "team", "Value": "ops"}]});
        assert_eq!(redact(&tag), tag);
    }

    #[test]
    fn secrets_go_and_identifiers_stay() {
        let params = json!({
            "Bucket": "b", "Key": "reports/q1.csv", "KeyName": "deploy", "KeyId": "alias/x",
            "Body": "hello", "SecretString": "s3cr3t", "MasterUserPassword": "pw",
            "NextToken": "abc", "ClientToken": "idem", "SessionToken": "tok",
            "Nested": {"Password": "pw", "Items": [{"PrivateKey": "k", "Name": "n"}]},
            "Note": "-----BEGIN RSA PRIVATE KEY-----\nMII..."
        });
        let out = redact(&params);
        for kept in [
            "Bucket",
            "Key",
            "KeyName",
            "KeyId",
            "NextToken",
            "ClientToken",
        ] {
            assert_eq!(out[kept], params[kept], "{kept} must be kept");
        }
        for gone in [
            "Body",
            "SecretString",
            "MasterUserPassword",
            "SessionToken",
            "Note",
        ] {
            assert_eq!(out[gone], REDACTED, "{gone} must be redacted");
        }
        assert_eq!(out["Nested"]["Password"], REDACTED);
        assert_eq!(out["Nested"]["Items"][0]["PrivateKey"], REDACTED);
        assert_eq!(out["Nested"]["Items"][0]["Name"], "n");
    }
}
