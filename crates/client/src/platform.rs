//! The HTTP side: one `reqwest` client, the endpoints of `docs/protocol.md`, retries with
//! backoff for the synchronous submit, and the circuit breaker shared by every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH};
use serde::Deserialize;
use serde_json::Value;

use crate::breaker::Breaker;
use crate::config::Config;

/// Why the platform could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlatformError {
    #[error("the platform failed recently; not asking again yet (circuit breaker open)")]
    CircuitOpen,
    #[error("cannot reach the platform: {0}")]
    Network(String),
    #[error("the platform answered {status}: {detail}")]
    Http { status: u16, detail: String },
    #[error("unexpected answer from the platform: {0}")]
    Protocol(String),
}

impl PlatformError {
    /// Whether trying again may help (network trouble, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Http { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            Self::CircuitOpen | Self::Protocol(_) => false,
        }
    }
}

/// The body of submit and status answers; tolerant of missing fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ActionAnswer {
    pub id: Option<String>,
    pub action_id: Option<String>,
    pub status: String,
    pub risk_score: Option<f64>,
    pub risk_level: Option<String>,
    pub reason: Option<String>,
    pub summary: Option<String>,
    pub message: Option<String>,
    pub policy_ids: Vec<String>,
}

impl ActionAnswer {
    pub(crate) fn id(&self) -> Option<&str> {
        self.action_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.id.as_deref())
    }

    pub(crate) fn why(&self) -> Option<&str> {
        [&self.reason, &self.summary, &self.message]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .find(|s| !s.trim().is_empty())
    }
}

/// The policy bundle as served (`docs/protocol.md`, "Policy bundle").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BundleBody {
    pub etag: Option<String>,
    pub policies: String,
    pub agent: BundleAgent,
    pub settings: Option<BundleSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BundleAgent {
    pub blocked: bool,
    pub blocked_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct BundleSettings {
    pub auto_approve_low_risk: bool,
    pub auto_approve_medium_risk: bool,
}

impl Default for BundleSettings {
    fn default() -> Self {
        Self {
            auto_approve_low_risk: true,
            auto_approve_medium_risk: true,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Platform {
    http: reqwest::Client,
    base: String,
    request_timeout: Duration,
    pub(crate) breaker: Breaker,
    /// Requests made while a governed call waited (submit, status).
    pub(crate) sync_requests: AtomicU64,
}

fn network(error: reqwest::Error) -> PlatformError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    PlatformError::Network(text)
}

async fn error_of(response: reqwest::Response) -> PlatformError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("detail")
                .map(|d| d.as_str().map_or(d.to_string(), str::to_string))
        })
        .unwrap_or_else(|| body.chars().take(300).collect());
    PlatformError::Http { status, detail }
}

impl Platform {
    pub(crate) fn new(config: &Config) -> Result<Self, PlatformError> {
        // reqwest is built without a default crypto provider; ring needs no system
        // packages. Keep whatever provider the process installed already.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut headers = HeaderMap::new();
        let key = HeaderValue::from_str(&config.api_key).map_err(|_| {
            PlatformError::Protocol("the API key is not a valid header value".into())
        })?;
        headers.insert("X-API-Key", key);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("ascend-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(network)?;
        Ok(Self {
            http,
            base: config.base().to_string(),
            request_timeout: config.request_timeout,
            breaker: Breaker::new(),
            sync_requests: AtomicU64::new(0),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn record<T>(&self, result: &Result<T, PlatformError>) {
        match result {
            Ok(_) => self.breaker.success(),
            Err(e) if e.is_transient() => self.breaker.failure(),
            Err(_) => {}
        }
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, PlatformError> {
        let request = self.http.post(self.url(path)).json(body);
        self.send(request, self.request_timeout).await
    }

    /// Sends a request, reads a JSON answer, and tells the circuit breaker how it went.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, PlatformError> {
        let result = async {
            let response = request.timeout(timeout).send().await.map_err(network)?;
            if !response.status().is_success() {
                return Err(error_of(response).await);
            }
            response
                .json::<T>()
                .await
                .map_err(|e| PlatformError::Protocol(e.to_string()))
        }
        .await;
        self.record(&result);
        result
    }

    /// `POST /api/v1/actions/submit`, with up to three tries while the breaker lets it.
    pub(crate) async fn submit(&self, body: &Value) -> Result<ActionAnswer, PlatformError> {
        let attempt = || async {
            if !self.breaker.allow() {
                return Err(PlatformError::CircuitOpen);
            }
            self.sync_requests.fetch_add(1, Ordering::Relaxed);
            self.post_json::<ActionAnswer>("/api/v1/actions/submit", body)
                .await
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_millis(800))
                    .with_max_times(2)
                    .with_jitter(),
            )
            .when(PlatformError::is_transient)
            .await
    }

    /// `GET /api/v1/actions/{id}/status?wait=N`: answers when decided or after N seconds.
    pub(crate) async fn status(&self, id: &str, wait: u64) -> Result<ActionAnswer, PlatformError> {
        self.sync_requests.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .get(self.url(&format!("/api/v1/actions/{id}/status")))
            .query(&[("wait", wait)]);
        // The platform may hold the answer for `wait` seconds before it says anything.
        self.send(request, Duration::from_secs(wait) + self.request_timeout)
            .await
    }

    /// `GET /api/v1/bundle`: `Ok(None)` when the bundle with `etag` is still current.
    pub(crate) async fn bundle(
        &self,
        agent_id: &str,
        wait: u64,
        etag: Option<&str>,
    ) -> Result<Option<(Option<String>, BundleBody)>, PlatformError> {
        let result = async {
            let mut request = self
                .http
                .get(self.url("/api/v1/bundle"))
                .query(&[("agent_id", agent_id)])
                .query(&[("wait", wait)])
                .timeout(Duration::from_secs(wait) + self.request_timeout);
            if let Some(etag) = etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            let response = request.send().await.map_err(network)?;
            if response.status() == StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(error_of(response).await);
            }
            let header_etag = response
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .json::<BundleBody>()
                .await
                .map_err(|e| PlatformError::Protocol(e.to_string()))?;
            let etag = header_etag.or_else(|| body.etag.clone());
            Ok(Some((etag, body)))
        }
        .await;
        self.record(&result);
        result
    }

    /// `POST /api/v1/audit/events` with a body built by the uploader (≤ 500 events).
    pub(crate) async fn upload_events(&self, body: Vec<u8>) -> Result<Value, PlatformError> {
        let request = self
            .http
            .post(self.url("/api/v1/audit/events"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request, self.request_timeout).await
    }

    /// `POST /api/v1/actions/{id}/result`.
    pub(crate) async fn post_result(&self, id: &str, body: &Value) -> Result<Value, PlatformError> {
        self.post_json::<Value>(&format!("/api/v1/actions/{id}/result"), body)
            .await
    }
}
