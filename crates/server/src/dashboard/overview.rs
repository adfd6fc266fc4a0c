//! The overview: calls per decision and per risk level over the last 24 hours (by hour,
//! platform decisions and uploaded local ones alike), as server-drawn charts, plus what
//! waits now.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::chart::{Series, stacked_bars};
use super::page::{Chrome, PageResult, render};
use super::session::Session;
use crate::error::ApiError;
use crate::routes::AppState;
use crate::store::Store;
use crate::util::format_ts;

const HOURS: usize = 24;
/// Enough for a busy day; the chart says so when it reached the cap.
const MAX_ROWS: i64 = 200_000;

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    by_decision: String,
    by_risk: String,
    totals: Vec<(&'static str, u64)>,
    pending: i64,
    agents: i64,
    blocked: i64,
    capped: bool,
}

/// (hour `YYYY-MM-DDTHH`, decision, risk level) of each call in the window.
async fn calls(
    store: &Store,
    org: &str,
    since: &str,
) -> Result<(Vec<(String, String, String)>, bool), ApiError> {
    let actions: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT created_at, status, risk_level FROM actions WHERE org_id = $1 AND created_at >= $2 LIMIT $3",
    )
    .bind(org)
    .bind(since)
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await?;
    let local: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT ts, decision, body FROM audit_events WHERE org_id = $1 AND kind = 'local' AND ts >= $2 LIMIT $3",
    )
    .bind(org)
    .bind(since)
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await?;
    let capped = actions.len() as i64 == MAX_ROWS || local.len() as i64 == MAX_ROWS;
    let mut out: Vec<(String, String, String)> = actions
        .into_iter()
        .map(|(ts, status, risk)| (ts.get(..13).unwrap_or("").to_string(), status, risk))
        .collect();
    out.extend(local.into_iter().map(|(ts, decision, body)| {
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let risk = body["risk_level"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        (ts.get(..13).unwrap_or("").to_string(), decision, risk)
    }));
    Ok((out, capped))
}

fn series(
    hours: &[String],
    rows: &[(String, String, String)],
    pick: impl Fn(&(String, String, String)) -> &str,
    kinds: &[(&'static str, &'static str, &'static str)],
) -> Vec<Series> {
    let index: HashMap<&str, usize> = hours
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    kinds
        .iter()
        .map(|(key, name, class)| {
            let mut values = vec![0u64; hours.len()];
            for row in rows.iter().filter(|r| pick(r) == *key) {
                if let Some(&i) = index.get(row.0.as_str()) {
                    values[i] += 1;
                }
            }
            Series {
                name,
                class,
                values,
            }
        })
        .collect()
}

pub async fn page(State(state): State<AppState>, session: Session) -> PageResult {
    let org = &session.who.org_id;
    let now = time::OffsetDateTime::now_utc();
    let hours: Vec<String> = (0..HOURS)
        .rev()
        .map(|back| format_ts(now - time::Duration::hours(back as i64))[..13].to_string())
        .collect();
    let since = format!("{}:00:00.000Z", hours[0]);
    let (rows, capped) = calls(&state.store, org, &since).await?;
    let labels: Vec<String> = hours.iter().map(|h| format!("{}:00", &h[11..13])).collect();
    let decisions = series(
        &hours,
        &rows,
        |r| r.1.as_str(),
        &[
            ("approved", "approved", "s-approved"),
            ("denied", "denied", "s-denied"),
            ("pending_approval", "pending", "s-pending"),
        ],
    );
    let risks = series(
        &hours,
        &rows,
        |r| r.2.as_str(),
        &[
            ("low", "low", "s-low"),
            ("medium", "medium", "s-medium"),
            ("high", "high", "s-high"),
            ("critical", "critical", "s-critical"),
        ],
    );
    let totals = decisions
        .iter()
        .map(|s| (s.name, s.values.iter().sum()))
        .collect();
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM actions WHERE org_id = $1 AND status = 'pending_approval'",
    )
    .bind(org)
    .fetch_one(&state.store.pool)
    .await?;
    let (agents, blocked): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN blocked <> 0 THEN 1 END) FROM agents WHERE org_id = $1",
    )
    .bind(org)
    .fetch_one(&state.store.pool)
    .await?;
    let page = OverviewPage {
        chrome: Chrome::new(&session, "overview"),
        by_decision: stacked_bars(
            "Calls per hour by decision, last 24 hours (UTC)",
            &labels,
            &decisions,
        ),
        by_risk: stacked_bars(
            "Calls per hour by risk level, last 24 hours (UTC)",
            &labels,
            &risks,
        ),
        totals,
        pending,
        agents,
        blocked,
        capped,
    };
    Ok(render(StatusCode::OK, &page))
}
