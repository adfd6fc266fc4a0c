//! `/api/v1/policies`: the organisation's Cedar text; PUT validates (422 with line and
//! column); `POST /test` decides a sample call without storing anything.

use ascend_core::{Call, OperationName, PolicyEngine, Settings, decide};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, body_bytes};
use crate::routes::AppState;
use crate::store::{Event, Store};
use crate::util::now;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policies, put_policies))
        .routes(routes!(test_policies))
}

/// The Cedar text: JSON `{policies, version, policy_ids, updated_at}`, or the bare text
/// when the request accepts `text/plain` only.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    responses((status = 200, description = "the policies")))]
async fn get_policies(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(&[Role::Admin, Role::Approver])?;
    let (text, version, updated): (String, i64, Option<String>) = sqlx::query_as(
        "SELECT policies, policies_version, policies_updated_at FROM orgs WHERE id = $1",
    )
    .bind(&who.org_id)
    .fetch_one(&state.store.pool)
    .await?;
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.starts_with("text/plain") {
        return Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let ids: Vec<String> = state
        .policies
        .context(&state.store, &who.org_id)
        .await?
        .engine
        .policies()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    Ok(Json(
        json!({"policies": text, "version": version, "policy_ids": ids, "updated_at": updated}),
    )
    .into_response())
}

fn policy_text(content_type: &str, bytes: &[u8]) -> Result<String, ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::invalid("policies must be UTF-8 text"))?;
    if content_type.starts_with("application/json") {
        #[derive(Deserialize)]
        struct Wrapped {
            policies: String,
        }
        return serde_json::from_str::<Wrapped>(text)
            .map(|w| w.policies)
            .map_err(|e| {
                ApiError::invalid(format!("expected {{\"policies\": \"<cedar>\"}}: {e}"))
            });
    }
    Ok(text.to_string())
}

/// Cedar text as an engine; 422 `POLICY_INVALID` with every error's line and column
/// (in `errors`). Empty text is the empty set.
pub fn compile(text: &str) -> Result<PolicyEngine, ApiError> {
    if text.trim().is_empty() {
        return Ok(PolicyEngine::empty());
    }
    PolicyEngine::compile(text).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "POLICY_INVALID",
            e.to_string(),
        )
        .with_extra(json!({"errors": e.diagnostics}))
    })
}

/// Validates and stores the organisation's policies (the API's PUT and the dashboard's
/// save); returns the new version and the policy ids.
pub async fn save(
    state: &AppState,
    who: &Principal,
    text: String,
) -> Result<(i64, Vec<String>), ApiError> {
    who.require(&[Role::Admin])?;
    let engine = compile(&text)?;
    let ids: Vec<String> = engine.policies().iter().map(|p| p.id.clone()).collect();
    let (org, backend) = (who.org_id.clone(), state.store.backend);
    let version = state
        .store
        .write(move |conn| {
            Box::pin(async move {
                let (version,): (i64,) = sqlx::query_as(
                    "UPDATE orgs SET policies = $1, policies_version = policies_version + 1, \
             policies_updated_at = $2 WHERE id = $3 RETURNING policies_version",
                )
                .bind(&text)
                .bind(now())
                .bind(&org)
                .fetch_one(&mut *conn)
                .await?;
                Store::notify_in_tx(backend, conn, &Event::Bundle { org }).await?;
                Ok(version)
            })
        })
        .await?;
    state.policies.forget();
    state.store.publish(Event::Bundle {
        org: who.org_id.clone(),
    });
    Ok((version, ids))
}

/// Replace the policies with Cedar text (`text/plain`); 422 lists every error.
#[utoipa::path(put, path = "/api/v1/policies", tag = "policies",
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, description = "stored"), (status = 422, description = "validation errors with line and column")))]
async fn put_policies(
    State(state): State<AppState>,
    who: Principal,
    req: Request,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = policy_text(&content_type, &body_bytes(req, &()).await?)?;
    let (version, ids) = save(&state, &who, text).await?;
    Ok(Json(
        json!({"ok": true, "version": version, "policy_ids": ids}),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TestBody {
    /// Any spelling: `s3.delete_bucket`, `s3:DeleteBucket`.
    pub action_type: String,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    pub agent_id: Option<String>,
    pub region: Option<String>,
    /// Cedar text to test instead of the stored policies.
    pub policies: Option<String>,
}

/// Decide a sample call against the stored (or given) policies; nothing is stored.
#[utoipa::path(post, path = "/api/v1/policies/test", tag = "policies", request_body = TestBody,
    responses((status = 200, description = "the decision")))]
async fn test_policies(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody<TestBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(test_call(&state, &who, body).await?))
}

/// Decides a sample call without storing anything (the API and the dashboard's "test a
/// call").
pub async fn test_call(state: &AppState, who: &Principal, body: TestBody) -> ApiResult<Value> {
    who.require(&[Role::Admin, Role::Approver])?;
    let name =
        OperationName::parse(&body.action_type).map_err(|e| ApiError::invalid(e.to_string()))?;
    let params = body.parameters.unwrap_or(json!({}));
    if !params.is_object() {
        return Err(ApiError::invalid("`parameters` must be an object"));
    }
    let org = state.policies.context(&state.store, &who.org_id).await?;
    let engine = match body.policies {
        Some(text) => std::sync::Arc::new(compile(&text)?),
        None => org.engine,
    };
    let settings = Settings {
        auto_approve_low_risk: org.auto_approve_low,
        auto_approve_medium_risk: org.auto_approve_medium,
        ..Settings::default()
    };
    let agent = body.agent_id.unwrap_or_else(|| "test-agent".into());
    let region = body.region.unwrap_or_default();
    let call = Call {
        agent_id: &agent,
        name: &name,
        params: &params,
        region: &region,
    };
    let d = decide(&call, &settings, &engine, None);
    Ok(
        json!({"operation": name.to_string(), "verdict": d.verdict, "risk_score": d.risk_score,
        "risk_level": d.risk_level.as_str(), "reason": d.reason, "reasons": d.reasons, "policy_ids": d.policy_ids}),
    )
}
