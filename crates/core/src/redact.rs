//! Parameter redaction: secrets are replaced before anything is stored, logged or sent.
//!
//! A parameter is secret by its name (passwords, secret strings, tokens that grant access,
//! private keys, key material, object bodies) or by its value (PEM private keys, Ascend
//! keys, text that sets an AWS secret access key). Names that merely contain "Key" (S3
//! `Key`, `KeyName`, `KeyId`) and pagination or idempotency tokens are kept: they are
//! identifiers, not secrets. A password inside a URL (`postgres://app:pw@db:5432/x`, a
//! connection string under any name) is cut out of the text, which stays readable.

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
const SECRET_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "privatekey",
    "secretaccesskey",
];

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
        // `DB_PASS`, `dbPass`, `SMTP_PWD` (environment variables of a function or a task).
        || ends_with_word_pass(name)
        || folded.ends_with("pwd")
}

/// `pass` as the name's last word (`DB_PASS`, `db-pass`, `dbPass`, `Pass`), not the end
/// of a longer word (`Compass`, `BYPASS`).
fn ends_with_word_pass(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(start) = bytes.len().checked_sub(4) else {
        return false;
    };
    if !bytes[start..].eq_ignore_ascii_case(b"pass") {
        return false;
    }
    match start.checked_sub(1).map(|i| bytes[i]) {
        None => true,
        Some(b'_' | b'-' | b'.' | b' ') => {
            let word = name[..start - 1].rsplit(['_', '-', '.', ' ']).next();
            !word.is_some_and(|w| w.eq_ignore_ascii_case("by"))
        }
        // A camel-case boundary: `dbPass`.
        Some(before) => bytes[start] == b'P' && before.is_ascii_lowercase(),
    }
}

/// Whether a value is a secret whatever its name.
pub fn is_secret_value(value: &str) -> bool {
    value.contains("PRIVATE KEY-----") || value.starts_with("owkai_") || sets_aws_secret(value)
}

/// Text that sets an AWS secret access key (`aws_secret_access_key = …` in a credentials
/// file, `AWS_SECRET_ACCESS_KEY=…` in a script), in any case.
fn sets_aws_secret(value: &str) -> bool {
    const NAME: &[u8] = b"secret_access_key";
    value.len() > NAME.len()
        && value
            .as_bytes()
            .windows(NAME.len())
            .any(|w| w.eq_ignore_ascii_case(NAME))
}

/// `value` with the password of every URL in it replaced (`scheme://user:[REDACTED]@host`);
/// `None` when it has none.
fn without_url_passwords(value: &str) -> Option<String> {
    if !value.contains("://") {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#` or blank; a password is what lies
        // between the first `:` and the last `@` in it.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(userinfo_end), Some(colon)) if colon < userinfo_end => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Returns a copy of `params` with every secret replaced by `[REDACTED]`.
pub fn redact(params: &Value) -> Value {
    match params {
        Value::Object(map) => Value::Object(redact_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if is_secret_value(s) => Value::String(REDACTED.into()),
        Value::String(s) => Value::String(without_url_passwords(s).unwrap_or_else(|| s.clone())),
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

    #[test]
    fn secrets_in_free_text_go() {
        let params = json!({
            "FunctionName": "f",
            "Environment": {"Variables": {
                "DB_PASS": "pw1", "SMTP_PWD": "pw2", "DB_PASSWD": "pw3", "BYPASS": "yes",
                "DATABASE_URL": "postgres://app:s3cr3t@db.internal:5432/orders?sslmode=require",
                "MIRRORS": "see https://a:b@x.example/p and ftp://anon@y.example",
                "SETUP": "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
                "HOMEPAGE": "https://example.com/a:b@c",
            }},
        });
        let out = redact(&params);
        let vars = &out["Environment"]["Variables"];
        for gone in ["DB_PASS", "SMTP_PWD", "DB_PASSWD", "SETUP"] {
            assert_eq!(vars[gone], REDACTED, "{gone}");
        }
        assert_eq!(vars["BYPASS"], "yes");
        assert_eq!(
            vars["DATABASE_URL"],
            "postgres://app:[REDACTED]@db.internal:5432/orders?sslmode=require"
        );
        assert_eq!(
            vars["MIRRORS"],
            "see https://a:[REDACTED]@x.example/p and ftp://anon@y.example"
        );
        // A `@` after the path is not a password.
        assert_eq!(vars["HOMEPAGE"], "https://example.com/a:b@c");
        assert_eq!(out["FunctionName"], "f");
        assert!(!out.to_string().contains("s3cr3t"));
        for kept in [
            "Bypass", "Compass", "BYPASS", "COMPASS", "by_pass", "Passport",
        ] {
            assert!(!is_secret_name(kept), "{kept}");
        }
        for gone in ["Pass", "dbPass", "DbPass", "db-pass", "DB_PASS", "smtp.pwd"] {
            assert!(is_secret_name(gone), "{gone}");
        }
    }
}
