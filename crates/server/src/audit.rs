//! The audit log: every decision appended to a per-organisation SHA-256 hash chain over
//! RFC 8785 canonical JSON. `hash = sha256(prev_hash || canonical(body))`; the body
//! holds its own `seq`, so a removed, reordered or edited row breaks the chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use crate::args;
use crate::error::ApiError;
use crate::store::{Backend, Store, Tx};
use crate::util::{canonical, sha256_hex};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the chain. `body` is an object; `seq` is set on append.
#[derive(Debug, Clone)]
pub struct Entry {
    pub action_id: String,
    pub kind: &'static str,
    pub agent_id: String,
    pub decision: String,
    pub ts: String,
    pub body: Value,
}

fn link(prev: &str, body: &str) -> String {
    let mut data = String::with_capacity(prev.len() + body.len());
    data.push_str(prev);
    data.push_str(body);
    sha256_hex(data.as_bytes())
}

/// Moves an organisation's chain head (`$1` hash, `$2` seq, `$3` org) where no trigger does.
pub(crate) const MOVE_HEAD: &str = "UPDATE orgs SET audit_head = $1, audit_seq = $2 WHERE id = $3";

/// What an event's row holds beside its body (the export filters on these).
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub action_id: &'a str,
    pub kind: &'static str,
    pub agent_id: &'a str,
    pub decision: &'a str,
    pub ts: &'a str,
}

/// Appends inside the caller's write transaction. The `UPDATE … RETURNING` on the
/// organisation row serialises appends (a row lock on PostgreSQL); the single SQLite
/// writer knows the head from its previous append and skips it.
pub async fn append<T: Tx>(conn: &mut T, org_id: &str, entry: Entry) -> Result<i64, ApiError> {
    let Entry {
        action_id,
        kind,
        agent_id,
        decision,
        ts,
        mut body,
    } = entry;
    let meta = Meta {
        action_id: &action_id,
        kind,
        agent_id: &agent_id,
        decision: &decision,
        ts: &ts,
    };
    append_rendered(conn, org_id, meta, |seq| {
        canonical_body(&mut body, meta, seq)
    })
    .await
}

/// The canonical text of `body` with the chain's own fields added: what is hashed.
pub(crate) fn canonical_body(body: &mut Value, meta: Meta<'_>, seq: i64) -> String {
    if let Value::Object(map) = body {
        map.insert("seq".into(), json!(seq));
        map.insert("kind".into(), json!(meta.kind));
        map.insert("action_id".into(), json!(meta.action_id));
        map.insert("agent_id".into(), json!(meta.agent_id));
        map.insert("decision".into(), json!(meta.decision));
        map.insert("timestamp".into(), json!(meta.ts));
    }
    canonical(body)
}

