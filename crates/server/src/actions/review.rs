//! What happens to a pending action: a person approves or rejects it, or it expires.
//! Each decision is recorded once (409 after), audited, and wakes waiters everywhere.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::write::append_decision;
use super::{APPROVED, ActionRecord, DENIED, PENDING, load_in};
use crate::args;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::store::{Backend, Event, Store, Tx};
use crate::util::now;

/// Keeps the agent registry: first contact, last seen, counts by decision. `moved_from`
/// is the status an action leaves (pending → approved/denied).
pub(crate) async fn count_agent<T: Tx>(
    conn: &mut T,
    r: &AgentCount<'_>,
    seen: i64,
    moved_from: Option<&str>,
) -> Result<(), ApiError> {
    let inc = |s: &str| i64::from(r.status == s) - i64::from(moved_from == Some(s));
    if seen == 1
        && let Some(tally) = conn.agent_tally()
    {
        let entry = slot(slot(tally, r.org_id), r.agent_id);
        entry.name.clear();
        entry.name.push_str(r.agent_name);
        entry.approved += inc(APPROVED);
        entry.denied += inc(DENIED);
        entry.pending += inc(PENDING);
        return Ok(());
    }
    let ts = now();
    conn.execute(
        "INSERT INTO agents (org_id, agent_id, name, first_seen, last_seen, approved_count, \
         denied_count, pending_count) VALUES ($1, $2, $3, $4, $4, $5, $6, $7) \
         ON CONFLICT (org_id, agent_id) DO UPDATE SET \
         name = CASE WHEN $8 = 1 THEN excluded.name ELSE agents.name END, \
         last_seen = CASE WHEN $8 = 1 THEN excluded.last_seen ELSE agents.last_seen END, \
         approved_count = agents.approved_count + excluded.approved_count, \
         denied_count = agents.denied_count + excluded.denied_count, \
         pending_count = agents.pending_count + excluded.pending_count",
        &args![
            r.org_id,
            r.agent_id,
            r.agent_name,
            &ts,
            inc(APPROVED),
            inc(DENIED),
            inc(PENDING),
            seen,
        ],
    )
    .await?;
    Ok(())
}

/// `map[key]`, inserted empty first if absent. Looked up by `&str`, so a key is allocated
/// only the first time (once per agent and batch, not per submit).
fn slot<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("the key was inserted above")
}

/// A batch's counters of one agent ([`Tx::agent_tally`]), written at its commit: the
/// registry row as `count_agent` with `seen = 1` leaves it, once per agent and batch.
pub(crate) const ADD_AGENT_COUNTS: &str = "INSERT INTO agents (org_id, agent_id, name, \
     first_seen, last_seen, approved_count, denied_count, pending_count) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (org_id, agent_id) DO UPDATE SET name = excluded.name, \
     last_seen = excluded.last_seen, \
     approved_count = agents.approved_count + excluded.approved_count, \
     denied_count = agents.denied_count + excluded.denied_count, \
     pending_count = agents.pending_count + excluded.pending_count";

/// The agent side of a decision.
#[derive(Debug, Clone, Copy)]
pub struct AgentCount<'a> {
    pub org_id: &'a str,
    pub agent_id: &'a str,
    pub agent_name: &'a str,
    pub status: &'a str,
}

impl ActionRecord {
    pub fn agent_count(&self) -> AgentCount<'_> {
        AgentCount {
            org_id: &self.org_id,
            agent_id: &self.agent_id,
            agent_name: &self.agent_name,
            status: &self.status,
        }
    }
}

/// A person's decision on a pending action.
#[derive(Debug, Clone)]
pub struct Review {
    pub approve: bool,
    pub text: Option<String>,
}

