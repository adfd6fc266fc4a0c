//! Small helpers: timestamps, ids, fingerprints.

use serde_json::Value;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, macros::format_description};

/// Now, as fixed-width RFC 3339 UTC with milliseconds (sorts as text).
pub fn now() -> String {
    format_ts(OffsetDateTime::now_utc())
}

pub fn format_ts(t: OffsetDateTime) -> String {
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// Parses any RFC 3339 time into our stored form.
pub fn parse_ts(text: &str) -> Option<String> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(format_ts)
}

pub fn in_secs(secs: u64) -> String {
    format_ts(OffsetDateTime::now_utc() + time::Duration::seconds(secs as i64))
}

/// A new sortable, unguessable id: `act_01J…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}

/// Whether `id` is a well-formed `act_<ULID>`.
pub fn is_action_id(id: &str) -> bool {
    id.strip_prefix("act_")
        .is_some_and(|u| u.len() == 26 && ulid::Ulid::from_string(u).is_ok())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 8785 canonical JSON.
pub fn canonical(value: &Value) -> String {
    serde_jcs::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// The fingerprint that binds an approval to the exact parameters of a call.
pub fn fingerprint(params: &Value) -> String {
    sha256_hex(canonical(params).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn action_ids_are_act_and_a_ulid() {
        let id = new_id("act");
        assert!(is_action_id(&id), "{id}");
        assert!(!is_action_id("act_123"));
        assert!(!is_action_id("alr_01J9ZZZZZZZZZZZZZZZZZZZZZZ"));
        assert_ne!(new_id("act"), id);
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = fingerprint(&json!({"Bucket": "b", "Key": "k"}));
        assert_eq!(a, fingerprint(&json!({"Key": "k", "Bucket": "b"})));
        assert_ne!(a, fingerprint(&json!({"Bucket": "b", "Key": "k2"})));
    }

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_text() {
        let t = now();
        assert_eq!(t.len(), "2026-01-01T00:00:00.000Z".len());
        assert_eq!(
            parse_ts("2026-01-01T01:00:00+01:00").as_deref(),
            Some("2026-01-01T00:00:00.000Z")
        );
        assert!(parse_ts("yesterday").is_none());
        assert!(in_secs(60) > t);
    }
}
