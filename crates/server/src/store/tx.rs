//! `Tx`: the statements of a write transaction, written once and run on either connection
//! the writer holds — sqlx's `AnyConnection` (PostgreSQL, and SQLite for most writes) or
//! the SQLite writer's own `rusqlite` connection, which runs each statement on the
//! writer's thread instead of handing it to a driver thread and back. The hot write (a
//! submit) goes the second way; see `Store::write_job`.
//!
//! Only text and integer columns: that is all the schema holds.

use std::future::{Future, ready};

use sqlx::{AnyConnection, Column, Row as _, TypeInfo};

use crate::error::ApiError;

/// A bound value.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

/// Binds `$1, $2, …` in order.
#[macro_export]
macro_rules! args {
    ($($v:expr),* $(,)?) => { [$($crate::store::Arg::from($v)),*] };
}

#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// One result row.
#[derive(Clone, Debug)]
pub struct Row(Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> &Cell {
        self.0.get(i).unwrap_or(&Cell::Null)
    }

    pub fn text(&self, i: usize) -> Result<String, ApiError> {
        self.opt_text(i)
            .ok_or_else(|| ApiError::internal(format!("column {i} is not text")))
    }

    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.cell(i) {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, ApiError> {
        match self.cell(i) {
            Cell::Int(v) => Ok(*v),
            _ => Err(ApiError::internal(format!("column {i} is not an integer"))),
        }
    }
}

/// The statements a write job may run. Placeholders are `$1, $2, …` on both backends
/// (SQLite reads `$1` as a parameter numbered by first appearance, as sqlx relies on).
pub trait Tx: Send {
    fn execute(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, ApiError>> + Send;

    fn fetch_all(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, ApiError>> + Send;

    /// Tells the other replicas once the transaction commits (`NOTIFY` on PostgreSQL;
    /// SQLite has a single process, whose hub is told after the commit).
    fn notify(&mut self, payload: String) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// The audit chain heads this connection appended last, where it is the only one
    /// appending (the SQLite writer's own connection); the heads moved in the open
    /// transaction are written to `orgs` in [`Tx::before_commit`]. `None` where other
    /// writers exist: the chain head must then be read under a row lock.
    fn chain_heads(&mut self) -> Option<&mut ChainHeads> {
        None
    }

    /// Where agent counters are added up until the transaction's end, on a connection that
    /// writes in batches (the SQLite writer's own): a burst of one agent's submits then
    /// updates its row once per commit instead of once per submit. `None`: write now.
    fn agent_tally(&mut self) -> Option<&mut AgentTally> {
        None
    }

    /// Whether a trigger moves the audit chain head with each appended event (PostgreSQL,
    /// migrations 0002 and 0005). Where not, the appending code moves it.
    fn head_trigger(&self) -> bool {
        false
    }

    /// Writes what was kept for the end of the transaction; called right before `COMMIT`.
    fn before_commit(&mut self) -> impl Future<Output = Result<(), ApiError>> + Send {
        ready(Ok(()))
    }

    fn fetch_optional(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<Row>, ApiError>> + Send {
        let rows = self.fetch_all(sql, args);
        async move { Ok(rows.await?.into_iter().next()) }
    }

    fn fetch_one(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Row, ApiError>> + Send {
        let row = self.fetch_optional(sql, args);
        async move {
            row.await?
                .ok_or_else(|| ApiError::internal("a row the write needs is missing"))
        }
    }
}

fn any_query<'q>(
    sql: &'static str,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sql);
    for arg in args {
        q = match *arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
        };
    }
    q
}

fn any_row(row: &sqlx::any::AnyRow) -> Result<Row, ApiError> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let cell = if sqlx::ValueRef::is_null(&raw) {
            Cell::Null
        } else if matches!(
            column.type_info().name(),
            "INTEGER" | "BIGINT" | "INT8" | "INT4" | "INT" | "SMALLINT" | "BOOLEAN"
        ) {
            Cell::Int(row.try_get::<i64, _>(i)?)
        } else {
            Cell::Text(row.try_get::<String, _>(i)?)
        };
        cells.push(cell);
    }
    Ok(Row(cells))
}

impl Tx for AnyConnection {
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, ApiError> {
        Ok(any_query(sql, args).execute(self).await?.rows_affected())
    }

    async fn fetch_all(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Row>, ApiError> {
        let rows = any_query(sql, args).fetch_all(self).await?;
        rows.iter().map(any_row).collect()
    }

    fn head_trigger(&self) -> bool {
        self.backend_name() == "PostgreSQL"
    }

    async fn notify(&mut self, payload: String) -> Result<(), ApiError> {
        if self.backend_name() == "PostgreSQL" {
            sqlx::query("SELECT pg_notify('ascend_events', $1)")
                .bind(payload)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Arg::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(v)),
            Arg::Text(None) | Arg::Int(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

fn native_error(e: rusqlite::Error) -> ApiError {
    tracing::error!(error = %e, "storage error");
    ApiError::internal("storage error")
}

fn native_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> rusqlite::Result<Vec<Row>> {
    use rusqlite::types::ValueRef;
    let mut stmt = conn.prepare_cached(sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Int(v as i64),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Cell::Text(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(Row(cells));
    }
    Ok(out)
}

/// Each organisation's audit chain head (its last `seq` and `hash`), and which heads
/// moved since they were last written to `orgs`.
#[derive(Debug, Default)]
pub struct ChainHeads {
    heads: std::collections::HashMap<String, (i64, String)>,
    moved: Vec<String>,
}

impl ChainHeads {
    pub fn get(&self, org_id: &str) -> Option<&(i64, String)> {
        self.heads.get(org_id)
    }

    /// `org_id`'s chain now ends at event `seq` with `hash`.
    pub fn moved_to(&mut self, org_id: &str, seq: i64, hash: String) {
        if !self.moved.iter().any(|o| o == org_id) {
            self.moved.push(org_id.to_string());
        }
        self.heads.insert(org_id.to_string(), (seq, hash));
    }

    /// The heads that moved since the last call, as `(org_id, seq, hash)`.
    fn take_moved(&mut self) -> impl Iterator<Item = (String, i64, &str)> {
        let heads = &self.heads;
        self.moved.drain(..).filter_map(|org_id| {
            let (seq, hash) = heads.get(&org_id)?;
            Some((org_id, *seq, hash.as_str()))
        })
    }

    fn clear(&mut self) {
        self.heads.clear();
        self.moved.clear();
    }
}

/// One agent's counters over a batch: what its registry row gains at the commit, which
/// also stamps it as seen (or first seen) then.
#[derive(Debug, Default)]
pub struct Tally {
    pub name: String,
    pub approved: i64,
    pub denied: i64,
    pub pending: i64,
}

/// Agent counters of the open transaction, by organisation, then agent.
pub type AgentTally = std::collections::HashMap<String, std::collections::HashMap<String, Tally>>;

/// The SQLite writer's own connection, and what it remembers between its writes.
pub struct Native {
    conn: rusqlite::Connection,
    heads: ChainHeads,
    tally: AgentTally,
}

impl Native {
    pub fn new(conn: rusqlite::Connection) -> Self {
        Native {
            conn,
            heads: ChainHeads::default(),
            tally: AgentTally::new(),
        }
    }

    /// After a rollback, or after another connection wrote: what was remembered may no
    /// longer be what is stored.
    pub fn forget(&mut self) {
        self.heads.clear();
        self.tally.clear();
    }
}

/// Every statement runs here and now, so the futures are ready on first poll.
impl Tx for Native {
    fn execute(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, ApiError>> + Send {
        let done = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(args)));
        ready(done.map(|n| n as u64).map_err(native_error))
    }

    fn fetch_all(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, ApiError>> + Send {
        ready(native_rows(&self.conn, sql, args).map_err(native_error))
    }

    fn notify(&mut self, _payload: String) -> impl Future<Output = Result<(), ApiError>> + Send {
        ready(Ok(()))
    }

    fn chain_heads(&mut self) -> Option<&mut ChainHeads> {
        Some(&mut self.heads)
    }

    fn agent_tally(&mut self) -> Option<&mut AgentTally> {
        Some(&mut self.tally)
    }

    fn before_commit(&mut self) -> impl Future<Output = Result<(), ApiError>> + Send {
        let conn = &self.conn;
        let moved = self.heads.take_moved().try_for_each(|(org_id, seq, hash)| {
            let mut stmt = conn.prepare_cached(crate::audit::MOVE_HEAD)?;
            stmt.execute(rusqlite::params![hash, seq, org_id]).map(drop)
        });
        if let Err(e) = moved {
            return ready(Err(native_error(e)));
        }
        let seen = crate::util::now();
        let written = self.tally.iter_mut().try_for_each(|(org_id, agents)| {
            agents.drain().try_for_each(|(agent_id, t)| {
                let mut stmt = self.conn.prepare_cached(crate::actions::ADD_AGENT_COUNTS)?;
                stmt.execute(rusqlite::params![
                    org_id, agent_id, t.name, seen, seen, t.approved, t.denied, t.pending,
                ])
                .map(drop)
            })
        });
        ready(written.map_err(native_error))
    }
}
