//! `/api/v1/keys` (admin): create (the key is shown only then), list, revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role, generate_key};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::routes::AppState;
use crate::store::insert_key;
use crate::util::now;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct CreateKey {
    role: Role,
    name: Option<String>,
}

/// Create a key: `{"role": "agent"|"approver"|"admin", "name"}` → 201 with the key.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, description = "`{id, key, role, name, created_at}`", body = crate::routes::spec::CreatedKey)))]
async fn create(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin])?;
    let name = body.name.unwrap_or_default().trim().to_string();
    if name.len() > 100 {
        return Err(ApiError::invalid("a key name holds at most 100 characters"));
    }
    let name = if name.is_empty() {
        format!("{} key", body.role.as_str())
    } else {
        name
    };
    let key = generate_key(body.role);
    let (org, role, k, n) = (who.org_id.clone(), body.role, key.clone(), name.clone());
    let (id, created_at) = state
        .store
        .write(move |conn| Box::pin(async move { insert_key(conn, &org, role, &n, &k).await }))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": id, "key": key, "role": body.role, "name": name, "created_at": created_at}),
        ),
    ))
}

/// The organisation's keys (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, description = "`{keys}`", body = crate::routes::spec::KeyList)))]
async fn list(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    let rows: Vec<(String, String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, role, name, prefix, created_at, revoked_at FROM api_keys WHERE org_id = $1 ORDER BY created_at, id")
        .bind(&who.org_id).fetch_all(&state.store.pool).await?;
    let keys: Vec<Value> = rows
        .into_iter()
        .map(|(id, role, name, prefix, created_at, revoked_at)| {
            json!({
                "id": id, "role": role, "name": name, "prefix": prefix, "created_at": created_at,
                "revoked_at": revoked_at, "revoked": revoked_at.is_some(),
            })
        })
        .collect();
    Ok(Json(json!({"keys": keys})))
}

/// Revoke a key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", responses((status = 200, description = "`{id, revoked}`", body = crate::routes::spec::Revoked), (status = 404, description = "no such key"), (status = 409, description = "the key revokes itself", body = crate::routes::spec::ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    // Revoking the key that asks would lock its holder out mid-request (and, for the
    // only admin key, the whole organisation): revoke it with another admin key.
    if id == who.key_id {
        return Err(ApiError::conflict(
            "a key cannot revoke itself; revoke it with another admin key",
        ));
    }
    let (org, key_id) = (who.org_id.clone(), id.clone());
    let found = state.store.write(move |conn| Box::pin(async move {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND org_id = $3")
            .bind(now()).bind(&key_id).bind(&org).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    })).await?;
    state.keys.forget();
    if !found {
        return Err(ApiError::not_found("key"));
    }
    Ok(Json(json!({"id": id, "revoked": true})))
}
