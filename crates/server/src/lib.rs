//! The Ascend platform (placeholder; see issue 4).
