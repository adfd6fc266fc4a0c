//! Storage: one `AnyPool` over SQLite or PostgreSQL, a writer that commits, and the hub
//! that wakes waiters when something changes.
//!
//! Every query is written once, with `$n` placeholders, and runs on both backends.

mod bootstrap;
mod hub;
mod tx;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection};

pub use bootstrap::{BootstrapKey, bootstrap, create_org, insert_key};
pub use hub::{Event, Hub};
pub use tx::{Arg, Row, Tx};
pub use writer::WriteJob;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the data lives.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// When a SQLite commit counts as done (PostgreSQL ignores it).
    pub sqlite_synchronous: SqliteSync,
}

/// SQLite's `synchronous` setting in WAL mode: what an acknowledged write survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// Every commit waits for the WAL to reach the disk (`fsync`): an acknowledged write
    /// survives `kill -9`, an operating-system crash and a power cut. Each answer waits
    /// for the disk, so the disk's `fsync` latency is the submit's latency floor.
    #[default]
    Full,
    /// Commits are written to the WAL without waiting for the disk; the WAL is synced
    /// before each checkpoint (every 100 ms or so). An acknowledged write survives
    /// `kill -9` (the operating system holds it); an OS crash or power cut can lose
    /// the last commits, never the database's consistency or the audit chain's order.
    Normal,
}

impl SqliteSync {
    /// As `--sqlite-synchronous` spells it.
    pub fn name(self) -> &'static str {
        match self {
            SqliteSync::Full => "full",
            SqliteSync::Normal => "normal",
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "PRAGMA synchronous = FULL",
            SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("cannot open the database: {0}")]
    Open(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open the database: {0}")]
    Native(rusqlite::Error),
    #[error("{0}")]
    Bootstrap(String),
}

/// The store, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    writer: writer::Writer,
    pub hub: Hub,
}

const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
];

async fn sqlite_pragmas(conn: &mut AnyConnection, sync: SqliteSync) -> Result<(), sqlx::Error> {
    for pragma in SQLITE_PRAGMAS.iter().chain([&sync.pragma()]) {
        sqlx::raw_sql(*pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Copies the WAL back into the database file in the background (PASSIVE: never blocks
/// the writer or readers), every 100 ms, so that when the writer checkpoints itself (see
/// `WRITER_PRAGMAS`) little is left to copy and its commit pays for almost nothing.
fn spawn_checkpoints(pool: AnyPool) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Err(e) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    });
}

/// What the writer's connections add to `SQLITE_PRAGMAS`. Most checkpointing runs beside
/// the writer (`spawn_checkpoints`), but under a steady stream of writes that alone never
/// lets the WAL start over (there is always a frame it has not copied yet), so the WAL
/// grew without bound (600 MB in 10 s of the load benchmark). The writer checkpoints
/// itself once the WAL holds 1,000 pages (~4 MiB), after which its next transaction
/// rewrites the WAL from the start; a WAL left larger than 8 MiB is cut back then.
///
/// The writer keeps a page cache of 128 pages, not SQLite's default ~500: submits, most of
/// its writes, touch only the right edges of a few b-trees (the rest are point updates),
/// and a commit after a b-tree split walks the whole cache. (Splitting renumbers pages
/// through a temporary number past the end of the file, which leaves the cache's highest
/// page number there; the commit then drops pages past the end by scanning every slot of
/// the cache's hash table. That scan was 1% of the load benchmark's CPU; with the smaller
/// cache, submits/s rose by a median 3.8% over eight alternating pairs on disk, 7 of 8
/// faster.)
const WRITER_PRAGMAS: &[&str] = &[
    "PRAGMA wal_autocheckpoint = 1000",
    "PRAGMA journal_size_limit = 8388608",
    "PRAGMA cache_size = 128",
];

/// The SQLite writer's own connection to the file sqlx opened, with the same pragmas.
/// `None` for an in-memory database, which a second connection would not see.
fn open_native(url: &str, sync: SqliteSync) -> Result<Option<rusqlite::Connection>, StoreError> {
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let path = options.get_filename();
    if url.contains(":memory:") || url.contains("mode=memory") || path.as_os_str().is_empty() {
        return Ok(None);
    }
    let conn = rusqlite::Connection::open(path).map_err(StoreError::Native)?;
    conn.set_prepared_statement_cache_capacity(64);
    for pragma in SQLITE_PRAGMAS
        .iter()
        .chain(WRITER_PRAGMAS)
        .chain([&sync.pragma()])
    {
        // `journal_mode` answers with a row; the others with none.
        conn.query_row(pragma, [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })
            .map_err(StoreError::Native)?;
    }
    Ok(Some(conn))
}

fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("ascend.db").display())
}

