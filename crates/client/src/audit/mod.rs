//! Audit events of locally decided calls and outcomes of platform-decided ones: queued by
//! the call path (never blocking it), uploaded in batches by a background task, spilled to
//! an append-only JSON Lines file while the platform is away or memory is full, and
//! uploaded from there once it is back. Uploads are idempotent by `action_id`, so a file
//! sent twice (a crash between upload and truncate) costs duplicates the server skips,
//! never a lost event.

mod spool;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ascend_core::OperationName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::platform::{Platform, PlatformError};
use spool::{Item, Spool, owner_tag};

/// How an executed (or refused) call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
    NotExecuted,
}

/// The outcome reported for a call: status, AWS error code, latency of the AWS call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome {
    pub status: OutcomeStatus,
    pub error_code: Option<String>,
    /// `None`: measured by the governor, from the ruling to [`crate::Governor::finish`].
    pub latency_ms: Option<f64>,
}

impl CallOutcome {
    pub fn succeeded() -> Self {
        Self {
            status: OutcomeStatus::Succeeded,
            error_code: None,
            latency_ms: None,
        }
    }

    pub fn failed(error_code: impl Into<String>) -> Self {
        Self {
            status: OutcomeStatus::Failed,
            error_code: Some(error_code.into()),
            latency_ms: None,
        }
    }

    pub fn not_executed() -> Self {
        Self {
            status: OutcomeStatus::NotExecuted,
            error_code: None,
            latency_ms: None,
        }
    }
}

/// One locally decided call, as `POST /api/v1/audit/events` takes it. `parameters` are
/// redacted before the event leaves memory.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub action_id: String,
    pub agent_id: Arc<str>,
    pub agent_name: Arc<str>,
    /// Shared with the governor's name table: refilling an event for the same operation
    /// copies nothing.
    pub name: Arc<OperationName>,
    pub parameters: Value,
    pub region: String,
    pub decision: &'static str,
    pub risk_score: u8,
    pub risk_level: &'static str,
    pub reason: String,
    pub policy_ids: Vec<String>,
    pub dry_run: bool,
    pub timestamp: SystemTime,
    pub outcome: CallOutcome,
}

impl AuditEvent {
    /// An empty event of an agent, with room for typical ids, names and reasons.
    pub(crate) fn empty(agent_id: &Arc<str>, agent_name: &Arc<str>) -> Self {
        Self {
            action_id: String::with_capacity(32),
            agent_id: agent_id.clone(),
            agent_name: agent_name.clone(),
            name: Arc::new(OperationName {
                service: String::new(),
                operation: String::new(),
            }),
            parameters: Value::Null,
            region: String::with_capacity(16),
            decision: "",
            risk_score: 0,
            risk_level: "",
            reason: String::with_capacity(64),
            policy_ids: Vec::new(),
            dry_run: false,
            timestamp: SystemTime::UNIX_EPOCH,
            outcome: CallOutcome::not_executed(),
        }
    }
}

impl AuditEvent {
    /// Empties the event for reuse, keeping the capacity of its strings (and its name,
    /// which the next call usually shares).
    fn clear(&mut self) {
        self.action_id.clear();
        self.parameters = Value::Null;
        self.region.clear();
        self.reason.clear();
        self.policy_ids.clear();
        self.outcome = CallOutcome::not_executed();
    }

