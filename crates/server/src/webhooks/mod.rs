//! Webhooks: administrators register URLs for events; every matching decision leaves a
//! signed JSON delivery in an outbox, written in the same transaction as the decision, and
//! a dispatcher posts it with retries and keeps a log of every attempt.
//!
//! - `model`: event names, the registration body and its validation, the stored rows.
//! - `outbox`: what the hook points call inside their write transaction (payloads, `text`).
//! - `dispatcher`: claims due deliveries, posts them, schedules retries (backoff).
//! - `signing`: the `X-Ascend-Signature` HMAC.
//! - `egress`: where a delivery may not go (cloud metadata, this host; private networks
//!   with `--webhook-refuse-private-networks`).
//! - `retention`: the delivery log keeps 30 days.
//! - `routes`: `GET/POST /api/v1/webhooks`, `DELETE /api/v1/webhooks/{id}`, the log.
//!
//! Must not touch: how a call is decided, or anything of a decision beyond reading it.
//! Parameters leave only in their stored, already-redacted form.

mod dispatcher;
mod egress;
mod model;
mod outbox;
mod retention;
mod routes;
mod signing;

use tokio::sync::Notify;

pub use dispatcher::{WebhookSettings, spawn_dispatcher};
pub use outbox::{on_action_denied, on_agent_blocked, on_submit, submit_events};
pub use routes::router;

/// Wakes the dispatcher of this process. The hook points call `wake()` after their
/// transaction commits: a process-wide hint (not a queue), because the outbox rows are the
/// truth and the dispatcher also scans on a timer. A spurious wake-up costs one query.
static WAKE: Notify = Notify::const_new();

/// Call after a write that may have queued deliveries has committed.
pub fn wake() {
    WAKE.notify_one();
}
