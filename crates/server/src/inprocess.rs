//! The application without a listener: the same router and state `serve` builds, for
//! driving requests in-process (the fuzz target `submit_body` sends every input through
//! it with tower's `oneshot`). No expiry task, no metrics recorder.

use axum::Router;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::routes::{AppState, app};
use crate::serve::ServeError;
use crate::store::{Store, bootstrap};

/// Opens and migrates the store, creates the bootstrap organisation when the store is
/// empty, and returns the router with its state. Keep the `watch::Sender` alive: dropping
/// it reads as shutdown to long-polls.
pub async fn in_process_app(
    config: ServerConfig,
) -> Result<(Router, watch::Sender<bool>), ServeError> {
    let store = Store::open(&config.store).await?;
    bootstrap(&store, config.bootstrap_key.clone()).await?;
    let (stop, stopped) = watch::channel(false);
    let state = AppState::new(store, config, None, stopped);
    Ok((app(state), stop))
}