    /// The event as `POST /api/v1/audit/events` takes it, appended to `out` as one JSON
    /// object (serialized straight from the event: no intermediate `Value`).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        #[derive(Serialize)]
        struct Wire<'a> {
            action_id: &'a str,
            agent_id: &'a str,
            agent_name: &'a str,
            service: &'a str,
            operation: &'a str,
            parameters: &'a Value,
            region: &'a str,
            decision: &'a str,
            risk_score: u8,
            risk_level: &'a str,
            reason: &'a str,
            policy_ids: &'a [String],
            dry_run: bool,
            timestamp: &'a str,
            outcome: &'a CallOutcome,
        }
        let timestamp = time::OffsetDateTime::from(self.timestamp)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        // Redaction copies the parameters; there are none to copy for most calls.
        let redacted;
        let parameters = if self.parameters.is_null()
            || self.parameters.as_object().is_some_and(|m| m.is_empty())
        {
            &self.parameters
        } else {
            redacted = ascend_core::redact(&self.parameters);
            &redacted
        };
        let wire = Wire {
            action_id: &self.action_id,
            agent_id: &self.agent_id,
            agent_name: &self.agent_name,
            service: &self.name.service,
            operation: &self.name.operation,
            parameters,
            region: &self.region,
            decision: self.decision,
            risk_score: self.risk_score,
            risk_level: self.risk_level,
            reason: &self.reason,
            policy_ids: &self.policy_ids,
            dry_run: self.dry_run,
            timestamp: &timestamp,
            outcome: &self.outcome,
        };
        // Writing to a Vec fails only on a serializer bug; the event is left out then.
        let start = out.len();
        if serde_json::to_writer(&mut *out, &wire).is_err() {
            out.truncate(start);
        }
    }

    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        let mut out = Vec::new();
        self.write_json(&mut out);
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }
}

/// What travels from the call path to the uploader.
#[derive(Debug)]
pub(crate) enum Queued {
    Event(Box<AuditEvent>),
    Result { action_id: String, body: Value },
    Flush(oneshot::Sender<bool>),
    Shutdown(oneshot::Sender<bool>),
}

/// Where the call path leaves items for the uploader: a mutex-guarded `Vec`, so queueing
/// an event wakes no other thread (a wake-up per call costs a syscall and, on a busy
/// machine, a context switch). The uploader drains it on its tick; flushes, shutdowns and
/// a full batch wake it at once.
///
/// Nothing the call path allocates for an event is freed by the uploader: the uploader
/// hands drained events back ([`Inbox::recycle`]) and the call path fills them again
/// ([`Inbox::event`]), reusing their strings; the queue's buffer is swapped, not regrown.
/// With the system allocator, memory freed by another thread than the one that allocates
/// it keeps the allocating thread off its fast path and takes the allocator's locks on
/// every call; that cost more than the rest of a governed call's bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    items: Mutex<Vec<Queued>>,
    wake: Notify,
    #[allow(
        clippy::vec_box,
        reason = "the boxes themselves are reused: they travel as `Queued::Event`"
    )]
    spare: Mutex<Vec<Box<AuditEvent>>>,
}

/// Drained events kept for reuse, at most.
const SPARE_EVENTS: usize = 4 * BATCH;

impl Inbox {
    pub(crate) fn push(&self, item: Queued) {
        let urgent = matches!(item, Queued::Flush(_) | Queued::Shutdown(_));
        let len = {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            items.push(item);
            items.len()
        };
        if urgent || len == BATCH {
            self.wake.notify_one();
        }
    }

    /// Everything queued, in `buffer` (which must be empty; its capacity becomes the
    /// queue's next buffer).
    fn take(&self, buffer: &mut Vec<Queued>) {
        debug_assert!(buffer.is_empty());
        std::mem::swap(
            &mut *self.items.lock().unwrap_or_else(|e| e.into_inner()),
            buffer,
        );
    }

    /// An empty event of this agent to fill: a drained one when there is one (its strings
    /// keep their capacity), else a new one. Emptied here, by the thread that fills it:
    /// the uploader only reads an event, so its memory is not written from two cores in
    /// turn.
    pub(crate) fn event(&self, agent_id: &Arc<str>, agent_name: &Arc<str>) -> Box<AuditEvent> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(mut event) => {
                event.clear();
                if !Arc::ptr_eq(&event.agent_id, agent_id) {
                    event.agent_id = agent_id.clone();
                }
                if !Arc::ptr_eq(&event.agent_name, agent_name) {
                    event.agent_name = agent_name.clone();
                }
                event
            }
            None => Box::new(AuditEvent::empty(agent_id, agent_name)),
        }
    }

    /// Gives drained events back for [`Inbox::event`], as they are.
    #[allow(clippy::vec_box, reason = "the boxes themselves are reused")]
    fn recycle(&self, events: &mut Vec<Box<AuditEvent>>) {
        if events.is_empty() {
            return;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let room = SPARE_EVENTS.saturating_sub(spare.len());
        let keep = events.len().min(room);
        spare.extend(events.drain(..keep));
        drop(spare);
        events.clear();
    }
}

