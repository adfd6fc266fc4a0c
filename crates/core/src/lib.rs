//! # ascend-core — the decision engine
//!
//! Owns operation names, the AWS operation catalog, risk classification, parameter
//! redaction, the Cedar policy engine and the one [`decide`] pipeline that every front end
//! (server, Python package, Rust interceptor, CLI) calls, so a decision cannot differ by
//! entry point.
//!
//! Must not touch: I/O of any kind (network, files, clocks, environment), async, or
//! storage. Callers bring the policy text, the kill-switch state and the settings.
//!
//! ```
//! use ascend_core::{decide, Call, OperationName, PolicyEngine, RiskLevel, Settings, Verdict};
//! use serde_json::json;
//!
//! let policies = PolicyEngine::compile(r#"
//!     @id("no-prod-bucket-delete") @reason("Bucket deletion requires manager approval")
//!     @approval("required")
//!     permit(principal, action == Action::"s3:DeleteBucket", resource)
//!       when { resource.name like "prod*" };
//! "#).unwrap();
//! let name = OperationName::parse("s3:DeleteBucket").unwrap();
//! let params = json!({"Bucket": "prod-logs"});
//! let call = Call { agent_id: "agent-1", name: &name, params: &params, region: "us-east-1" };
//! let decision = decide(&call, &Settings::default(), &policies, None);
//! assert_eq!(decision.verdict, Verdict::NeedsApproval);
//! assert_eq!(decision.reason, "Bucket deletion requires manager approval");
//! assert_eq!(decision.risk_level, RiskLevel::Critical); // 75, +10 for a production name
//! ```
#![deny(missing_debug_implementations)]

mod catalog;
mod decide;
mod name;
mod policy;
mod redact;
mod resource;
mod risk;

pub use catalog::{AccessLevel, Catalog, OperationInfo, ServiceInfo, catalog};
pub use decide::{Call, Decision, Settings, Verdict, decide};
pub use name::{NameError, OperationName};
pub use policy::{
    PolicyDiagnostic, PolicyEffect, PolicyEngine, PolicyError, PolicyInfo, PolicyInput,
    PolicyOutcome,
};
pub use redact::{REDACTED, is_secret_name, is_secret_value, redact};
pub use resource::{Resource, main_resource};
pub use risk::{Classification, RiskLevel, classify, classify_action_type};
