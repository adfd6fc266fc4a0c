//! Talking to the Ascend platform (placeholder; see issue 5).