/// Counters a caller (and the tests) can read.
#[derive(Debug, Default)]
pub(crate) struct AuditCounters {
    pub queued: AtomicU64,
    pub uploaded: AtomicU64,
    pub spilled: AtomicU64,
    pub dropped: AtomicU64,
    pub on_disk: AtomicU64,
    pub in_memory: AtomicU64,
}

const BATCH: usize = 500;
/// Serialized size after which a batch is sent (the platform refuses bodies over 1 MiB).
const BATCH_BYTES: usize = 512 * 1024;
const BASE_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) struct Uploader {
    platform: Arc<Platform>,
    inbox: Arc<Inbox>,
    /// The inbox's other buffer (see [`Inbox::take`]).
    drained: Vec<Queued>,
    /// Events converted, to hand back to the inbox.
    #[allow(clippy::vec_box, reason = "the boxes themselves are reused")]
    converted: Vec<Box<AuditEvent>>,
    pending: Vec<Item>,
    spool: Spool,
    counters: Arc<AuditCounters>,
    memory_limit: usize,
    interval: Duration,
    backoff: Duration,
    retry_at: Option<Instant>,
    waiters: Vec<oneshot::Sender<bool>>,
    /// Events dropped since the queue file last filled up: warned about once when it
    /// fills, summed up once when the platform has taken the file.
    dropped_while_full: u64,
}

impl Uploader {
    pub(crate) fn new(
        platform: Arc<Platform>,
        inbox: Arc<Inbox>,
        config: &crate::Config,
        counters: Arc<AuditCounters>,
    ) -> Self {
        let spool = Spool::new(
            config.resolved_queue_dir(),
            owner_tag(config.base(), &config.api_key),
            config.disk_queue_limit,
        );
        counters
            .on_disk
            .store(spool.pending_lines(), Ordering::Relaxed);
        Self {
            platform,
            inbox,
            drained: Vec::new(),
            converted: Vec::new(),
            pending: Vec::new(),
            spool,
            counters,
            memory_limit: config.memory_queue_limit.max(1),
            interval: config.upload_interval,
            backoff: BASE_BACKOFF,
            retry_at: None,
            waiters: Vec::new(),
            dropped_while_full: 0,
        }
    }

    fn take(&mut self, message: Queued) -> Option<oneshot::Sender<bool>> {
        match message {
            Queued::Event(event) => {
                if let Some(item) = Item::event(&event) {
                    self.pending.push(item);
                }
                self.converted.push(event);
            }
            Queued::Result { action_id, body } => {
                self.pending.push(Item::Result { action_id, body });
            }
            Queued::Flush(tx) => {
                self.waiters.push(tx);
                self.retry_at = None;
            }
            Queued::Shutdown(tx) => return Some(tx),
        }
        None
    }

