//! Parameter redaction. Any JSON (or, when the input is not JSON, the input as a string)
//! gets secrets planted under secret-bearing names in any spelling, at the top and nested
//! in every object; `redact` must never panic, no planted secret may survive, and
//! redacting twice changes nothing.
#![no_main]

use ascend_core::{REDACTED, is_secret_name, redact};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const PLANTED: &str = "PLANTED-9c1e-do-not-store";
const NAMES: &[&str] = &[
    "SecretAccessKey",
    "Password",
    "SessionToken",
    "PrivateKey",
    "SecretString",
    "MasterUserPassword",
    "ClientSecret",
    "KeyMaterial",
    "Body",
    "Credentials",
    "apiKey",
];

/// A secret-bearing name spelled per the seed: case flipped, `_` or `-` between words.
fn spelling(seed: u8) -> String {
    let name = NAMES[seed as usize % NAMES.len()];
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            match seed >> 5 {
                1 => out.push('_'),
                2 => out.push('-'),
                _ => {}
            }
        }
        out.push(if seed & 0x10 != 0 {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
    }
    out
}

fn plant(v: &mut Value, seed: u8, depth: usize) {
    match v {
        Value::Object(map) if depth < 64 => {
            for child in map.values_mut() {
                plant(child, seed.wrapping_add(1), depth + 1);
            }
            map.insert(spelling(seed), json!(PLANTED));
        }
        Value::Array(items) if depth < 64 => {
            for child in items {
                plant(child, seed.wrapping_add(3), depth + 1);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let seed = data.first().copied().unwrap_or(0);
    let inner = serde_json::from_slice::<Value>(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    if inner.to_string().contains(PLANTED) {
        return; // the input itself holds the marker (maybe \u-escaped): nothing to tell apart
    }
    let mut params = json!({"fuzz": inner, "Note": format!("owkai_agent_{PLANTED}")});
    plant(&mut params, seed, 0);
    assert!(
        is_secret_name(&spelling(seed)),
        "{} is not secret",
        spelling(seed)
    );
    let out = redact(&params);
    let text = out.to_string();
    assert!(!text.contains(PLANTED), "a planted secret survived: {text}");
    assert_eq!(out["Note"], REDACTED);
    assert_eq!(redact(&out), out, "redaction is not idempotent");
});
