//! The dispatcher: claims due deliveries, posts them, records each attempt and schedules
//! the next one with exponential backoff until a 2xx or the last attempt.
//!
//! Claiming moves the row's lease forward and counts the attempt in one statement (on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`, so replicas never claim the same row), and a
//! result is recorded only for the attempt that was claimed. A process that dies mid-
//! delivery leaves a lease that runs out; the attempt is then made again. Deliveries are
//! therefore at least once: receivers deduplicate by `X-Ascend-Delivery`.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};

use super::WAKE;
use super::egress::Egress;
use super::signing::signature;
use crate::error::ApiError;
use crate::store::{Backend, Store};
use crate::util::{format_ts, now};

/// How deliveries are retried (`ascend serve --webhook-retry-base-ms/--webhook-max-attempts`)
/// and where they may go (`--webhook-refuse-private-networks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Delay before the second attempt; each later one doubles it (capped at `RETRY_CAP`).
    pub retry_base_ms: u64,
    /// Attempts in all, the first included; after the last failure the delivery is `failed`.
    pub max_attempts: u32,
    /// Refuse loopback and private networks as well as cloud metadata (see `egress`).
    pub refuse_private_networks: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry_base_ms: 1000,
            max_attempts: 8,
            refuse_private_networks: false,
        }
    }
}

impl WebhookSettings {
    pub(crate) fn egress(self) -> Egress {
        Egress {
            refuse_private: self.refuse_private_networks,
        }
    }
}

/// One request may take this long (connect, send, response head).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// A claim outlives its attempt, so a live dispatcher always records before it runs out.
const LEASE: Duration = Duration::from_secs(30);
/// No retry waits longer than this, whatever the base.
const RETRY_CAP: Duration = Duration::from_secs(3600);
/// Deliveries claimed (and posted concurrently) at once.
const BATCH: usize = 32;
/// The longest sleep between scans: rows queued by other replicas, leases run out.
const SCAN_EVERY: Duration = Duration::from_secs(5);

/// The wait before attempt `attempt + 1` after `attempt` failed: base · 2^(attempt−1),
/// capped.
pub fn retry_delay(base_ms: u64, attempt: u32) -> Duration {
    let factor = 1u64 << attempt.saturating_sub(1).min(32);
    Duration::from_millis(base_ms.saturating_mul(factor)).min(RETRY_CAP)
}

/// A claimed delivery with where it goes.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: String,
    webhook_id: String,
    event: String,
    payload: String,
    attempts: i64,
}

/// What one attempt produced.
#[derive(Debug)]
struct Attempt {
    started_at: String,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

impl Attempt {
    fn delivered(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

fn http_client(egress: Egress) -> Option<reqwest::Client> {
    // reqwest is built without a default crypto provider; ring needs no system library.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        // A signed body goes where it was registered to go, nowhere else.
        .redirect(reqwest::redirect::Policy::none())
        // Names resolve without the addresses a delivery may not reach (`egress`).
        .dns_resolver(std::sync::Arc::new(egress.resolver()))
        .build()
        .inspect_err(|e| tracing::error!(error = %e, "cannot build the webhook HTTP client"))
        .ok()
}

/// Starts the dispatcher of this process.
pub fn spawn_dispatcher(store: Store, settings: WebhookSettings) {
    super::retention::spawn_pruning(store.clone());
    let Some(client) = http_client(settings.egress()) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            match claim(&store).await {
                Ok(batch) => {
                    let full = batch.len() == BATCH;
                    join_all(
                        batch
                            .into_iter()
                            .map(|d| deliver(&store, &client, settings, d)),
                    )
                    .await;
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            let wait = until_next_due(&store).await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = WAKE.notified() => {}
            }
        }
    });
}

fn claim_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' \
             AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY next_attempt_at LIMIT 32 FOR UPDATE SKIP LOCKED) \
             RETURNING id, webhook_id, event, payload, attempts"
        }
        // One writer connection: claims are serialised by the writer itself.
        Backend::Sqlite => {
            "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' \
             AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY next_attempt_at LIMIT 32) \
             RETURNING id, webhook_id, event, payload, attempts"
        }
    }
}