/// As [`append`], with the body's canonical text written by `render` once the event's
/// `seq` is known. The text must be what [`canonical`] makes of the body (the chain is
/// verified against it) and hold `seq`, `kind`, `action_id`, `agent_id`, `decision` and
/// `timestamp` as `meta` has them.
pub async fn append_rendered<T: Tx>(
    conn: &mut T,
    org_id: &str,
    meta: Meta<'_>,
    render: impl FnOnce(i64) -> String + Send,
) -> Result<i64, ApiError> {
    let known = conn
        .chain_heads()
        .and_then(|heads| heads.get(org_id))
        .map(|(seq, hash)| (seq + 1, hash.clone()));
    let (seq, head) = match known {
        Some(next) => next,
        None => {
            let row = conn
                .fetch_one(
                    "UPDATE orgs SET audit_seq = audit_seq + 1 WHERE id = $1 \
                     RETURNING audit_seq, audit_head",
                    &args![org_id],
                )
                .await?;
            (row.int(0)?, row.text(1)?)
        }
    };
    let prev = if head.is_empty() {
        GENESIS.to_string()
    } else {
        head
    };
    let text = render(seq);
    let hash = link(&prev, &text);
    conn.execute(
        "INSERT INTO audit_events (org_id, seq, action_id, kind, agent_id, decision, ts, body, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &args![
            org_id,
            seq,
            meta.action_id,
            meta.kind,
            meta.agent_id,
            meta.decision,
            meta.ts,
            &text,
            &prev,
            &hash,
        ],
    )
    .await?;
    // `orgs.audit_head` and `audit_seq` move to this event: by the trigger
    // `audit_events_head` on PostgreSQL (migrations 0002, 0005); on SQLite by the writer's
    // own connection once per batch (`Tx::before_commit`), else here.
    if let Some(heads) = conn.chain_heads() {
        heads.moved_to(org_id, seq, hash);
    } else if !conn.head_trigger() {
        conn.execute(MOVE_HEAD, &args![&hash, seq, org_id]).await?;
    }
    Ok(seq)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub seq: i64,
    pub action_id: String,
    pub kind: String,
    pub agent_id: String,
    pub decision: String,
    pub ts: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Row {
    /// The exported line: the hashed body plus its links.
    pub fn line(&self) -> Value {
        let mut v: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("prev_hash".into(), json!(self.prev_hash));
            map.insert("hash".into(), json!(self.hash));
        }
        v
    }

    /// Why this row does not follow from `prev` at `seq`, if it does not.
    fn problem(&self, expected_seq: i64, prev: &str) -> Option<String> {
        if self.seq != expected_seq {
            return Some(format!("expected event {expected_seq}, found {}", self.seq));
        }
        if self.prev_hash != prev {
            return Some("prev_hash does not match the previous event's hash".into());
        }
        if link(prev, &self.body) != self.hash {
            return Some("hash does not match the event's content".into());
        }
        let body: Value = serde_json::from_str(&self.body).ok()?;
        let matches = body["seq"] == json!(self.seq)
            && body["action_id"] == json!(self.action_id)
            && body["kind"] == json!(self.kind)
            && body["agent_id"] == json!(self.agent_id)
            && body["decision"] == json!(self.decision)
            && body["timestamp"] == json!(self.ts);
        (!matches).then(|| "stored columns differ from the hashed event".into())
    }
}

/// Filters of an export or a dashboard search; empty strings match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub agent_id: String,
    pub decision: String,
    pub since: String,
    pub until: String,
    /// The AWS service: events whose `operation` starts with `<service>.`.
    pub service: String,
    /// `low` … `critical`.
    pub risk_level: String,
}

pub const PAGE: i64 = 500;

const COLUMNS: &str = "seq, action_id, kind, agent_id, decision, ts, body, prev_hash, hash";

/// The filter's conditions on `$1`…`$8` (org, agent, decision, since, until, service,
/// risk level). Service and risk are read from the hashed body, so platform decisions
/// and uploaded local decisions filter alike.
fn conditions(backend: Backend) -> String {
    let field = |name: &str| match backend {
        Backend::Sqlite => format!("json_extract(body, '$.{name}')"),
        Backend::Postgres => format!("(body::jsonb ->> '{name}')"),
    };
    format!(
        "org_id = $1 AND ($2 = '' OR agent_id = $2) AND ($3 = '' OR decision = $3) \
         AND ($4 = '' OR ts >= $4) AND ($5 = '' OR ts <= $5) \
         AND ($6 = '' OR {op} LIKE $7 ESCAPE '\\') AND ($8 = '' OR {risk} = $8)",
        op = field("operation"),
        risk = field("risk_level"),
    )
}

async fn select(
    store: &Store,
    org_id: &str,
    filter: &Filter,
    tail: &str,
    seq: i64,
    limit: i64,
) -> Result<Vec<Row>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {} {tail}",
        conditions(store.backend)
    );
    // `_` and `%` in a service name must not act as wildcards.
    let prefix = filter
        .service
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(org_id)
        .bind(&filter.agent_id)
        .bind(&filter.decision)
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(&filter.service)
        .bind(format!("{prefix}.%"))
        .bind(&filter.risk_level)
        .bind(seq)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?)
}

