//! # ascend-client — talking to the Ascend platform
//!
//! Owns everything a front end (the Python package, the aws-sdk-rust interceptor) needs
//! between "an AWS call is about to be sent" and "run it or refuse it": the [`Governor`].
//! It keeps the organisation's policy bundle fresh (long-poll with ETag), decides locally
//! with [`ascend_core::decide`] so an allowed call makes no synchronous network request,
//! submits only calls that need a person and long-polls their status, applies the fail
//! modes with retries and a circuit breaker, makes the `act_…` ids, and uploads the audit
//! events of locally decided calls in batches from a background task, spilling them to an
//! append-only JSON Lines queue on disk while the platform is away.
//!
//! Must not touch: decisions themselves (risk, policies, redaction live in `ascend-core`),
//! the AWS SDKs (front ends translate their calls into [`CallRequest`]), logging formats
//! and exception types of a front end, or anything of the server.
//!
//! The wire protocol is `docs/protocol.md`.
//!
//! ```no_run
//! use ascend_client::{CallRequest, Config, Governor};
//! use serde_json::json;
//!
//! let governor = Governor::new(Config::new("owkai_agent_…", "http://127.0.0.1:8700", "agent-1")).unwrap();
//! governor.wait_ready_blocking(std::time::Duration::from_secs(2));
//! let params = json!({"Bucket": "logs"});
//! let request = CallRequest { service: "s3", operation: "DeleteBucket", params, region: "us-east-1" };
//! if let Some(ruling) = governor.check_blocking(request) {
//!     if ruling.executes {
//!         // … send the AWS call …
//!         governor.finish(ruling, ascend_client::CallOutcome::succeeded());
//!     }
//! }
//! governor.flush_blocking(std::time::Duration::from_secs(5));
//! ```
#![deny(missing_debug_implementations)]

mod audit;
mod breaker;
mod bundle;
mod config;
mod governor;
mod ids;
mod platform;

pub use audit::{AuditEvent, CallOutcome, OutcomeStatus};
pub use config::{Config, FailMode};
pub use governor::{
    CallRequest, Decided, GovernanceDenied, Governor, PlatformJob, Prepared, Ruling, Source,
    StartError, Stats,
};
pub use ids::new_action_id;
pub use platform::PlatformError;
