//! Running the platform: open the store, bootstrap, listen, expire, shut down gracefully.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::actions::expire_due;
use crate::config::ServerConfig;
use crate::routes::{AppState, app};
use crate::store::{BootstrapKey, Store, StoreConfig, StoreError, bootstrap, create_org};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    #[error("cannot write {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// `ascend orgs create NAME`: works while a server runs on the same store.
pub async fn create_organisation(config: &StoreConfig, name: &str) -> Result<String, StoreError> {
    let store = Store::open(config).await?;
    let key = create_org(&store, name).await;
    store.pool.close().await;
    key
}

fn write_key_file(dir: &Path, key: &str) -> Result<String, ServeError> {
    let path = dir.join("admin.key");
    let shown = path.display().to_string();
    let fail = |e| ServeError::KeyFile(shown.clone(), e);
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(fail)?;
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(fail)?;
    std::io::Write::write_all(&mut file, format!("{key}\n").as_bytes()).map_err(fail)?;
    Ok(shown)
}

fn announce(config: &ServerConfig, key: Option<BootstrapKey>) -> Result<(), ServeError> {
    match key {
        Some(BootstrapKey {
            key,
            generated: true,
        }) => {
            let path = write_key_file(&config.store.data_dir, &key)?;
            println!(
                "ascend: created organisation `default`; its admin API key (shown once, also in {path}):"
            );
            println!("{key}");
        }
        Some(BootstrapKey {
            generated: false, ..
        }) => {
            println!(
                "ascend: created organisation `default` with the admin key from ASCEND_BOOTSTRAP_KEY"
            );
        }
        None => {}
    }
    Ok(())
}

/// How often histogram samples are folded into their summaries (the exporter's default).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, or `None` where one is already installed (several
/// servers in one test process share the first).
fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok()?;
    // `install_recorder` leaves upkeep to its caller: without it the recorder keeps every
    // histogram sample until `/metrics` is next scraped, about 20 bytes per request for as
    // long as nobody scrapes. A thread of its own, so folding a few seconds of samples never
    // holds up a request worker.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("ascend-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
    }
    Some(handle)
}

/// How long until the next pending action expires (at most a minute: other replicas may
/// have created pending actions this one was not told about).
async fn until_next_expiry(store: &Store) -> Duration {
    const CAP: Duration = Duration::from_secs(60);
    let next: Result<(Option<String>,), _> =
        sqlx::query_as("SELECT MIN(expires_at) FROM actions WHERE status = 'pending_approval'")
            .fetch_one(&store.pool)
            .await;
    let Ok((Some(next),)) = next else { return CAP };
    let Ok(at) = time::OffsetDateTime::parse(&next, &time::format_description::well_known::Rfc3339)
    else {
        return CAP;
    };
    let left = at - time::OffsetDateTime::now_utc();
    Duration::try_from(left).unwrap_or(Duration::ZERO).min(CAP)
}

/// Denies pending actions when their time is up: sleeps until the next expiry, and is
/// woken when a new pending action may have moved it closer.
fn spawn_expiry(store: Store, new_pending: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            let wait = until_next_expiry(&store).await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = new_pending.notified() => continue,
            }
            match expire_due(&store).await {
                Ok(0) => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "expiring pending actions failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// Serves until `shutdown` resolves, then finishes in-flight requests (long-polls answer
/// at once with what they have).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = Store::open(&config.store).await?;
    let key = bootstrap(&store, config.bootstrap_key.clone()).await?;
    announce(&config, key)?;
    let (stop, stopped) = watch::channel(false);
    let state = AppState::new(store.clone(), config.clone(), install_metrics(), stopped);
    spawn_expiry(store.clone(), state.new_pending.clone());
    crate::webhooks::spawn_dispatcher(store.clone(), config.webhooks);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Listen(config.listen, e))?;
    let backend = match store.backend {
        crate::store::Backend::Sqlite => format!(
            "sqlite, synchronous = {}",
            config.store.sqlite_synchronous.name()
        ),
        crate::store::Backend::Postgres => "postgres".to_string(),
    };
    println!(
        "ascend: listening on http://{} ({backend})",
        listener.local_addr()?
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await?;
    store.pool.close().await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
