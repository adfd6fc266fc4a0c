//! `/api/v1/audit`: upload of locally decided calls, export as JSON Lines, verification.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, Filter, Verification};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::routes::AppState;
use crate::upload::{UploadBatch, upload};
use crate::util::parse_ts;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(export))
        .routes(routes!(verify))
}

/// Upload locally decided calls (at most 500); idempotent by `action_id`.
#[utoipa::path(post, path = "/api/v1/audit/events", tag = "audit", request_body = UploadBatch,
    responses((status = 200, description = "`{accepted, duplicates}`", body = crate::routes::spec::Uploaded)))]
async fn events(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(batch): JsonBody<UploadBatch>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Agent])?;
    let (accepted, duplicates) = upload(&state, &who, batch).await?;
    Ok(Json(
        json!({"accepted": accepted, "duplicates": duplicates}),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    agent_id: Option<String>,
    /// approved, denied or pending(_approval)
    decision: Option<String>,
    /// RFC 3339, inclusive
    since: Option<String>,
    /// RFC 3339, inclusive
    until: Option<String>,
}

fn time_filter(name: &str, value: Option<String>) -> Result<String, ApiError> {
    match value.as_deref() {
        None | Some("") => Ok(String::new()),
        Some(t) => {
            parse_ts(t).ok_or_else(|| ApiError::invalid(format!("{name} must be an RFC 3339 time")))
        }
    }
}

fn filter(q: ExportQuery) -> Result<Filter, ApiError> {
    let decision = match q.decision.as_deref() {
        None | Some("") => String::new(),
        Some("pending") => "pending_approval".into(),
        Some(d @ ("approved" | "denied" | "pending_approval")) => d.into(),
        Some(other) => return Err(ApiError::invalid(format!("unknown decision `{other}`"))),
    };
    Ok(Filter {
        agent_id: q.agent_id.unwrap_or_default(),
        decision,
        since: time_filter("since", q.since)?,
        until: time_filter("until", q.until)?,
        ..Filter::default()
    })
}

/// The audit log as JSON Lines (`application/x-ndjson`), oldest first, streamed.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(ExportQuery),
    responses((status = 200, description = "one event per line", content_type = "application/x-ndjson")))]
async fn export(
    State(state): State<AppState>,
    who: Principal,
    Params(q): Params<ExportQuery>,
) -> ApiResult<Response> {
    who.require(&[Role::Admin, Role::Approver])?;
    let filter = filter(q)?;
    let mut response =
        audit::json_lines(state.store.clone(), who.org_id.clone(), filter).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Walks the hash chain and names the first broken link.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "the verification", body = Verification)))]
async fn verify(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Verification>> {
    who.require(&[Role::Admin, Role::Approver])?;
    let checkup = state
        .chain_checks
        .verify(&state.store, &who.org_id, true)
        .await?;
    Ok(Json(checkup.verification))
}
