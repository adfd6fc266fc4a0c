//! `GET /api/v1/bundle`: what a client needs to decide locally — policies, settings and
//! the agent's block state — with an ETag; `?wait=N` returns early on any change.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, wait_secs};
use crate::routes::AppState;
use crate::store::Event;
use crate::util::sha256_hex;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(bundle))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct BundleQuery {
    agent_id: Option<String>,
    /// Seconds (at most 60) to wait for a change when the ETag is current.
    wait: Option<f64>,
}

struct Bundle {
    etag: String,
    body: Value,
}

async fn load(state: &AppState, org: &str, agent: Option<&str>) -> Result<Bundle, ApiError> {
    let (text, version, low, medium): (String, i64, i64, i64) = sqlx::query_as(
        "SELECT policies, policies_version, auto_approve_low, auto_approve_medium FROM orgs WHERE id = $1",
    )
    .bind(org)
    .fetch_one(&state.store.pool)
    .await?;
    let (blocked, reason) = match agent {
        Some(a) => {
            let row: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT blocked, blocked_reason FROM agents WHERE org_id = $1 AND agent_id = $2",
            )
            .bind(org)
            .bind(a)
            .fetch_optional(&state.store.pool)
            .await?;
            row.map_or((false, None), |(b, r)| (b != 0, r.filter(|_| b != 0)))
        }
        None => (false, None),
    };
    let state_line = format!(
        "{org}|{version}|{low}|{medium}|{agent:?}|{blocked}|{reason:?}|{}",
        sha256_hex(text.as_bytes())
    );
    let etag = format!("\"b-{}\"", &sha256_hex(state_line.as_bytes())[..24]);
    let body = json!({
        "etag": etag, "policies": text, "version": version,
        "agent": {"agent_id": agent, "blocked": blocked, "blocked_reason": reason},
        "settings": {"auto_approve_low_risk": low != 0, "auto_approve_medium_risk": medium != 0},
    });
    Ok(Bundle { etag, body })
}

fn ok(bundle: Bundle) -> Response {
    let mut response = Json(bundle.body).into_response();
    if let Ok(v) = HeaderValue::from_str(&bundle.etag) {
        response.headers_mut().insert(ETAG, v);
    }
    response
}

/// The policy bundle; 304 after `wait` seconds without a change.
#[utoipa::path(get, path = "/api/v1/bundle", tag = "bundle", params(BundleQuery),
    responses((status = 200, description = "the bundle"), (status = 304, description = "unchanged")))]
async fn bundle(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Params(q): Params<BundleQuery>,
) -> ApiResult<Response> {
    let wait = wait_secs(q.wait)?;
    let known = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let agent = q.agent_id.as_deref().filter(|a| !a.is_empty());
    let mut events = state.store.hub.subscribe();
    let mut current = load(&state, &who.org_id, agent).await?;
    if known.as_deref() != Some(current.etag.as_str()) {
        return Ok(ok(current));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    let mut shutdown = state.shutdown.clone();
    while tokio::time::Instant::now() < deadline {
        let changed = tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Bundle { org }) => org == who.org_id,
                Ok(_) => false,
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            },
            _ = tokio::time::sleep_until(deadline) => false,
            _ = shutdown.changed() => break,
        };
        if changed {
            current = load(&state, &who.org_id, agent).await?;
            if known.as_deref() != Some(current.etag.as_str()) {
                return Ok(ok(current));
            }
        }
    }
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(&current.etag) {
        response.headers_mut().insert(ETAG, v);
    }
    Ok(response)
}