async fn claim(store: &Store) -> Result<Vec<Claimed>, ApiError> {
    let sql = claim_sql(store.backend);
    store
        .write(move |conn| {
            Box::pin(async move {
                let ts = time::OffsetDateTime::now_utc();
                Ok(sqlx::query_as(sql)
                    .bind(format_ts(ts))
                    .bind(format_ts(ts + LEASE))
                    .fetch_all(conn)
                    .await?)
            })
        })
        .await
}

/// Until the next unclaimed delivery is due, at most `SCAN_EVERY`.
async fn until_next_due(store: &Store) -> Duration {
    let ts = now();
    let next: Result<(Option<String>,), _> = sqlx::query_as(
        "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending' \
         AND (lease_until IS NULL OR lease_until <= $1)",
    )
    .bind(&ts)
    .fetch_one(&store.pool)
    .await;
    let Ok((Some(next),)) = next else {
        return SCAN_EVERY;
    };
    let Some(at) = parse(&next) else {
        return SCAN_EVERY;
    };
    let left = at - time::OffsetDateTime::now_utc();
    Duration::try_from(left)
        .unwrap_or(Duration::ZERO)
        .min(SCAN_EVERY)
}

fn parse(ts: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()
}

async fn deliver(store: &Store, client: &reqwest::Client, settings: WebhookSettings, d: Claimed) {
    let target: Result<Option<(String, String)>, _> =
        sqlx::query_as("SELECT url, secret FROM webhooks WHERE id = $1 AND deleted_at IS NULL")
            .bind(&d.webhook_id)
            .fetch_optional(&store.pool)
            .await;
    let attempt = match target {
        Ok(Some((url, secret))) => post(client, settings.egress(), &url, &secret, &d).await,
        // Deleted meanwhile: its deliveries were cancelled in the same transaction.
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, delivery = %d.id, "cannot read the webhook");
            return;
        }
    };
    if let Err(e) = record(store, settings, &d, attempt).await {
        tracing::warn!(error = %e, delivery = %d.id, "cannot record a webhook attempt");
    }
}

async fn post(
    client: &reqwest::Client,
    egress: Egress,
    url: &str,
    secret: &str,
    d: &Claimed,
) -> Attempt {
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let body = d.payload.clone().into_bytes();
    let started_at = now();
    let start = Instant::now();
    // A literal address does not pass the resolver: checked here (rows stored before the
    // check at registration existed, or before private networks were refused).
    let refused = reqwest::Url::parse(url).ok().and_then(|u| {
        let host = u.host()?;
        egress.forbidden_host(&host)
    });
    if let Some(why) = refused {
        return Attempt {
            started_at,
            status_code: None,
            error: Some(format!("not delivered: the URL points at {why}")),
            duration_ms: 0,
        };
    }
    let sent = client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static("Ascend-Webhooks/1"))
        .header("X-Ascend-Event", &d.event)
        .header("X-Ascend-Delivery", &d.id)
        .header("X-Ascend-Timestamp", &ts)
        .header("X-Ascend-Signature", signature(secret, &ts, &body))
        .body(body)
        .send()
        .await;
    let (status_code, error) = match sent {
        Ok(resp) => {
            // Only the status counts; the body is not read (a receiver cannot make the
            // dispatcher buffer an answer of any size).
            let code = resp.status();
            drop(resp);
            let error = (!code.is_success()).then(|| format!("HTTP {code}"));
            (Some(i64::from(code.as_u16())), error)
        }
        Err(e) => (None, Some(describe(&e))),
    };
    Attempt {
        started_at,
        status_code,
        error,
        duration_ms: i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX),
    }
}

