//! A circuit breaker, so that an outage costs one timeout, not one per call.
//!
//! Closed: requests go out. After [`THRESHOLD`] consecutive failures it opens for a
//! cool-down (doubling up to [`MAX_COOLDOWN`]); while open, callers fail at once. After
//! the cool-down one request may try (half-open); any success closes it. The bundle
//! long-poll and the audit uploader keep probing in the background, so the breaker closes
//! soon after the platform is back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const THRESHOLD: u32 = 2;
const BASE_COOLDOWN: Duration = Duration::from_secs(2);
const MAX_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
}

impl Breaker {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                cooldown: BASE_COOLDOWN,
            }),
        }
    }

    /// Whether a request may go out now. Half-open after the cool-down: one caller gets
    /// through and the breaker stays open for the others until it reports.
    pub(crate) fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.open_until {
            None => true,
            Some(until) if Instant::now() >= until => {
                let cooldown = state.cooldown;
                state.open_until = Some(Instant::now() + cooldown);
                true
            }
            Some(_) => false,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.open_until.is_some_and(|until| Instant::now() < until)
    }

    pub(crate) fn success(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.failures = 0;
        state.open_until = None;
        state.cooldown = BASE_COOLDOWN;
    }

    pub(crate) fn failure(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.failures = state.failures.saturating_add(1);
        if state.failures >= THRESHOLD {
            let cooldown = state.cooldown;
            state.open_until = Some(Instant::now() + cooldown);
            state.cooldown = (cooldown * 2).min(MAX_COOLDOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_closes_on_success() {
        let breaker = Breaker::new();
        assert!(breaker.allow());
        breaker.failure();
        assert!(breaker.allow(), "one failure does not open it");
        breaker.failure();
        assert!(breaker.is_open());
        assert!(!breaker.allow());
        breaker.success();
        assert!(!breaker.is_open());
        assert!(breaker.allow());
    }
}
