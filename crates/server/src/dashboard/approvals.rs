//! The approval queue: pending actions, newest first, each with everything a person needs
//! to decide; Approve / Reject go through `actions::review`, the function the API uses.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::Value;

use super::page::{Chrome, PageResult, PostForm, render};
use super::session::Session;
use crate::actions::{self, ActionRecord, Review};
use crate::routes::AppState;
use crate::store::Store;
use crate::util::parse_ts;

/// How many pending actions the page shows at most.
const SHOWN: i64 = 200;

/// One pending action as the card shows it.
#[derive(Debug, Clone)]
pub struct PendingView {
    pub id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub operation: String,
    pub region: String,
    pub risk_level: String,
    pub risk_score: i64,
    pub reasons: Vec<String>,
    /// Already redacted when the action was stored.
    pub parameters: String,
    pub policy_ids: String,
    pub reason: String,
    pub created_at: String,
    pub waited: String,
}

/// "4 s", "3 min 12 s", "2 h 5 min", "3 d 1 h".
pub fn waited_since(created_at: &str) -> String {
    let Some(start) = parse_ts(created_at).and_then(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return String::new();
    };
    let secs = (time::OffsetDateTime::now_utc() - start)
        .whole_seconds()
        .max(0);
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

impl From<&ActionRecord> for PendingView {
    fn from(r: &ActionRecord) -> Self {
        let reasons: Vec<String> =
            serde_json::from_str::<Vec<String>>(&r.reasons).unwrap_or_default();
        let params: Value = serde_json::from_str(&r.parameters).unwrap_or(Value::Null);
        let policy_ids: Vec<String> = serde_json::from_str(&r.policy_ids).unwrap_or_default();
        PendingView {
            id: r.id.clone(),
            agent_id: r.agent_id.clone(),
            agent_name: r.agent_name.clone(),
            operation: r.operation.clone(),
            region: r.region.clone(),
            risk_level: r.risk_level.clone(),
            risk_score: r.risk_score,
            reasons,
            parameters: serde_json::to_string_pretty(&params).unwrap_or_default(),
            policy_ids: if policy_ids.is_empty() {
                "(no policy: the default for this risk level)".into()
            } else {
                policy_ids.join(", ")
            },
            reason: r.reason.clone(),
            created_at: r.created_at.clone(),
            waited: waited_since(&r.created_at),
        }
    }
}

/// One card: the page's loop and the live queue's fragments draw the same template.
#[derive(Template)]
#[template(path = "approval_card.html")]
pub struct Card<'a> {
    pub a: &'a PendingView,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    chrome: Chrome,
    pending: Vec<PendingView>,
    done: Option<String>,
}

pub async fn pending(
    store: &Store,
    org: &str,
) -> Result<Vec<ActionRecord>, crate::error::ApiError> {
    Ok(sqlx::query_as(
        // The status is written out so that SQLite sees the pending-only index applies.
        "SELECT * FROM actions WHERE org_id = $1 AND status = 'pending_approval' \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(org)
    .bind(SHOWN)
    .fetch_all(&store.pool)
    .await?)
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
    id: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Done>,
) -> PageResult {
    let rows = pending(&state.store, &session.who.org_id).await?;
    // Only fixed words reach the page from the query string (plus a well-formed id).
    let id =
        q.id.filter(|id| crate::util::is_action_id(id))
            .unwrap_or_default();
    let done = match q.done.as_deref() {
        Some("approved") => Some(format!("Approved {id}; the agent's call goes ahead.")),
        Some("rejected") => Some(format!("Rejected {id}; the agent was told why.")),
        _ => None,
    };
    let page = ApprovalsPage {
        chrome: Chrome::new(&session, "approvals"),
        pending: rows.iter().map(PendingView::from).collect(),
        done,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    state: AppState,
    session: Session,
    id: String,
    form: DecideForm,
    approve: bool,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    if form.comment.len() > 2000 {
        return Err(super::page::PageError::invalid(
            "The comment holds at most 2000 characters; nothing was changed.",
        ));
    }
    let review = Review {
        approve,
        text: Some(form.comment),
    };
    let record = actions::review(&state.store, &session.who, &id, review).await?;
    let done = if approve { "approved" } else { "rejected" };
    Ok(Redirect::to(&format!("/approvals?done={done}&id={}", record.id)).into_response())
}

pub async fn approve(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    PostForm(form): PostForm<DecideForm>,
) -> PageResult {
    decide(state, session, id, form, true).await
}

pub async fn reject(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    PostForm(form): PostForm<DecideForm>,
) -> PageResult {
    decide(state, session, id, form, false).await
}
