//! The audit log: search by agent, service, decision, risk and time; newest first, paged
//! by sequence number; the chain's verification; export of the same selection as JSON
//! Lines. Listing and verification are `crate::audit`'s.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;

use super::page::{Chrome, PageError, PageResult, render};
use super::session::Session;
use crate::audit::{self, Filter, Verification};
use crate::routes::AppState;
use crate::util::parse_ts;

const PER_PAGE: i64 = 50;

/// The search form's fields, as typed (kept to refill the form).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Search {
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub risk: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    /// Show events older than this sequence number.
    #[serde(default)]
    pub before: Option<i64>,
    /// `full`: verify the chain from its first event (otherwise from where the last
    /// verification ended).
    #[serde(default)]
    pub verify: String,
}

/// A time from the form: RFC 3339, or the browser's `datetime-local` (read as UTC).
fn form_time(name: &str, text: &str) -> Result<String, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let with_zone = match text.len() {
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.to_string(),
    };
    parse_ts(text)
        .or_else(|| parse_ts(&with_zone))
        .ok_or_else(|| {
            PageError::invalid(format!(
                "`{name}` must be a time like 2026-11-26T14:00 (UTC) or RFC 3339; got `{text}`."
            ))
        })
}

impl Search {
    /// The store's filter, or a message saying which field is wrong.
    pub fn filter(&self) -> Result<Filter, PageError> {
        let decision = match self.decision.as_str() {
            "" => "",
            "approved" => "approved",
            "denied" => "denied",
            "pending" | "pending_approval" => "pending_approval",
            other => {
                return Err(PageError::invalid(format!(
                    "unknown decision `{other}`: choose approved, denied or pending"
                )));
            }
        };
        let risk = match self.risk.as_str() {
            r @ ("" | "low" | "medium" | "high" | "critical") => r,
            other => {
                return Err(PageError::invalid(format!(
                    "unknown risk level `{other}`: choose low, medium, high or critical"
                )));
            }
        };
        let service = self.service.trim().to_ascii_lowercase();
        if !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || service.len() > 64
        {
            return Err(PageError::invalid(format!(
                "`{service}` is not an AWS service name (letters, digits and dashes, like s3 or ec2)"
            )));
        }
        Ok(Filter {
            agent_id: self.agent.trim().to_string(),
            decision: decision.into(),
            since: form_time("since", &self.since)?,
            until: form_time("until", &self.until)?,
            service,
            risk_level: risk.into(),
        })
    }

    /// The query string of this search (for the next page and the export).
    pub fn query(&self) -> String {
        let pairs = [
            ("agent", &self.agent),
            ("service", &self.service),
            ("decision", &self.decision),
            ("risk", &self.risk),
            ("since", &self.since),
            ("until", &self.until),
        ];
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(k, v);
        }
        query.finish()
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct EventView {
    pub seq: i64,
    pub ts: String,
    pub kind: String,
    pub action_id: String,
    pub agent_id: String,
    pub operation: String,
    pub decision: String,
    pub risk_level: String,
    pub risk_score: String,
    pub reason: String,
    pub by: String,
}

impl From<&audit::Row> for EventView {
    fn from(r: &audit::Row) -> Self {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let text = |k: &str| body[k].as_str().unwrap_or("").to_string();
        EventView {
            seq: r.seq,
            ts: r.ts.clone(),
            kind: r.kind.clone(),
            action_id: r.action_id.clone(),
            agent_id: r.agent_id.clone(),
            operation: text("operation"),
            decision: r.decision.clone(),
            risk_level: text("risk_level"),
            risk_score: body["risk_score"]
                .as_i64()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            reason: text("reason"),
            by: text("decided_by"),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    search: Search,
    error: Option<String>,
    events: Vec<EventView>,
    older: Option<String>,
    export: String,
    verification: Verification,
    /// When every event was last read.
    full_at: String,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(search): Query<Search>,
) -> PageResult {
    let org = &session.who.org_id;
    let full = match search.verify.as_str() {
        "" => false,
        "full" => true,
        other => {
            return Err(PageError::invalid(format!(
                "unknown `verify={other}`: the only value is `full` (verify every event)"
            )));
        }
    };
    let checkup = state.chain_checks.verify(&state.store, org, full).await?;
    let (events, error, status) = match search.filter() {
        Ok(filter) => {
            let before = search.before.unwrap_or(0).max(0);
            let rows = audit::page_newest(&state.store, org, &filter, before, PER_PAGE).await?;
            (rows, None, StatusCode::OK)
        }
        Err(e) => (Vec::new(), Some(e.message), e.status),
    };
    let query = search.query();
    let older = (events.len() as i64 == PER_PAGE)
        .then(|| events.last().map(|r| r.seq))
        .flatten()
        .map(|seq| {
            format!(
                "/audit?{query}{}before={seq}",
                if query.is_empty() { "" } else { "&" }
            )
        });
    let page = AuditPage {
        chrome: Chrome::new(&session, "audit"),
        export: format!("/audit/export?{query}"),
        search,
        error,
        events: events.iter().map(EventView::from).collect(),
        older,
        verification: checkup.verification,
        full_at: checkup.full_at,
    };
    Ok(render(status, &page))
}

/// The selection as JSON Lines, oldest first, streamed page by page.
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    Query(search): Query<Search>,
) -> PageResult {
    let filter = search.filter()?;
    Ok((
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"ascend-audit.jsonl\"",
            ),
        ],
        audit::json_lines(state.store.clone(), session.who.org_id.clone(), filter),
    )
        .into_response())
}
