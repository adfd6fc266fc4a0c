//! Action ids: `act_` followed by a ULID (time-sortable, 80 random bits).

/// A fresh `act_…` id, made by the client for calls it decides itself. It is the
/// idempotency key of the audit upload and, for submitted calls, the suggested action id.
pub fn new_action_id() -> String {
    format!("act_{}", ulid::Ulid::new())
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
