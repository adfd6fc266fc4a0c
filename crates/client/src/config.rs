//! What a [`crate::Governor`] needs to know.

use std::path::PathBuf;
use std::time::Duration;

use ascend_core::{RiskLevel, Settings};

/// What happens to a call when the platform cannot be asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Run the call (with a warning).
    Open,
    /// Refuse the call.
    Closed,
}

impl FailMode {
    /// `"open"` / `"closed"`, any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    /// The default for a level: HIGH and CRITICAL fail closed, LOW and MEDIUM fail open.
    pub fn default_for(level: RiskLevel) -> Self {
        match level {
            RiskLevel::High | RiskLevel::Critical => Self::Closed,
            RiskLevel::Low | RiskLevel::Medium => Self::Open,
        }
    }
}

/// Configuration of a [`crate::Governor`].
#[derive(Clone, Debug)]
pub struct Config {
    pub api_key: String,
    /// `https://pilot.owkai.app` or `http://127.0.0.1:8700`; a trailing `/` is ignored.
    pub base_url: String,
    pub agent_id: String,
    pub agent_name: String,
    /// Sent as `tool_name` with a submit (`boto3`, `aws-sdk-rust`).
    pub tool_name: String,
    pub settings: Settings,
    /// How long a call that needs approval waits for a person; zero: not at all.
    pub approval_timeout: Duration,
    /// `None`: by risk level ([`FailMode::default_for`]).
    pub fail_mode: Option<FailMode>,
    /// Where audit events wait while the platform is away. `None`: `ASCEND_QUEUE_DIR`,
    /// else `<user cache dir>/ascend/queue`.
    pub queue_dir: Option<PathBuf>,
    /// Timeout of one ordinary request (submit, upload).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long one bundle long-poll may wait on the server (≤ 60 s).
    pub bundle_wait: Duration,
    /// Events kept in memory before they go to disk.
    pub memory_queue_limit: usize,
    /// Bytes this process's queue file may hold while the platform is away (64 MiB: about
    /// 100,000 events). Events past it are dropped, counted in `events_dropped` and
    /// logged; the file empties once the platform takes it.
    pub disk_queue_limit: u64,
    /// How often queued events are sent.
    pub upload_interval: Duration,
}

impl Config {
    /// A configuration with the documented defaults.
    pub fn new(
        api_key: impl Into<String>,
        base_url: impl Into<String>,
        agent_id: impl Into<String>,
    ) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: base_url.into(),
            agent_id: agent_id.into(),
            agent_name: "AWS Boto3 Agent".into(),
            tool_name: "boto3".into(),
            settings: Settings::default(),
            approval_timeout: Duration::from_secs(300),
            fail_mode: None,
            queue_dir: None,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            bundle_wait: Duration::from_secs(25),
            memory_queue_limit: 10_000,
            disk_queue_limit: 64 * 1024 * 1024,
            upload_interval: Duration::from_millis(250),
        }
    }

    pub(crate) fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The queue directory this configuration resolves to.
    pub fn resolved_queue_dir(&self) -> PathBuf {
        if let Some(dir) = &self.queue_dir {
            return dir.clone();
        }
        if let Some(dir) = std::env::var_os("ASCEND_QUEUE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("ascend")
            .join("queue")
    }
}
