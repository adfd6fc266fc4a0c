//! Python bindings (placeholder; see issue 5).
