//! Routes the ASCEND SDK 2.x calls besides Actions API v1 (docs/compat.md §1.5).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{self, APPROVED, DENIED};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::routes::AppState;
use crate::routes::agents::find;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/api/deployment-info",
            get(|| async {
                Json(json!({"version": env!("CARGO_PKG_VERSION"), "environment": "self-hosted"}))
            }),
        )
        .route("/api/sdk/approval/{id}", get(approval))
        .route("/api/sdk/kill-switch/status", get(kill_switch))
}

async fn approval(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = actions::load_visible(&state.store, &who, &id).await?;
    let status = match r.status.as_str() {
        APPROVED => "approved",
        DENIED if r.decided_via == "rejection" => "rejected",
        DENIED => "denied",
        _ => "pending",
    };
    let rejected = r.decided_via == "rejection";
    Ok(Json(json!({
        "status": status,
        "approved_by": (r.decided_via == "approval").then_some(&r.decided_by),
        "rejected_by": rejected.then_some(&r.decided_by),
        "decided_at": r.decided_at,
        "rejection_reason": rejected.then_some(&r.comment),
    })))
}

#[derive(Debug, Deserialize)]
struct KillQuery {
    agent_id: Option<String>,
}

async fn kill_switch(
    State(state): State<AppState>,
    who: Principal,
    Params(q): Params<KillQuery>,
) -> ApiResult<Json<Value>> {
    let Some(agent) = q.agent_id else {
        return Ok(Json(
            json!({"blocked": false, "reason": null, "activated_at": null, "activated_by": null}),
        ));
    };
    let row = find(&state.store, &who.org_id, &agent).await?;
    let view = row
        .map(|r| r.kill_switch())
        .ok_or_else(|| ApiError::not_found("agent"));
    Ok(Json(view.unwrap_or_else(
        |_| json!({"blocked": false, "reason": null, "activated_at": null, "activated_by": null}),
    )))
}