async fn record_decision(
    backend: Backend,
    conn: &mut AnyConnection,
    mut r: ActionRecord,
    kind: &'static str,
) -> Result<ActionRecord, ApiError> {
    let done = sqlx::query(
        "UPDATE actions SET status = $1, reason = $2, decided_at = $3, decided_by = $4, \
         decided_via = $5, comment = $6, grant_state = $7, expires_at = NULL \
         WHERE id = $8 AND status = 'pending_approval'",
    )
    .bind(&r.status)
    .bind(&r.reason)
    .bind(&r.decided_at)
    .bind(&r.decided_by)
    .bind(&r.decided_via)
    .bind(&r.comment)
    .bind(&r.grant_state)
    .bind(&r.id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(ApiError::conflict(format!(
            "action {} is already decided",
            r.id
        )));
    }
    r.expires_at = None;
    count_agent(conn, &r.agent_count(), 0, Some(PENDING)).await?;
    append_decision(conn, &r, kind).await?;
    if r.status == DENIED {
        crate::webhooks::on_action_denied(conn, &r).await?;
    }
    let event = Event::Action {
        org: r.org_id.clone(),
        id: r.id.clone(),
    };
    Store::notify_in_tx(backend, conn, &event).await?;
    Ok(r)
}

/// Approves or rejects; 404 outside the caller's organisation, 409 once decided or
/// expired.
pub async fn review(
    store: &Store,
    who: &Principal,
    id: &str,
    review: Review,
) -> Result<ActionRecord, ApiError> {
    let (org, id, actor, backend) = (
        who.org_id.clone(),
        id.to_string(),
        who.actor(),
        store.backend,
    );
    let record = store
        .write(move |conn| {
            Box::pin(async move {
                let mut r = load_in(conn, &org, &id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("action"))?;
                let ts = now();
                if r.status != PENDING {
                    return Err(ApiError::conflict(format!(
                        "action {id} is already decided: {}",
                        r.status
                    )));
                }
                if r.expires_at.as_deref().is_some_and(|e| e <= ts.as_str()) {
                    return Err(ApiError::conflict(format!(
                        "the approval request of {id} has expired"
                    )));
                }
                let text = review.text.filter(|t| !t.trim().is_empty());
                r.decided_at = Some(ts);
                r.decided_by = Some(actor.clone());
                r.comment = text.clone();
                if review.approve {
                    r.status = APPROVED.into();
                    r.decided_via = "approval".into();
                    r.grant_state = Some("available".into());
                    r.reason = match &text {
                        Some(c) => format!("approved by {actor}: {c}"),
                        None => format!("approved by {actor}"),
                    };
                } else {
                    r.status = DENIED.into();
                    r.decided_via = "rejection".into();
                    r.reason = match &text {
                        Some(why) => format!("rejected by {actor}: {why}"),
                        None => format!("rejected by {actor}"),
                    };
                }
                let kind = if review.approve {
                    "approval"
                } else {
                    "rejection"
                };
                record_decision(backend, conn, r, kind).await
            })
        })
        .await?;
    publish(store, &record);
    Ok(record)
}

fn publish(store: &Store, r: &ActionRecord) {
    metrics::counter!("ascend_reviews_total", "via" => r.decided_via.clone()).increment(1);
    // Only a denial (rejection, expiry) queues a delivery (`record_decision`).
    if r.status == DENIED {
        crate::webhooks::wake();
    }
    store.publish(Event::Action {
        org: r.org_id.clone(),
        id: r.id.clone(),
    });
}

/// Denies every pending action whose approval request has expired. Cheap when none has.
pub async fn expire_due(store: &Store) -> Result<usize, ApiError> {
    let ts = now();
    let due: Vec<(String, String)> = sqlx::query_as(
        "SELECT org_id, id FROM actions WHERE status = 'pending_approval' AND expires_at <= $1 LIMIT 200",
    )
    .bind(&ts)
    .fetch_all(&store.pool)
    .await?;
    let mut expired = 0;
    for (org, id) in due {
        let backend = store.backend;
        let result = store
            .write(move |conn| {
                Box::pin(async move {
                    let Some(mut r) = load_in(conn, &org, &id).await? else {
                        return Err(ApiError::not_found("action"));
                    };
                    let ttl_note = r.expires_at.clone().unwrap_or_default();
                    r.status = DENIED.into();
                    r.decided_via = "expiry".into();
                    r.decided_at = Some(now());
                    r.reason =
                        format!("the approval request expired at {ttl_note} without a decision");
                    record_decision(backend, conn, r, "expiry").await
                })
            })
            .await;
        if let Ok(r) = result {
            publish(store, &r);
            expired += 1;
        }
    }
    Ok(expired)
}
