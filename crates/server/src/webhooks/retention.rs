//! How long the delivery log is kept: deliveries that reached a final state (delivered,
//! failed, cancelled) go with their attempts after `KEEP`; a deleted webhook's row goes
//! once none of its deliveries is left. Pending deliveries are never pruned.

use std::time::Duration;

use crate::error::ApiError;
use crate::store::Store;
use crate::util::format_ts;

/// The delivery log keeps 30 days.
pub const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows per transaction, so a large backlog never holds the writer for long.
const CHUNK: i64 = 1000;
/// Chunks per run; what is left waits for the next run.
const MAX_CHUNKS: usize = 100;

/// The chunk: the same ordered rows in both statements (one transaction).
macro_rules! chunk {
    () => {
        "SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1 \
         ORDER BY created_at, id LIMIT $2"
    };
}
const PRUNE_ATTEMPTS: &str = concat!(
    "DELETE FROM webhook_attempts WHERE delivery_id IN (",
    chunk!(),
    ")"
);
const PRUNE_DELIVERIES: &str = concat!(
    "DELETE FROM webhook_deliveries WHERE id IN (",
    chunk!(),
    ")"
);

/// Prunes at start and then every hour.
pub fn spawn_pruning(store: Store) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = prune(&store).await {
                tracing::warn!(error = %e, "pruning the webhook delivery log failed");
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    });
}

/// Deletes what is older than `KEEP`; returns the deliveries deleted.
pub async fn prune(store: &Store) -> Result<u64, ApiError> {
    let cutoff = format_ts(time::OffsetDateTime::now_utc() - KEEP);
    let mut total = 0;
    for _ in 0..MAX_CHUNKS {
        let cutoff = cutoff.clone();
        let deleted = store
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(PRUNE_ATTEMPTS)
                        .bind(&cutoff)
                        .bind(CHUNK)
                        .execute(&mut *conn)
                        .await?;
                    let done = sqlx::query(PRUNE_DELIVERIES)
                        .bind(&cutoff)
                        .bind(CHUNK)
                        .execute(&mut *conn)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
        total += deleted;
        if deleted < CHUNK as u64 {
            break;
        }
    }
    store
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM webhooks WHERE deleted_at IS NOT NULL AND deleted_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.webhook_id = webhooks.id)",
                )
                .bind(&cutoff)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await?;
    if total > 0 {
        tracing::info!(deliveries = total, "pruned the webhook delivery log");
    }
    Ok(total)
}
