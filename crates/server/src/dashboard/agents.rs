//! Agents: the registry with last seen and counts, and the kill switch (admins only),
//! through the same `set_block` the API uses.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, PostForm, render};
use super::session::Session;
use crate::error::ApiError;
use crate::routes::AppState;
use crate::routes::agents::{AgentRow, find, list_rows, set_block};

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    agents: Vec<AgentRow>,
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Done>,
) -> PageResult {
    let agents = list_rows(&state.store, &session.who.org_id).await?;
    let done = match q.done.as_deref() {
        Some("blocked") => Some("Blocked: the agent's next call is denied.".to_string()),
        Some("unblocked") => {
            Some("Unblocked: the agent's calls are decided normally again.".to_string())
        }
        _ => None,
    };
    let page = AgentsPage {
        chrome: Chrome::new(&session, "agents"),
        agents,
        done,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct BlockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn block(
    State(state): State<AppState>,
    session: Session,
    Path(agent_id): Path<String>,
    PostForm(form): PostForm<BlockForm>,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    if !session.is_admin() {
        return Err(PageError::admin_only("block an agent"));
    }
    let reason = form.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(PageError::invalid(
            "Say why the agent is blocked (1 to 500 characters); the agent is told this reason. Nothing was changed.",
        ));
    }
    // Only agents the registry knows: a mistyped id must not register a new one.
    find(&state.store, &session.who.org_id, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    set_block(&state, &session.who, agent_id, Some(reason.to_string())).await?;
    Ok(Redirect::to("/agents?done=blocked").into_response())
}

pub async fn unblock(
    State(state): State<AppState>,
    session: Session,
    Path(agent_id): Path<String>,
    PostForm(form): PostForm<BlockForm>,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    if !session.is_admin() {
        return Err(PageError::admin_only("unblock an agent"));
    }
    find(&state.store, &session.who.org_id, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    set_block(&state, &session.who, agent_id, None).await?;
    Ok(Redirect::to("/agents?done=unblocked").into_response())
}
