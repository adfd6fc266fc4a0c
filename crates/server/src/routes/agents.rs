//! `/api/v1/agents`: the registry (first contact, last seen, counts by decision) and the
//! kill switch.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::routes::AppState;
use crate::store::{Event, Store};
use crate::util::now;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(block))
        .routes(routes!(unblock))
}

#[derive(Debug, sqlx::FromRow)]
pub struct AgentRow {
    pub agent_id: String,
    pub name: String,
    pub first_seen: String,
    pub last_seen: String,
    pub blocked: i64,
    pub blocked_reason: Option<String>,
    pub blocked_at: Option<String>,
    pub blocked_by: Option<String>,
    pub approved_count: i64,
    pub denied_count: i64,
    pub pending_count: i64,
}

impl AgentRow {
    fn view(&self) -> Value {
        json!({
            "agent_id": self.agent_id, "name": self.name,
            "first_seen": self.first_seen, "last_seen": self.last_seen,
            "blocked": self.blocked != 0, "blocked_reason": self.blocked_reason,
            "blocked_at": self.blocked_at, "blocked_by": self.blocked_by,
            "counts": {"approved": self.approved_count, "denied": self.denied_count,
                       "pending_approval": self.pending_count},
        })
    }
}

const COLUMNS: &str = "agent_id, name, first_seen, last_seen, blocked, blocked_reason, \
    blocked_at, blocked_by, approved_count, denied_count, pending_count";

pub async fn find(store: &Store, org: &str, agent: &str) -> Result<Option<AgentRow>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM agents WHERE org_id = $1 AND agent_id = $2"
    )))
    .bind(org)
    .bind(agent)
    .fetch_optional(&store.pool)
    .await?)
}

/// Every agent of the organisation, most recently seen first (also the dashboard's list).
pub async fn list_rows(store: &Store, org: &str) -> Result<Vec<AgentRow>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM agents WHERE org_id = $1 ORDER BY last_seen DESC, agent_id"
    )))
    .bind(org)
    .fetch_all(&store.pool)
    .await?)
}

/// Every agent of the organisation, most recently seen first.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", responses((status = 200, description = "`{agents}`")))]
async fn list(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Approver])?;
    let rows = list_rows(&state.store, &who.org_id).await?;
    let agents: Vec<Value> = rows.iter().map(AgentRow::view).collect();
    Ok(Json(json!({"agents": agents, "total": agents.len()})))
}

/// One agent.
#[utoipa::path(get, path = "/api/v1/agents/{agent_id}", tag = "agents", responses((status = 200, description = "the agent"), (status = 404, description = "unknown agent")))]
async fn get_one(
    State(state): State<AppState>,
    who: Principal,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Approver])?;
    let row = find(&state.store, &who.org_id, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Json(row.view()))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct BlockBody {
    reason: Option<String>,
}

/// Sets (`Some(reason)`) or lifts (`None`) the kill switch; the API and the dashboard
/// both come through here.
pub async fn set_block(
    state: &AppState,
    who: &Principal,
    agent_id: String,
    block: Option<String>,
) -> ApiResult<()> {
    if agent_id.len() > 200 {
        return Err(ApiError::invalid("agent_id holds at most 200 characters"));
    }
    let (org, actor, backend) = (who.org_id.clone(), who.actor(), state.store.backend);
    state.store.write(move |conn| Box::pin(async move {
        let ts = now();
        let blocked = i64::from(block.is_some());
        let by = block.is_some().then_some(actor);
        let at = block.is_some().then_some(ts.clone());
        sqlx::query(
            "INSERT INTO agents (org_id, agent_id, name, first_seen, last_seen, blocked, blocked_reason, blocked_at, blocked_by) \
             VALUES ($1, $2, $2, $3, $3, $4, $5, $6, $7) ON CONFLICT (org_id, agent_id) DO UPDATE SET \
             blocked = excluded.blocked, blocked_reason = excluded.blocked_reason, \
             blocked_at = excluded.blocked_at, blocked_by = excluded.blocked_by")
            .bind(&org).bind(&agent_id).bind(&ts).bind(blocked).bind(&block).bind(&at).bind(&by)
            .execute(&mut *conn).await?;
        if let (Some(reason), Some(by)) = (&block, &by) {
            crate::webhooks::on_agent_blocked(conn, &org, &agent_id, reason, by).await?;
        }
        Store::notify_in_tx(backend, conn, &Event::Bundle { org }).await
    })).await?;
    state.policies.forget();
    crate::webhooks::wake();
    state.store.publish(Event::Bundle {
        org: who.org_id.clone(),
    });
    Ok(())
}

/// Kill switch: every submit of the agent is denied and its bundle says blocked. An agent
/// not seen yet is registered blocked.
#[utoipa::path(post, path = "/api/v1/agents/{agent_id}/block", tag = "agents", request_body = BlockBody, responses((status = 200, description = "the agent")))]
async fn block(
    State(state): State<AppState>,
    who: Principal,
    Path(agent_id): Path<String>,
    JsonBody(body): JsonBody<BlockBody>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    set_block(
        &state,
        &who,
        agent_id.clone(),
        Some(body.reason.unwrap_or_default()),
    )
    .await?;
    let row = find(&state.store, &who.org_id, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Json(row.view()))
}

/// Lift the kill switch.
#[utoipa::path(post, path = "/api/v1/agents/{agent_id}/unblock", tag = "agents", responses((status = 200, description = "the agent"), (status = 404, description = "unknown agent")))]
async fn unblock(
    State(state): State<AppState>,
    who: Principal,
    Path(agent_id): Path<String>,
    JsonBody(_body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin])?;
    find(&state.store, &who.org_id, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    set_block(&state, &who, agent_id.clone(), None).await?;
    let row = find(&state.store, &who.org_id, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Json(row.view()))
}

impl AgentRow {
    /// The SDK's kill-switch status shape.
    pub fn kill_switch(&self) -> Value {
        let on = self.blocked != 0;
        json!({"blocked": on, "reason": if on { self.blocked_reason.clone() } else { None },
               "activated_at": if on { self.blocked_at.clone() } else { None },
               "activated_by": if on { self.blocked_by.clone() } else { None }})
    }
}
