//! Small helpers: timestamps, ids, fingerprints.

use serde_json::Value;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, macros::format_description};

/// Now, as fixed-width RFC 3339 UTC with milliseconds (sorts as text).
pub fn now() -> String {
    format_ts(OffsetDateTime::now_utc())
}

/// `t` in the form [`now`] gives.
pub fn format_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return format_ts_by_description(t);
    }
    // Written digit by digit: every submit stamps its record, and `time`'s formatter,
    // which interprets the description on each call, cost ~1,900 instructions a call.
    let mut out = String::with_capacity(24);
    let mut field = |n: u32, width: u32, then: char| {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
        out.push(then);
    };
    field(year as u32, 4, '-');
    field(u32::from(u8::from(t.month())), 2, '-');
    field(u32::from(t.day()), 2, 'T');
    field(u32::from(t.hour()), 2, ':');
    field(u32::from(t.minute()), 2, ':');
    field(u32::from(t.second()), 2, '.');
    field(u32::from(t.millisecond()), 3, 'Z');
    out
}

/// The same text through `time`'s formatter: the reference, and what years outside
/// 0–9999 get.
fn format_ts_by_description(t: OffsetDateTime) -> String {
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
    // `encode_to_slice` writes from a table; `hex::encode` goes through a char iterator.
    let mut text = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(data), &mut text).expect("64 hex digits for 32 bytes");
    String::from_utf8_lossy(&text).into_owned()
}

/// RFC 8785 canonical JSON: the same bytes as `serde_jcs`, which stays the reference (a
/// property test holds them equal). Written out here because the audit chain and every
/// fingerprint canonicalise on the hot path, and `serde_jcs` re-encodes every key as
/// UTF-16 to sort it. Keys sort by UTF-16 code units; strings escape as `serde_json`
/// does (JCS's rules); integers up to 2^53 print as they are, and other numbers go to
/// `serde_jcs` for ECMAScript's number formatting.
pub fn canonical(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(&mut out, value);
    // Only valid UTF-8 was written: `str`s and ASCII.
    String::from_utf8(out).unwrap_or_default()
}

const EXACT_INTEGER: u64 = 1 << 53;

fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT_INTEGER) {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else if let Some(u) = n.as_u64().filter(|u| *u <= EXACT_INTEGER) {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else {
                let text = serde_jcs::to_string(n).unwrap_or_else(|_| n.to_string());
                out.extend_from_slice(text.as_bytes());
            }
        }
        Value::String(s) => crate::json::push_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Keys are nearly always ASCII, where byte order is UTF-16 order: checked once
            // per object rather than in every comparison.
            if entries.iter().all(|(key, _)| key.is_ascii()) {
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            } else {
                entries.sort_unstable_by(|a, b| utf16_order(a.0, b.0));
            }
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                crate::json::push_str(out, key);
                out.push(b':');
                write_canonical(out, item);
            }
            out.push(b'}');
        }
    }
}

/// UTF-16 code-unit order; the same as byte order unless a character above U+FFFF
/// meets one in U+E000..=U+FFFF.
fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The fingerprint that binds an approval to the exact parameters of a call.
pub fn fingerprint(params: &Value) -> String {
    sha256_hex(canonical(params).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            "[a-z]{0,6}",
            "\\PC{0,4}",
            Just("\u{e000}".to_string()),
            Just("\u{1f600}".to_string())
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            (-(1i64 << 54)..(1i64 << 54)).prop_map(|i| json!(i)),
            "\\PC{0,8}".prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\/\\x7f\u{2028}]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_is_byte_for_byte_serde_jcs(v in json_value()) {
            prop_assert_eq!(canonical(&v), serde_jcs::to_string(&v).unwrap());
        }

        #[test]
        fn timestamps_are_written_as_time_formats_them(
            // Years -0002 to 9999 (`time` goes no further), any nanosecond, any offset.
            secs in -62_167_219_200i64 - 86_400 * 366 * 2..=253_402_300_799 - 86_400,
            nanos in 0u32..1_000_000_000,
            offset_secs in -86_399i32..=86_399,
        ) {
            let utc = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + time::Duration::nanoseconds(i64::from(nanos));
            let offset = time::UtcOffset::from_whole_seconds(offset_secs).unwrap();
            let t = utc.to_offset(offset);
            prop_assert_eq!(format_ts(t), format_ts_by_description(t));
        }
    }

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