    fn spill(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.pending);
        match self.spool.append(&items) {
            Ok(written) => {
                self.counters
                    .spilled
                    .fetch_add(written as u64, Ordering::Relaxed);
                let dropped = (items.len() - written) as u64;
                if dropped > 0 {
                    self.counters.dropped.fetch_add(dropped, Ordering::Relaxed);
                    // Once per time the file fills, not on every tick while it stays full.
                    if self.dropped_while_full == 0 {
                        log::warn!(
                            "ascend: the audit queue file {} is full ({} bytes, \
                             disk_queue_limit); audit events are dropped (counted in \
                             events_dropped) until the platform takes the queue",
                            self.spool.own_path().display(),
                            self.spool.own_bytes()
                        );
                    }
                    self.dropped_while_full += dropped;
                }
            }
            Err(error) => {
                log::warn!(
                    "ascend: cannot write the audit queue under {}: {error}; keeping events in memory",
                    self.spool.dir().display()
                );
                self.pending = items;
            }
        }
    }

    fn publish(&self) {
        self.counters
            .in_memory
            .store(self.pending.len() as u64, Ordering::Relaxed);
        self.counters
            .on_disk
            .store(self.spool.pending_lines(), Ordering::Relaxed);
    }

    /// Sends `items`; `Err` with the ones not sent when the platform is away.
    async fn send(&self, items: Vec<Item>) -> Result<(), (PlatformError, Vec<Item>)> {
        let mut events = Vec::new();
        let mut body: Vec<u8> = Vec::new();
        let mut rest = items.into_iter().peekable();
        while let Some(item) = rest.next() {
            match item {
                Item::Event { event } => {
                    // One JSON body, built as events come, bounded in count and size so it
                    // stays under the platform's 1 MiB request limit.
                    body.push(if events.is_empty() { b'[' } else { b',' });
                    body.extend_from_slice(event.as_bytes());
                    events.push(event);
                    let next_is_event = matches!(rest.peek(), Some(Item::Event { .. }));
                    if events.len() >= BATCH || body.len() >= BATCH_BYTES || !next_is_event {
                        let batch = std::mem::take(&mut events);
                        let mut json = Vec::with_capacity(body.len() + 12);
                        json.extend_from_slice(b"{\"events\":");
                        json.append(&mut body);
                        json.extend_from_slice(b"]}");
                        if let Err(error) = self.platform.upload_events(json).await {
                            if permanent(&error) {
                                log::warn!(
                                    "ascend: audit batch of {} refused: {error}",
                                    batch.len()
                                );
                                self.counters
                                    .dropped
                                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                                continue;
                            }
                            let mut unsent: Vec<Item> = batch
                                .into_iter()
                                .map(|event| Item::Event { event })
                                .collect();
                            unsent.extend(rest);
                            return Err((error, unsent));
                        }
                        self.counters
                            .uploaded
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
                Item::Result { action_id, body } => {
                    match self.platform.post_result(&action_id, &body).await {
                        Ok(_) => {}
                        Err(error) if permanent(&error) || is_conflict(&error) => {
                            log::warn!("ascend: result of {action_id} refused: {error}");
                        }
                        Err(error) => {
                            let mut unsent = vec![Item::Result { action_id, body }];
                            unsent.extend(rest);
                            return Err((error, unsent));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Disk first (oldest), then memory. `true` when nothing is left anywhere.
    async fn attempt(&mut self) -> bool {
        // Adopted files of dead processes.
        while let Some(items) = self.spool.oldest_adopted() {
            if let Err((error, _)) = self.send(items).await {
                log::debug!("ascend: audit upload deferred: {error}");
                return false;
            }
            self.spool.remove_oldest_adopted();
        }
        if let Some(items) = self.spool.own_items() {
            if let Err((error, _)) = self.send(items).await {
                log::debug!("ascend: audit upload deferred: {error}");
                return false;
            }
            self.spool.clear_own();
            if self.dropped_while_full > 0 {
                log::warn!(
                    "ascend: the platform took the audit queue file {}; {} audit events \
                     were dropped while it was full",
                    self.spool.own_path().display(),
                    self.dropped_while_full
                );
                self.dropped_while_full = 0;
            }
        }
        let items = std::mem::take(&mut self.pending);
        match self.send(items).await {
            Ok(()) => true,
            Err((error, unsent)) => {
                log::debug!("ascend: audit upload deferred: {error}");
                self.pending = unsent;
                false
            }
        }
    }

    fn answer_waiters(&mut self, done: bool) {
        if done {
            // The counters first: a caller reading stats after a flush sees them settled.
            self.publish();
            for waiter in self.waiters.drain(..) {
                let _ = waiter.send(true);
            }
        } else {
            self.waiters.retain(|w| !w.is_closed());
        }
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.spool.is_empty()
    }

    pub(crate) async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.inbox.wake.notified() => {}
                _ = ticker.tick() => {}
            }
            let mut shutdown = None;
            let mut drained = std::mem::take(&mut self.drained);
            self.inbox.take(&mut drained);
            for message in drained.drain(..) {
                if let Some(done) = self.take(message) {
                    shutdown = Some(done);
                }
            }
            if drained.capacity() > 4 * BATCH {
                drained.shrink_to(4 * BATCH);
            }
            self.drained = drained;
            self.inbox.recycle(&mut self.converted);
            if self.pending.len() >= self.memory_limit {
                self.spill();
            }
            if let Some(done) = shutdown {
                // Durable first: whatever the caller's timeout cuts short (a platform that
                // accepts connections and never answers), the events are on disk for the
                // next process. Then try to send everything.
                self.spill();
                let ok = self.is_empty() || self.attempt().await;
                self.answer_waiters(ok);
                self.publish();
                self.spool.close_if_empty();
                let _ = done.send(ok);
                return;
            }
            let due = self.retry_at.is_none_or(|at| Instant::now() >= at);
            if self.is_empty() {
                self.answer_waiters(true);
            } else if due {
                if self.attempt().await {
                    self.backoff = BASE_BACKOFF;
                    self.retry_at = None;
                    self.answer_waiters(true);
                } else {
                    // The platform is away: keep everything on disk until it is back.
                    self.spill();
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.answer_waiters(false);
                }
            } else {
                self.spill();
            }
            self.publish();
        }
    }
}

fn permanent(error: &PlatformError) -> bool {
    matches!(
        error,
        PlatformError::Http {
            status: 400 | 413 | 422,
            ..
        }
    )
}

fn is_conflict(error: &PlatformError) -> bool {
    matches!(error, PlatformError::Http { status: 409, .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_written_as_the_platform_takes_them_and_recycled_empty() {
        let event = AuditEvent {
            action_id: "act_1".into(),
            agent_id: Arc::from("agent-1"),
            agent_name: Arc::from("Agent"),
            name: Arc::new(OperationName {
                service: "s3".into(),
                operation: "get_object".into(),
            }),
            parameters: json!({"Bucket": "b", "SecretString": "hunter2"}),
            region: "us-east-1".into(),
            decision: "approved",
            risk_score: 20,
            risk_level: "low",
            reason: "low risk (20): auto-approved".into(),
            policy_ids: vec!["p1".into()],
            dry_run: false,
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
            outcome: CallOutcome::failed("NoSuchKey"),
        };
        let json = event.to_json();
        assert_eq!(json["action_id"], "act_1");
        assert_eq!(json["agent_id"], "agent-1");
        assert_eq!(json["parameters"]["Bucket"], "b");
        assert_eq!(json["parameters"]["SecretString"], ascend_core::REDACTED);
        assert_eq!(json["timestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(json["outcome"]["status"], "failed");
        assert_eq!(json["outcome"]["error_code"], "NoSuchKey");
        assert_eq!(json["policy_ids"], json!(["p1"]));
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 15, "{keys:?}");

        // A spooled event reads back as the same text.
        let item = Item::event(&event).unwrap();
        let mut line = Vec::new();
        item.write_line(&mut line).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(Item::parse_line(line.trim_end()), Some(item));

        let capacity = event.reason.capacity();
        let inbox = Inbox::default();
        let mut drained = vec![Box::new(event)];
        inbox.recycle(&mut drained);
        assert!(drained.is_empty());
        let (agent_id, agent_name) = (Arc::from("agent-2"), Arc::from("Agent 2"));
        let event = inbox.event(&agent_id, &agent_name);
        assert!(event.action_id.is_empty() && event.reason.is_empty());
        assert!(event.parameters.is_null() && event.policy_ids.is_empty());
        assert_eq!(event.outcome, CallOutcome::not_executed());
        assert_eq!(event.reason.capacity(), capacity, "strings keep their room");
        assert_eq!(&*event.agent_id, "agent-2");
        let fresh = inbox.event(&agent_id, &agent_name);
        assert_eq!(fresh.reason.capacity(), 64, "then new ones");
        assert_eq!(&*fresh.agent_name, "Agent 2");
    }
}
