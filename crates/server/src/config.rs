//! How a server runs: where it listens, where the data is, and its limits.

use std::net::SocketAddr;

use crate::store::StoreConfig;
use crate::webhooks::WebhookSettings;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub store: StoreConfig,
    /// Seconds a pending action waits for a person before it is denied.
    pub pending_ttl_secs: u64,
    /// Requests per second per API key (burst of the same size); 0 turns it off.
    pub rate_limit_per_sec: u32,
    /// `ASCEND_BOOTSTRAP_KEY`: the first admin key on an empty store.
    pub bootstrap_key: Option<String>,
    /// Webhook retries: base delay and attempts.
    pub webhooks: WebhookSettings,
}

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;
