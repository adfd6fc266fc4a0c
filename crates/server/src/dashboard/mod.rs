//! The approvers' dashboard: server-rendered pages (askama templates in `templates/`) at
//! `/`, signed in with an admin or approver key. It owns sessions and CSRF, the pages,
//! the live queue (SSE) and its two static assets; every decision it offers goes through
//! the same functions as the JSON API (`actions::review`, `routes::agents::set_block`,
//! `routes::policies::{save, test_call}`, `audit`). Not part of the OpenAPI spec.

mod agents;
mod approvals;
mod assets;
mod audit;
mod chart;
mod login;
mod overview;
mod page;
mod policies;
mod session;
mod sse;

use axum::Router;
use axum::routing::{get, post};

use crate::routes::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/approvals", get(approvals::page))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/reject", post(approvals::reject))
        .route("/audit", get(audit::page))
        .route("/audit/export", get(audit::export))
        .route("/agents", get(agents::page))
        .route("/agents/{id}/block", post(agents::block))
        .route("/agents/{id}/unblock", post(agents::unblock))
        .route("/policies", get(policies::page).post(policies::save_form))
        .route("/policies/test", post(policies::test_form))
        .route("/dashboard/events", get(sse::events))
        .route("/assets/{name}", get(assets::asset))
}
