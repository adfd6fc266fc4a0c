#![doc = include_str!("../README.md")]
//!
//! ## What this crate owns
//!
//! The aws-sdk-rust front end of Ascend: the [`AscendInterceptor`] (an
//! aws-smithy-runtime-api [`Intercept`](aws_smithy_runtime_api::client::interceptors::Intercept)),
//! reading service, operation and parameters from the SDK, the log lines and metrics
//! records, and the typed denial. Must not touch: decisions (`ascend-core`), talking to the
//! platform, fail modes and audit upload (`ascend-client`'s `Governor`).
#![deny(missing_docs, missing_debug_implementations)]

mod interceptor;
pub mod params;

use std::error::Error;
use std::time::Duration;

use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

pub use ascend_client::{Config, FailMode, GovernanceDenied, Governor, StartError};
pub use ascend_core::RiskLevel;
pub use interceptor::{AscendInterceptor, LOG_TARGET, METRICS_TARGET};

/// Ascend governance for aws-sdk-rust clients: one [`Governor`] (bundle sync, approvals,
/// fail modes, audit upload) shared by every client given its [`Ascend::interceptor`].
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ascend {
    governor: Governor,
}

impl Ascend {
    /// Starts a governor with `config`. Its `tool_name` becomes `aws-sdk-rust` and its
    /// `agent_name` `AWS SDK Rust Agent` unless set to something else than the Python
    /// package's defaults.
    pub fn new(mut config: Config) -> Result<Self, StartError> {
        if config.tool_name == "boto3" {
            config.tool_name = "aws-sdk-rust".into();
        }
        if config.agent_name == "AWS Boto3 Agent" {
            config.agent_name = "AWS SDK Rust Agent".into();
        }
        Ok(Self::from_governor(Governor::new(config)?))
    }

    /// [`Ascend::new`] from `ASCEND_API_KEY`, `ASCEND_API_URL` (default
    /// `https://pilot.owkai.app`) and `ASCEND_AGENT_ID` (default `aws-sdk-rust-agent`).
    pub fn from_env() -> Result<Self, StartError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let config = Config::new(
            var("ASCEND_API_KEY").unwrap_or_default(),
            var("ASCEND_API_URL").unwrap_or_else(|| "https://pilot.owkai.app".into()),
            var("ASCEND_AGENT_ID").unwrap_or_else(|| "aws-sdk-rust-agent".into()),
        );
        Self::new(config)
    }

    /// Uses a governor that already runs (e.g. shared with other front ends).
    pub fn from_governor(governor: Governor) -> Self {
        Self { governor }
    }

    /// The interceptor to add to an SDK client's config:
    /// `aws_sdk_s3::config::Builder::from(&sdk_config).interceptor(ascend.interceptor())`.
    /// [`Ascend::permanent_interceptor`] (what [`governed_client!`] uses) is the same
    /// governance, cannot be disabled through the config bag, and costs a little less per
    /// call.
    pub fn interceptor(&self) -> AscendInterceptor {
        AscendInterceptor::new(self.governor.clone())
    }

    /// The interceptor as a permanent [`SharedInterceptor`], for a config builder's
    /// `push_interceptor` (what [`governed_client!`] does):
    ///
    /// ```no_run
    /// # fn demo(sdk_config: &aws_types::SdkConfig, ascend: &ascend_aws::Ascend) {
    /// let mut builder = aws_sdk_s3::config::Builder::from(sdk_config);
    /// builder.push_interceptor(ascend.permanent_interceptor());
    /// let s3 = aws_sdk_s3::Client::from_conf(builder.build());
    /// # }
    /// ```
    ///
    /// Unlike `.interceptor(ascend.interceptor())`, no `DisableInterceptor` in the config
    /// bag (from a runtime plugin or a per-operation config override) can switch it off,
    /// and the SDK does not look for one before each of its hooks on every call.
    pub fn permanent_interceptor(&self) -> SharedInterceptor {
        SharedInterceptor::permanent(self.interceptor())
    }

    /// The governor behind the interceptors.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// Waits up to `timeout` for the first policy bundle; `true` once it is here.
    /// Until then every call is decided by the platform.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.governor.ready(timeout).await
    }

    /// Uploads queued audit events, waiting up to `timeout`; `true` when nothing is left.
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.governor.flush(timeout).await
    }
}

/// The [`GovernanceDenied`] behind an SDK error, if Ascend refused the call.
///
/// The SDK wraps the interceptor's error (`SdkError` → the orchestrator's error → …), so
/// this walks the [`Error::source`] chain and downcasts each link:
///
/// ```no_run
/// # async fn demo(s3: aws_sdk_s3::Client) {
/// match s3.delete_bucket().bucket("logs").send().await {
///     Ok(_) => println!("deleted"),
///     Err(err) => match ascend_aws::denial(&err) {
///         Some(denied) => eprintln!("{} ({})", denied.reason, denied.action_id),
///         None => eprintln!("AWS error: {err}"),
///     },
/// }
/// # }
/// ```
pub fn denial<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a GovernanceDenied> {
    let mut current = Some(error);
    let mut depth = 0;
    while let Some(error) = current {
        if let Some(denied) = error.downcast_ref::<GovernanceDenied>() {
            return Some(denied);
        }
        depth += 1;
        if depth > 32 {
            break;
        }
        current = error.source();
    }
    None
}

/// A governed client of any aws-sdk-rust service crate, built from an `SdkConfig`:
/// `governed_client!(aws_sdk_dynamodb, &sdk_config, &ascend)` is
/// `aws_sdk_dynamodb::Client::from_conf(builder.build())` where `builder` is
/// `aws_sdk_dynamodb::config::Builder::from(&sdk_config)` with
/// [`Ascend::permanent_interceptor`] pushed onto it.
///
/// `aws_types::SdkConfig` has no interceptor list and no runtime plugins (aws-types 1.7.0:
/// interceptors exist only on each service's own config), and the parts it does carry
/// (HTTP client, identity cache) never see an operation's input, so a governed `SdkConfig`
/// cannot exist (see the crate README); this macro is the one place to build every client
/// through instead.
#[macro_export]
macro_rules! governed_client {
    ($service:ident, $sdk_config:expr, $ascend:expr) => {{
        let mut builder = $service::config::Builder::from($sdk_config);
        builder.push_interceptor($ascend.permanent_interceptor());
        $service::Client::from_conf(builder.build())
    }};
}
