//! Action ids: `act_` followed by a ULID (time-sortable, 80 random bits).
//!
//! The random bits come from the operating system for every id, not from a user-space
//! generator: a forked child (multiprocessing) would otherwise repeat its parent's
//! sequence, and the audit upload, idempotent by id, would drop one of two colliding calls.

use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh `act_…` id, made by the client for calls it decides itself. It is the
/// idempotency key of the audit upload and, for submitted calls, the suggested action id.
pub fn new_action_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes[6..]).is_err() {
        // No OS randomness: fall back to the library's generator.
        return format!("act_{}", ulid::Ulid::new());
    }
    let random = u128::from_be_bytes(bytes);
    format!("act_{}", ulid::Ulid::from_parts(millis, random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let a = new_action_id();
        let b = new_action_id();
        assert_ne!(a, b);
        assert!(a.starts_with("act_"));
        assert_eq!(a.len(), 4 + 26);
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