/// A transport error in words, without the URL (a Slack URL carries its token).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", DELIVERY_TIMEOUT.as_secs());
    }
    let mut text = if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What an attempt means for its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Failed, and attempts are left.
    Retry,
    /// Failed at the last attempt: the delivery gives up.
    Failed,
}

impl Outcome {
    fn of(a: &Attempt, attempt: i64, max_attempts: u32) -> Outcome {
        if a.delivered() {
            Outcome::Delivered
        } else if attempt >= i64::from(max_attempts) {
            Outcome::Failed
        } else {
            Outcome::Retry
        }
    }

    /// The metric label.
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        }
    }

    /// The delivery's state afterwards.
    fn state(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "pending",
            Outcome::Failed => "failed",
        }
    }
}

async fn record(
    store: &Store,
    settings: WebhookSettings,
    d: &Claimed,
    a: Attempt,
) -> Result<(), ApiError> {
    let n = d.attempts;
    let outcome = Outcome::of(&a, n, settings.max_attempts);
    let state = outcome.state();
    let next = (outcome == Outcome::Retry).then(|| {
        let wait = retry_delay(settings.retry_base_ms, u32::try_from(n).unwrap_or(u32::MAX));
        format_ts(time::OffsetDateTime::now_utc() + wait)
    });
    let delivered_at = (outcome == Outcome::Delivered).then(now);
    let id = d.id.clone();
    let recorded = store
        .write(move |conn| {
            Box::pin(async move {
                // Only the attempt that was claimed may record (a run-out lease means
                // another dispatcher took the row over).
                let moved = sqlx::query(
                    "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, \
                     lease_until = NULL, delivered_at = $3 \
                     WHERE id = $4 AND attempts = $5 AND state = 'pending'",
                )
                .bind(state)
                .bind(&next)
                .bind(&delivered_at)
                .bind(&id)
                .bind(n)
                .execute(&mut *conn)
                .await?;
                if moved.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, \
                     status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&id)
                .bind(n)
                .bind(&a.started_at)
                .bind(a.status_code)
                .bind(&a.error)
                .bind(a.duration_ms)
                .execute(&mut *conn)
                .await?;
                Ok(true)
            })
        })
        .await?;
    if recorded {
        metrics::counter!("ascend_webhook_deliveries_total", "outcome" => outcome.as_str())
            .increment(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_and_stop_at_the_cap() {
        assert_eq!(retry_delay(1000, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(1000, 2), Duration::from_secs(2));
        assert_eq!(retry_delay(1000, 7), Duration::from_secs(64));
        assert_eq!(retry_delay(1000, 40), RETRY_CAP);
        assert_eq!(retry_delay(u64::MAX, 3), RETRY_CAP);
        assert_eq!(retry_delay(20, 0), Duration::from_millis(20));
    }

    #[test]
    fn only_the_last_failed_attempt_gives_up() {
        let attempt = |code: Option<i64>| Attempt {
            started_at: now(),
            status_code: code,
            error: None,
            duration_ms: 1,
        };
        assert_eq!(Outcome::of(&attempt(Some(204)), 3, 3), Outcome::Delivered);
        assert_eq!(Outcome::of(&attempt(Some(500)), 2, 3), Outcome::Retry);
        assert_eq!(Outcome::of(&attempt(Some(302)), 3, 3), Outcome::Failed);
        assert_eq!(Outcome::of(&attempt(None), 1, 1), Outcome::Failed);
        assert_eq!(Outcome::Retry.state(), "pending");
    }

    #[test]
    fn a_claim_takes_at_most_one_batch() {
        assert!(claim_sql(Backend::Sqlite).contains(&format!("LIMIT {BATCH})")));
        assert!(
            claim_sql(Backend::Postgres)
                .contains(&format!("LIMIT {BATCH} FOR UPDATE SKIP LOCKED)"))
        );
    }
}
