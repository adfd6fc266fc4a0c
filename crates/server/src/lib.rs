//! # ascend-server — the Ascend platform
//!
//! Owns the HTTP API (Actions API v1 and the rest of DESIGN.md §6), storage on SQLite or
//! PostgreSQL (sqlx, migrations in `migrations/`), approvals and their grants, the audit
//! hash chain, the agent registry and kill switch, API keys and organisations, webhooks,
//! and the approvers' dashboard (server-rendered pages at `/`).
//!
//! Must not touch: how a call is decided (that is `ascend_core::decide`, re-run here on
//! every submit), anything client-side (`ascend-client`), argument parsing (`crates/cli`).
#![deny(missing_debug_implementations)]

mod actions;
mod audit;
mod auth;
mod config;
mod dashboard;
mod error;
mod extract;
mod inprocess;
mod json;
mod limits;
mod org;
mod routes;
mod serve;
mod store;
mod upload;
mod util;
mod webhooks;

pub use config::{BODY_LIMIT, ServerConfig};
pub use error::ApiError;
pub use inprocess::in_process_app;
pub use routes::{AppState, app};
pub use serve::{ServeError, create_organisation, serve, shutdown_signal};
pub use store::{Backend, BootstrapKey, SqliteSync, Store, StoreConfig, StoreError};
pub use webhooks::WebhookSettings;
