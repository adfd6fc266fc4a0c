//! `/api/v1/actions`: submit, list, get, status (long-poll), approve, reject, result.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actions::{self, ActionRecord, PENDING, Review, SubmitRequest};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, wait_secs};
use crate::routes::AppState;
use crate::store::Event;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(status))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(result))
}

/// Submit a call for a decision. A decision is never an HTTP error: denials are 200.
#[utoipa::path(post, path = "/api/v1/actions/submit", tag = "actions",
    request_body = SubmitRequest, responses((status = 200, description = "the decision", body = crate::routes::spec::Decision)))]
async fn submit(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(req): JsonBody<SubmitRequest>,
) -> ApiResult<Response> {
    who.require(&[Role::Admin, Role::Agent])?;
    let record = actions::submit(&state, &who, req).await?;
    Ok(decision_response(&record))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    agent_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// List actions, newest first. An agent key sees only what it submitted.
#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", params(ListQuery),
    responses((status = 200, description = "`{actions, total, limit, offset}`")))]
async fn list(
    State(state): State<AppState>,
    who: Principal,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    if !(1..=100).contains(&limit) || offset < 0 {
        return Err(ApiError::invalid(
            "limit must be 1 to 100 and offset at least 0",
        ));
    }
    let status = match q.status.as_deref() {
        None | Some("") => "",
        Some("pending" | "pending_approval") => PENDING,
        Some(s @ ("approved" | "denied")) => s,
        Some(other) => return Err(ApiError::invalid(format!("unknown status `{other}`"))),
    };
    let agent = q.agent_id.unwrap_or_default();
    let key = if who.role == Role::Agent {
        who.key_id.clone()
    } else {
        String::new()
    };
    const FILTER: &str = "WHERE org_id = $1 AND ($2 = '' OR status = $2) \
        AND ($3 = '' OR agent_id = $3) AND ($4 = '' OR key_id = $4)";
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM actions {FILTER}"
    )))
    .bind(&who.org_id)
    .bind(status)
    .bind(&agent)
    .bind(&key)
    .fetch_one(&state.store.pool)
    .await?;
    let rows: Vec<ActionRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM actions {FILTER} ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
    )))
    .bind(&who.org_id)
    .bind(status)
    .bind(&agent)
    .bind(&key)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.store.pool)
    .await?;
    let actions: Vec<Value> = rows.iter().map(ActionRecord::full_view).collect();
    Ok(Json(
        json!({"actions": actions, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// The full record of one action.
#[utoipa::path(get, path = "/api/v1/actions/{id}", tag = "actions",
    responses((status = 200, description = "the action"), (status = 404, description = "no such action")))]
async fn get_one(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = actions::load_visible(&state.store, &who, &id).await?;
    let mut view = record.full_view();
    // ascend-ai-sdk 2.x reads this record's status into an enum that knows `pending`
    // but not `pending_approval` (docs/compat.md); submit and /status keep the latter.
    if record.status == PENDING {
        view["status"] = "pending".into();
    }
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Seconds (at most 60) to wait for a decision.
    wait: Option<f64>,
}

/// The decision; with `?wait=N` answers when it is recorded (or after N seconds).
#[utoipa::path(get, path = "/api/v1/actions/{id}/status", tag = "actions", params(WaitQuery),
    responses((status = 200, description = "the decision", body = crate::routes::spec::Decision)))]
async fn status(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Params(q): Params<WaitQuery>,
) -> ApiResult<Response> {
    let wait = wait_secs(q.wait)?;
    let mut events = state.store.hub.subscribe();
    let mut record = actions::load_visible(&state.store, &who, &id).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    let mut shutdown = state.shutdown.clone();
    while record.status == PENDING && tokio::time::Instant::now() < deadline {
        let wake = tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Action { org, id: ev_id }) => org == who.org_id && ev_id == id,
                Ok(_) => false,
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            },
            _ = tokio::time::sleep_until(deadline) => true,
            _ = shutdown.changed() => break,
        };
        if wake {
            record = actions::load_visible(&state.store, &who, &id).await?;
        }
    }
    Ok(decision_response(&record))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct ApproveBody {
    comment: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct RejectBody {
    reason: Option<String>,
    comment: Option<String>,
}

/// Approve a pending action (approver or admin). 409 once decided.
#[utoipa::path(post, path = "/api/v1/actions/{id}/approve", tag = "actions",
    request_body = ApproveBody, responses((status = 200, description = "the decided action"), (status = 409, description = "already decided")))]
async fn approve(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ApproveBody>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Approver])?;
    let review = Review {
        approve: true,
        text: body.comment,
    };
    let record = actions::review(&state.store, &who, &id, review).await?;
    Ok(Json(record.full_view()))
}

/// Reject a pending action (approver or admin); it then reads `denied`.
#[utoipa::path(post, path = "/api/v1/actions/{id}/reject", tag = "actions",
    request_body = RejectBody, responses((status = 200, description = "the decided action"), (status = 409, description = "already decided")))]
async fn reject(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RejectBody>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Approver])?;
    let review = Review {
        approve: false,
        text: body.reason.or(body.comment),
    };
    let record = actions::review(&state.store, &who, &id, review).await?;
    Ok(Json(record.full_view()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ResultBody {
    status: String,
    error_code: Option<String>,
    latency_ms: Option<f64>,
}

/// The agent reports how the call went.
#[utoipa::path(post, path = "/api/v1/actions/{id}/result", tag = "actions",
    request_body = ResultBody, responses((status = 200, description = "`{ok: true}`", body = crate::routes::spec::Recorded)))]
async fn result(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ResultBody>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Agent])?;
    if !matches!(
        body.status.as_str(),
        "succeeded" | "failed" | "not_executed"
    ) {
        return Err(ApiError::invalid(
            "status must be succeeded, failed or not_executed",
        ));
    }
    if body.latency_ms.is_some_and(|l| !l.is_finite() || l < 0.0) {
        return Err(ApiError::invalid(
            "latency_ms must be a non-negative number",
        ));
    }
    actions::load_visible(&state.store, &who, &id).await?;
    let outcome = json!({"status": body.status, "error_code": body.error_code,
        "latency_ms": body.latency_ms, "reported_at": crate::util::now()});
    let org = who.org_id.clone();
    state
        .store
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("UPDATE actions SET result = $1 WHERE id = $2 AND org_id = $3")
                    .bind(outcome.to_string())
                    .bind(&id)
                    .bind(&org)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await?;
    Ok(Json(json!({"ok": true})))
}

/// The decision as JSON (the submit's and the status's answer), written by hand.
fn decision_response(record: &ActionRecord) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        record.decision_json(),
    )
        .into_response()
}