impl Store {
    /// Opens (creating if needed) and migrates the store.
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match &config.database_url {
            Some(url) if url.starts_with("postgres") => (url.clone(), Backend::Postgres),
            Some(url) => (url.clone(), Backend::Sqlite),
            None => {
                std::fs::create_dir_all(&config.data_dir)
                    .map_err(|e| StoreError::DataDir(config.data_dir.clone(), e))?;
                (sqlite_url(&config.data_dir), Backend::Sqlite)
            }
        };
        let options: AnyConnectOptions = url.parse()?;
        let options = options.disable_statement_logging();
        let sqlite = backend == Backend::Sqlite;
        let sync = config.sqlite_synchronous;
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        sqlite_pragmas(conn, sync).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let writer = if sqlite {
            let mut conn = AnyConnection::connect_with(&options).await?;
            sqlite_pragmas(&mut conn, sync).await?;
            for pragma in WRITER_PRAGMAS {
                sqlx::raw_sql(*pragma).execute(&mut conn).await?;
            }
            spawn_checkpoints(pool.clone());
            writer::Writer::sqlite(conn, open_native(&url, sync)?)
        } else {
            writer::Writer::Pool(pool.clone())
        };
        let hub = Hub::new();
        if backend == Backend::Postgres {
            hub.listen_postgres(url.clone());
        }
        Ok(Store {
            pool,
            backend,
            writer,
            hub,
        })
    }

    /// Runs `f` in a write transaction and commits before returning. On SQLite, writes
    /// from concurrent requests share one commit (group commit); the result is returned
    /// only once it is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, ApiError>>
            + Send
            + 'static,
    {
        self.writer.run(f).await
    }

    /// As `write`, for a job written against `Tx`: on SQLite it runs on the writer's own
    /// connection, statement by statement on the writer's thread (the hot path).
    pub async fn write_job<J: WriteJob>(&self, job: J) -> Result<J::Output, ApiError> {
        self.writer.run_job(job).await
    }

    /// After a commit: wake local waiters now; on PostgreSQL the other replicas are woken
    /// by the `NOTIFY` sent inside the transaction.
    pub fn publish(&self, event: Event) {
        self.hub.publish(event);
    }

    /// Inside a write: tells other replicas (PostgreSQL) once the transaction commits.
    pub async fn notify_in_tx(
        backend: Backend,
        conn: &mut AnyConnection,
        event: &Event,
    ) -> Result<(), ApiError> {
        if backend == Backend::Postgres {
            conn.notify(event.encode()).await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    /// Migration 0007 rebuilds `actions` and `audit_events`: a store written before it
    /// keeps every row, byte for byte, and gains the keyed tables and pending-only index.
    #[tokio::test]
    async fn migration_0007_keeps_every_stored_row() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("ascend.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let all = sqlx::migrate!("./migrations/sqlite");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version < 7)
                .cloned()
                .collect(),
        );
        before.run(&pool).await.unwrap();
        let seed = [
            "INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'one', 't0')",
            "INSERT INTO actions (id, org_id, key_id, agent_id, agent_name, action_type, \
             operation, region, parameters, fingerprint, risk_score, risk_level, status, \
             reason, reasons, policy_ids, created_at, expires_at, grant_state, result) VALUES \
             ('act_b', 'org_1', 'key_1', 'a1', 'Agent', 's3.delete_bucket', 's3.delete_bucket', \
             'us-east-1', '{\"Bucket\":\"b\"}', 'f', 80, 'HIGH', 'pending_approval', 'r', '[]', \
             '[]', 't2', 't9', NULL, NULL), \
             ('act_a', 'org_1', 'key_1', 'a1', 'Agent', 's3.list_buckets', 's3.list_buckets', \
             'us-east-1', '{}', 'g', 5, 'LOW', 'approved', 'r', '[]', '[]', 't1', NULL, \
             'available', '{\"ok\":true}')",
            "INSERT INTO audit_events (org_id, seq, action_id, kind, agent_id, decision, ts, \
             body, prev_hash, hash) VALUES ('org_1', 1, 'act_a', 'decision', 'a1', 'approved', \
             't1', '{\"seq\":1}', 'p1', 'h1'), ('org_1', 2, 'act_b', 'local', 'a1', \
             'pending_approval', 't2', '{\"seq\":2}', 'h1', 'h2')",
        ];
        for sql in seed {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        }
        let snapshot = |pool: SqlitePool| async move {
            let actions: Vec<(String,)> = sqlx::query_as(
                "SELECT id || '|' || org_id || '|' || status || '|' || parameters || '|' || \
                 created_at || '|' || ifnull(expires_at, '-') || '|' || \
                 ifnull(grant_state, '-') || '|' || ifnull(result, '-') || '|' || risk_score \
                 FROM actions ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let events: Vec<(String,)> = sqlx::query_as(
                "SELECT org_id || '|' || seq || '|' || action_id || '|' || kind || '|' || \
                 body || '|' || prev_hash || '|' || hash FROM audit_events ORDER BY seq",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            (actions, events)
        };
        let stored = snapshot(pool.clone()).await;
        assert_eq!(stored.0.len(), 2);
        all.run(&pool).await.unwrap();
        assert_eq!(snapshot(pool.clone()).await, stored);
        // Keyed tables: no rowid left to select.
        for table in ["actions", "audit_events"] {
            let rowid = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SELECT rowid FROM {table}")))
                .execute(&pool)
                .await;
            assert!(rowid.is_err(), "{table} still has a rowid");
        }
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT * FROM actions WHERE org_id = 'org_1' \
             AND status = 'pending_approval' ORDER BY created_at DESC, id DESC LIMIT 10",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            plan.iter().any(|p| p.3.contains("actions_org_pending")),
            "{plan:?}"
        );
        // The rebuilt unique index still refuses a second upload of one action.
        let again = sqlx::raw_sql(
            "INSERT INTO audit_events (org_id, seq, action_id, kind, agent_id, decision, ts, \
             body, prev_hash, hash) VALUES ('org_1', 3, 'act_b', 'local', 'a1', 'approved', \
             't3', '{}', 'h2', 'h3')",
        )
        .execute(&pool)
        .await;
        assert!(again.is_err());
    }
}