/// One page of events after `after_seq`, matching `filter`, oldest first.
pub async fn page(
    store: &Store,
    org_id: &str,
    filter: &Filter,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Row>, ApiError> {
    let tail = "AND seq > $9 ORDER BY seq LIMIT $10";
    select(store, org_id, filter, tail, after_seq, limit).await
}

/// One page of events before `before_seq` (0: from the newest), newest first.
pub async fn page_newest(
    store: &Store,
    org_id: &str,
    filter: &Filter,
    before_seq: i64,
    limit: i64,
) -> Result<Vec<Row>, ApiError> {
    let tail = "AND ($9 = 0 OR seq < $9) ORDER BY seq DESC LIMIT $10";
    select(store, org_id, filter, tail, before_seq, limit).await
}

/// The selection as JSON Lines, oldest first, read and sent page by page (the API's
/// export and the dashboard's).
pub fn json_lines(store: Store, org_id: String, filter: Filter) -> axum::body::Body {
    let pages = futures_util::stream::try_unfold(Some(0i64), move |after| {
        let (store, org, filter) = (store.clone(), org_id.clone(), filter.clone());
        async move {
            let Some(after) = after else { return Ok(None) };
            let rows = page(&store, &org, &filter, after, PAGE)
                .await
                .map_err(|e| std::io::Error::other(e.detail))?;
            let next = (rows.len() as i64 == PAGE).then(|| rows.last().map_or(after, |r| r.seq));
            let mut chunk = Vec::with_capacity(rows.len() * 400);
            for row in &rows {
                serde_json::to_writer(&mut chunk, &row.line()).map_err(std::io::Error::other)?;
                chunk.push(b'\n');
            }
            Ok::<_, std::io::Error>(Some((axum::body::Bytes::from(chunk), next)))
        }
    });
    axum::body::Body::from_stream(pages)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub valid: bool,
    pub events: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Walks an organisation's chain from the event after `seq`, whose hash is `prev` (0 and
/// [`GENESIS`]: the whole chain), to the head `orgs` holds. Also gives the last hash read.
///
/// The head is read first and the walk stops there: it moves in the transaction that
/// appends, so every event up to it is already stored, while events appended during the
/// walk are left for the next one (read last, the head could be ahead of the events read
/// and a chain under steady appends would look cut short).
async fn walk(
    store: &Store,
    org_id: &str,
    mut seq: i64,
    mut prev: String,
) -> Result<(Verification, String), ApiError> {
    let (head_seq, head): (i64, String) =
        sqlx::query_as("SELECT audit_seq, audit_head FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_one(&store.pool)
            .await?;
    let all = Filter::default();
    'pages: while seq < head_seq {
        let rows = page(store, org_id, &all, seq, PAGE).await?;
        let done = (rows.len() as i64) < PAGE;
        for row in rows {
            if row.seq > head_seq {
                break 'pages;
            }
            if let Some(detail) = row.problem(seq + 1, &prev) {
                return Ok((broken(seq, row.action_id.clone(), row.seq, detail), prev));
            }
            seq = row.seq;
            prev = row.hash;
        }
        if done {
            break;
        }
    }
    if head_seq != seq || (seq > 0 && head != prev) {
        let detail = format!("the chain ends at event {seq} but the head is event {head_seq}");
        return Ok((
            broken(seq, format!("seq:{}", seq + 1), seq + 1, detail),
            prev,
        ));
    }
    let verified = Verification {
        valid: true,
        events: seq,
        first_broken: None,
        detail: None,
    };
    Ok((verified, prev))
}

/// Where a walk from the first event last found each organisation's chain unbroken (in
/// this process). The dashboard's audit page starts there and reads only the events
/// appended since, so that a page view costs the new events, not the whole log.
#[derive(Clone, Debug, Default)]
pub struct ChainChecks(Arc<Mutex<HashMap<String, Checked>>>);

#[derive(Clone, Debug)]
struct Checked {
    /// The last event found good, and its hash.
    seq: i64,
    hash: String,
    /// When every event was last read.
    full_at: String,
}

/// A verification, and when it (or the one it continued) last read every event.
#[derive(Debug)]
pub struct Checkup {
    pub verification: Verification,
    pub full_at: String,
}

impl ChainChecks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Checked>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `full`: reads every event. Otherwise starts after the event the last walk ended at,
    /// once that event is found unchanged (a chain rewritten from an earlier event has to
    /// change its hash); without an earlier walk, or when that event changed, reads every
    /// event, which also names the first broken link. An edit of an event before that
    /// point which leaves the hashes alone is found by the next full walk: the dashboard
    /// says when that was and offers one.
    pub async fn verify(
        &self,
        store: &Store,
        org_id: &str,
        full: bool,
    ) -> Result<Checkup, ApiError> {
        let known = if full {
            None
        } else {
            self.lock().get(org_id).cloned()
        };
        let start = match known {
            Some(c) if unchanged(store, org_id, &c).await? => c,
            _ => Checked {
                seq: 0,
                hash: GENESIS.to_string(),
                full_at: crate::util::now(),
            },
        };
        let (verification, hash) = walk(store, org_id, start.seq, start.hash).await?;
        let mut checks = self.lock();
        if verification.valid {
            let checked = Checked {
                seq: verification.events,
                hash,
                full_at: start.full_at.clone(),
            };
            checks.insert(org_id.to_string(), checked);
        } else {
            checks.remove(org_id);
        }
        Ok(Checkup {
            verification,
            full_at: start.full_at,
        })
    }
}

/// Whether the event a walk ended at still has the hash the walk read.
async fn unchanged(store: &Store, org_id: &str, checked: &Checked) -> Result<bool, ApiError> {
    if checked.seq == 0 {
        return Ok(true);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT hash FROM audit_events WHERE org_id = $1 AND seq = $2")
            .bind(org_id)
            .bind(checked.seq)
            .fetch_optional(&store.pool)
            .await?;
    Ok(row.is_some_and(|(hash,)| hash == checked.hash))
}

fn broken(good: i64, id: String, at: i64, detail: String) -> Verification {
    Verification {
        valid: false,
        events: good,
        first_broken: Some(id),
        detail: Some(format!("event {at}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, prev: &str, body: Value) -> Row {
        let text = canonical(&body);
        Row {
            seq,
            action_id: body["action_id"].as_str().unwrap().into(),
            kind: "decision".into(),
            agent_id: "a".into(),
            decision: body["decision"].as_str().unwrap().into(),
            ts: "2026-01-01T00:00:00.000Z".into(),
            hash: link(prev, &text),
            body: text,
            prev_hash: prev.into(),
        }
    }

    fn body(seq: i64, decision: &str) -> Value {
        json!({"seq": seq, "action_id": format!("act_{seq}"), "kind": "decision", "agent_id": "a",
               "decision": decision, "timestamp": "2026-01-01T00:00:00.000Z"})
    }

    #[test]
    fn a_chain_links_and_any_edit_breaks_it() {
        let first = row(1, GENESIS, body(1, "approved"));
        let second = row(2, &first.hash, body(2, "denied"));
        assert_eq!(first.problem(1, GENESIS), None);
        assert_eq!(second.problem(2, &first.hash), None);
        assert!(second.problem(3, &first.hash).is_some(), "a gap");
        assert!(second.problem(2, GENESIS).is_some(), "a wrong link");
        let mut edited = second.clone();
        edited.body = edited.body.replace("denied", "approved");
        assert!(edited.problem(2, &first.hash).unwrap().contains("content"));
        let mut column = second.clone();
        column.decision = "approved".into();
        assert!(column.problem(2, &first.hash).unwrap().contains("columns"));
    }
}
