//! `/api/v1/webhooks` (admin): register (the secret is shown only then), list, delete, and
//! read a webhook's delivery log. Another organisation's webhook ids are 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    AttemptRow, CreateWebhook, DeliveryRow, MAX_WEBHOOKS_PER_ORG, WebhookRow, events_json,
    generate_secret,
};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::routes::AppState;
use crate::store::Store;
use crate::util::{new_id, now};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(delete))
        .routes(routes!(deliveries))
}

/// Register a webhook → 201 `{id, url, events, description, secret, created_at}`. The
/// secret (for `X-Ascend-Signature`) is shown only in this response.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "`{id, url, events, description, secret, created_at}`"),
              (status = 422, description = "bad URL, unknown event, unknown field")))]
async fn create(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin])?;
    let new = body.validate(state.config.webhooks.egress())?;
    let row = WebhookRow {
        id: new_id("whk"),
        org_id: who.org_id.clone(),
        url: new.url,
        events: events_json(&new.events),
        description: new.description,
        secret: generate_secret(),
        created_at: now(),
    };
    let stored = row.clone();
    state
        .store
        .write(move |conn| {
            Box::pin(async move {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL",
                )
                .bind(&stored.org_id)
                .fetch_one(&mut *conn)
                .await?;
                if count >= MAX_WEBHOOKS_PER_ORG {
                    return Err(ApiError::invalid(format!(
                        "an organisation holds at most {MAX_WEBHOOKS_PER_ORG} webhooks; delete one first"
                    )));
                }
                sqlx::query(
                    "INSERT INTO webhooks (id, org_id, url, events, description, secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&stored.id)
                .bind(&stored.org_id)
                .bind(&stored.url)
                .bind(&stored.events)
                .bind(&stored.description)
                .bind(&stored.secret)
                .bind(&stored.created_at)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await?;
    let mut view = row.view();
    view["secret"] = json!(row.secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// The organisation's webhooks (never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "`{webhooks, total}`")))]
async fn list(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    let rows: Vec<WebhookRow> = sqlx::query_as(
        "SELECT id, org_id, url, events, description, secret, created_at FROM webhooks \
         WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
    )
    .bind(&who.org_id)
    .fetch_all(&state.store.pool)
    .await?;
    let hooks: Vec<Value> = rows.iter().map(WebhookRow::view).collect();
    Ok(Json(json!({"total": hooks.len(), "webhooks": hooks})))
}

async fn find(store: &Store, org: &str, id: &str) -> Result<WebhookRow, ApiError> {
    let row: Option<WebhookRow> = sqlx::query_as(
        "SELECT id, org_id, url, events, description, secret, created_at FROM webhooks \
         WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(org)
    .fetch_optional(&store.pool)
    .await?;
    row.ok_or_else(|| ApiError::not_found("webhook"))
}

/// Delete a webhook: nothing more is sent to it; its pending deliveries are cancelled.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    responses((status = 200, description = "`{id, deleted: true, cancelled_deliveries}`"),
              (status = 404, description = "no such webhook in this organisation")))]
async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    let (org, hook) = (who.org_id.clone(), id.clone());
    let cancelled = state
        .store
        .write(move |conn| {
            Box::pin(async move {
                let ts = now();
                // The secret goes with the webhook: nothing can be signed with it again.
                let done = sqlx::query(
                    "UPDATE webhooks SET deleted_at = $1, secret = '' \
                     WHERE id = $2 AND org_id = $3 AND deleted_at IS NULL",
                )
                .bind(&ts)
                .bind(&hook)
                .bind(&org)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(ApiError::not_found("webhook"));
                }
                let cancelled = sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'cancelled', next_attempt_at = NULL, \
                     lease_until = NULL WHERE webhook_id = $1 AND state = 'pending'",
                )
                .bind(&hook)
                .execute(&mut *conn)
                .await?;
                Ok(cancelled.rows_affected())
            })
        })
        .await?;
    Ok(Json(
        json!({"id": id, "deleted": true, "cancelled_deliveries": cancelled}),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// 1–100, default 50: the most recent deliveries first.
    limit: Option<i64>,
}

/// The delivery log: each delivery (event, state, attempts, next attempt) with every
/// attempt (status code or error, duration), most recent first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(LogQuery),
    responses((status = 200, description = "`{webhook_id, deliveries, total}`"),
              (status = 404, description = "no such webhook in this organisation")))]
async fn deliveries(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Params(query): Params<LogQuery>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100"));
    }
    let hook = find(&state.store, &who.org_id, &id).await?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT id, event, payload, state, attempts, created_at, next_attempt_at, delivered_at \
         FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(&hook.id)
    .bind(limit)
    .fetch_all(&state.store.pool)
    .await?;
    let log: Vec<AttemptRow> = sqlx::query_as(
        "SELECT a.delivery_id, a.attempt, a.started_at, a.status_code, a.error, a.duration_ms \
         FROM webhook_attempts a \
         WHERE a.delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2) ORDER BY a.delivery_id, a.attempt",
    )
    .bind(&hook.id)
    .bind(limit)
    .fetch_all(&state.store.pool)
    .await?;
    let views: Vec<Value> = rows
        .iter()
        .map(|d| {
            let mine: Vec<&AttemptRow> = log.iter().filter(|a| a.delivery_id == d.id).collect();
            d.view(&mine)
        })
        .collect();
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(&hook.id)
            .fetch_one(&state.store.pool)
            .await?;
    Ok(Json(
        json!({"webhook_id": hook.id, "total": total, "deliveries": views}),
    ))
}
