//! The [`Governor`]: what a front end asks before it sends an AWS call.
//!
//! [`Governor::prepare`] is the fast, synchronous part: bypass, the local decision with
//! the last policy bundle, the `act_` id. Only a call that needs the platform (approval,
//! or no bundle yet) comes back as a [`PlatformJob`], which [`Governor::resolve`] (async)
//! or [`Governor::resolve_blocking`] finishes on the governor's own runtime, so it works
//! from any thread and from any async runtime.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ascend_core::{Call, Decision, OperationName, PolicyEngine, Verdict, decide};
use rustc_hash::FxHashMap;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

mod remote;
mod ruling;

pub use ruling::{Decided, GovernanceDenied, Ruling, Source};

use crate::audit::{AuditCounters, CallOutcome, Inbox, OutcomeStatus, Queued, Uploader};
use crate::bundle::{BundleCell, BundleState, poll};
use crate::config::Config;
use crate::ids::action_id_at;
use crate::platform::{Platform, PlatformError};

/// One AWS call about to be sent. Names in any spelling (`s3`/`DeleteBucket`).
#[derive(Debug, Clone)]
pub struct CallRequest<'a> {
    pub service: &'a str,
    pub operation: &'a str,
    pub params: Value,
    pub region: &'a str,
}

/// A call the platform must decide; finish it with [`Governor::resolve`].
#[derive(Debug)]
pub struct PlatformJob {
    name: Arc<OperationName>,
    params: Value,
    region: String,
    decision: Decision,
    action_id: String,
    started: Instant,
}

/// What [`Governor::prepare`] found.
#[derive(Debug)]
pub enum Prepared {
    /// Not governed: send it, record nothing.
    Bypass,
    /// Decided here.
    Done(Ruling),
    /// Needs the platform.
    Platform(PlatformJob),
}

/// Counters for tests, benchmarks and health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests made while a governed call waited (submit, status polls).
    pub sync_requests: u64,
    pub events_queued: u64,
    pub events_uploaded: u64,
    pub events_spilled: u64,
    pub events_dropped: u64,
    pub on_disk: u64,
    pub in_memory: u64,
    /// How many bundles arrived.
    pub bundle_version: u64,
    pub has_bundle: bool,
    pub blocked: bool,
    pub circuit_open: bool,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    agent_id: Arc<str>,
    agent_name: Arc<str>,
    platform: Arc<Platform>,
    bundle: Arc<BundleCell>,
    inbox: Arc<Inbox>,
    counters: Arc<AuditCounters>,
    /// Canonical names by the front end's spelling, service then operation (looked up
    /// without allocating; FxHash: the keys are the SDKs' operation names, a bounded
    /// set), each with its last decision of a call without parameters.
    names: RwLock<FxHashMap<String, FxHashMap<String, Arc<Known>>>>,
    handle: tokio::runtime::Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    stop: watch::Sender<bool>,
    empty_engine: PolicyEngine,
    /// The process that started the runtime.
    pid: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            if std::process::id() == self.pid {
                runtime.shutdown_background();
            } else {
                // A forked child: the runtime's threads live only in the parent.
                std::mem::forget(runtime);
            }
        }
    }
}

/// An operation the governor has seen.
#[derive(Debug)]
struct Known {
    name: Arc<OperationName>,
    /// The decision of its last call without parameters (`{}`).
    memo: Mutex<Option<Memo>>,
}

/// `decide` is pure: for the same operation, empty parameters, region and bundle (which
/// carries the settings, the policies and the block), it gives the same decision. Calls
/// without parameters (`list_buckets`, `describe_regions`, …) are the most frequent ones,
/// so the last such decision is kept and reused while the bundle stays the same.
#[derive(Debug)]
struct Memo {
    /// The bundle it was decided with, held so that its address cannot be reused.
    bundle: Option<Arc<BundleState>>,
    region: String,
    /// Without `reasons` (neither rulings nor submissions read them).
    decision: Decision,
}

impl Memo {
    fn matches(&self, bundle: &Option<Arc<BundleState>>, region: &str) -> bool {
        let same_bundle = match (&self.bundle, bundle) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_bundle && self.region == region
    }
}

/// Governs AWS calls for one agent. Cheap to clone; all clones share one state.
#[derive(Debug, Clone)]
pub struct Governor {
    inner: Arc<Inner>,
}

/// Why a governor could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("API key required")]
    MissingKey,
    #[error("cannot start the governor's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

impl Governor {
    /// Starts the background bundle poll and audit uploader on a runtime of its own.
    /// Does not wait for the first bundle: see [`Governor::ready`].
    pub fn new(config: Config) -> Result<Self, StartError> {
        if config.api_key.trim().is_empty() {
            return Err(StartError::MissingKey);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ascend-client")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let platform = {
            let _guard = handle.enter();
            Arc::new(Platform::new(&config)?)
        };
        let bundle = Arc::new(BundleCell::new());
        let counters = Arc::new(AuditCounters::default());
        let inbox = Arc::new(Inbox::default());
        let (stop, stop_rx) = watch::channel(false);
        // The catalog loads on first use; load it now, beside the first bundle fetch, so
        // the first governed call does not pay for it.
        handle.spawn_blocking(|| {
            ascend_core::catalog();
        });
        let uploader = Uploader::new(platform.clone(), inbox.clone(), &config, counters.clone());
        handle.spawn(uploader.run());
        handle.spawn(poll(
            platform.clone(),
            bundle.clone(),
            config.agent_id.clone(),
            config.settings.clone(),
            config.bundle_wait,
            stop_rx,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                agent_id: config.agent_id.as_str().into(),
                agent_name: config.agent_name.as_str().into(),
                config,
                platform,
                bundle,
                inbox,
                counters,
                names: RwLock::new(FxHashMap::default()),
                handle,
                runtime: Mutex::new(Some(runtime)),
                stop,
                empty_engine: PolicyEngine::empty(),
                pid: std::process::id(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn agent_id(&self) -> &str {
        &self.inner.agent_id
    }

    /// Waits until the first policy bundle arrived or the first attempt to get one
    /// failed, up to `timeout`. `true` if a bundle is here.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.bundle.subscribe();
        let wait = async move {
            rx.wait_for(|(ok, failed)| *ok > 0 || *failed > 0)
                .await
                .is_ok_and(|p| p.0 > 0)
        };
        let task = self.inner.handle.spawn(wait);
        tokio::time::timeout(timeout, task)
            .await
            .is_ok_and(|r| r.unwrap_or(false))
    }

    /// [`Governor::ready`] for threads outside any async runtime.
    pub fn wait_ready_blocking(&self, timeout: Duration) -> bool {
        let this = self.clone();
        self.block_on(async move { this.ready(timeout).await })
            .unwrap_or(false)
    }

    fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().ok()
    }

    fn known(&self, service: &str, operation: &str) -> Arc<Known> {
        let names = &self.inner.names;
        if let Some(known) = names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
            .and_then(|ops| ops.get(operation))
        {
            return known.clone();
        }
        let known = Arc::new(Known {
            name: Arc::new(OperationName::from_parts(service, operation)),
            memo: Mutex::new(None),
        });
        let mut names = names.write().unwrap_or_else(|e| e.into_inner());
        let ops = names.entry(service.to_string()).or_default();
        if ops.len() > 10_000 {
            ops.clear();
        }
        ops.insert(operation.to_string(), known.clone());
        known
    }

    /// [`decide`], or the memo of the same call without parameters (see [`Memo`]).
    fn decide(
        &self,
        known: &Known,
        call: &Call<'_>,
        bundle: &Option<Arc<BundleState>>,
        settings: &ascend_core::Settings,
        engine: &PolicyEngine,
        blocked: Option<&str>,
    ) -> Decision {
        let memoable = call.params.as_object().is_some_and(|m| m.is_empty());
        if !memoable {
            return decide(call, settings, engine, blocked);
        }
        // Contended (another thread deciding the same operation): decide here instead.
        if let Ok(memo) = known.memo.try_lock()
            && let Some(memo) = memo.as_ref()
            && memo.matches(bundle, call.region)
        {
            return memo.decision.clone();
        }
        let decision = decide(call, settings, engine, blocked);
        if let Ok(mut memo) = known.memo.try_lock() {
            *memo = Some(Memo {
                bundle: bundle.clone(),
                region: call.region.to_string(),
                decision: Decision {
                    reasons: Vec::new(),
                    ..decision.clone()
                },
            });
        }
        decision
    }

    /// The synchronous part of governing a call: no network, no waiting.
    pub fn prepare(&self, request: CallRequest<'_>) -> Prepared {
        let CallRequest {
            service,
            operation,
            params,
            region,
        } = request;
        self.prepare_with(service, operation, region, || params)
    }

    /// [`Governor::prepare`] for a front end whose parameters cost something to read: they
    /// are read only for a call that is governed (not for a bypassed service or operation).
    pub fn prepare_with(
        &self,
        service: &str,
        operation: &str,
        region: &str,
        params: impl FnOnce() -> Value,
    ) -> Prepared {
        let inner = &self.inner;
        let known = self.known(service, operation);
        let name = &known.name;
        if inner.config.settings.bypasses(name) {
            return Prepared::Bypass;
        }
        let started = Instant::now();
        let params = params();
        let bundle = inner.bundle.get();
        let (engine, blocked, settings) = match &bundle {
            Some(b) => (b.engine.as_ref(), b.blocked.as_deref(), &b.settings),
            None => (None, None, &inner.config.settings),
        };
        let call = Call {
            agent_id: &inner.agent_id,
            name,
            params: &params,
            region,
        };
        let decision = self.decide(
            &known,
            &call,
            &bundle,
            settings,
            engine.unwrap_or(&inner.empty_engine),
            blocked,
        );
        let now = SystemTime::now();
        let action_id = action_id_at(now);
        let local = engine.is_some() || decision.dry_run;
        if !local || (decision.verdict == Verdict::NeedsApproval && !decision.dry_run) {
            return Prepared::Platform(PlatformJob {
                name: name.clone(),
                params,
                region: region.to_string(),
                decision,
                action_id,
                started,
            });
        }
        let decided = match decision.verdict {
            Verdict::Allow | Verdict::Bypass => Decided::Approved,
            Verdict::Deny => Decided::Denied,
            Verdict::NeedsApproval if inner.config.approval_timeout.is_zero() => Decided::Pending,
            Verdict::NeedsApproval => Decided::Denied,
        };
        let mut decision = decision;
        let reason = if decision.dry_run && decision.verdict == Verdict::NeedsApproval {
            format!("{} (dry run: not submitted for approval)", decision.reason)
        } else {
            std::mem::take(&mut decision.reason)
        };
        let policy_ids = std::mem::take(&mut decision.policy_ids);
        Prepared::Done(self.local_ruling(
            name,
            params,
            region,
            &decision,
            policy_ids,
            decided,
            reason,
            action_id,
            Source::Local,
            None,
            started,
            now,
        ))
    }

    /// A ruling decided here (with the bundle, or by the fail mode), with its audit event:
    /// queued now when the call does not run, else finished by [`Governor::finish`].
    #[allow(clippy::too_many_arguments)]
    fn local_ruling(
        &self,
        name: &Arc<OperationName>,
        params: Value,
        region: &str,
        decision: &Decision,
        policy_ids: Vec<String>,
        decided: Decided,
        reason: String,
        action_id: String,
        source: Source,
        warning: Option<String>,
        started: Instant,
        decided_time: SystemTime,
    ) -> Ruling {
        let inner = &self.inner;
        let executes = decided == Decided::Approved || decision.dry_run;
        // A drained event, refilled: its strings keep their capacity (see `Inbox`).
        let mut event = inner.inbox.event(&inner.agent_id, &inner.agent_name);
        event.action_id.push_str(&action_id);
        if !Arc::ptr_eq(&event.name, name) {
            event.name = name.clone();
        }
        event.parameters = params;
        event.region.push_str(region);
        event.decision = decided.as_str();
        event.risk_score = decision.risk_score;
        event.risk_level = decision.risk_level.as_str();
        event.reason.push_str(&reason);
        event.policy_ids.clone_from(&policy_ids);
        event.dry_run = decision.dry_run;
        event.timestamp = decided_time;
        event.outcome = CallOutcome::not_executed();
        // One clock read for both the decision's latency and the start of the call's.
        let decided_at = Instant::now();
        let audit = if executes {
            Some(event)
        } else {
            self.queue(Queued::Event(event));
            None
        };
        Ruling {
            action_id,
            name: name.clone(),
            decided,
            executes,
            risk_score: decision.risk_score,
            risk_level: decision.risk_level,
            reason,
            policy_ids,
            dry_run: decision.dry_run,
            source,
            warning,
            governance_latency: decided_at.saturating_duration_since(started),
            audit,
            decided_at,
        }
    }

    fn queue(&self, item: Queued) {
        if matches!(item, Queued::Event(_)) {
            self.inner.counters.queued.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.inbox.push(item);
    }

    /// Decides one call, asking the platform only when it must.
    pub async fn check(&self, request: CallRequest<'_>) -> Option<Ruling> {
        match self.prepare(request) {
            Prepared::Bypass => None,
            Prepared::Done(ruling) => Some(ruling),
            Prepared::Platform(job) => Some(self.resolve(job).await),
        }
    }

    /// [`Governor::check`] for threads outside any async runtime.
    pub fn check_blocking(&self, request: CallRequest<'_>) -> Option<Ruling> {
        match self.prepare(request) {
            Prepared::Bypass => None,
            Prepared::Done(ruling) => Some(ruling),
            Prepared::Platform(job) => Some(self.resolve_blocking(job)),
        }
    }

    /// Records how an executed call ended: an audit event for a locally decided call,
    /// `POST /actions/{id}/result` for a platform-decided one. Never blocks.
    pub fn finish(&self, ruling: Ruling, mut outcome: CallOutcome) {
        let latency_ms = outcome
            .latency_ms
            .unwrap_or_else(|| ruling.decided_at.elapsed().as_secs_f64() * 1000.0);
        outcome.latency_ms = Some(latency_ms);
        if let Some(mut event) = ruling.audit {
            event.outcome = outcome;
            self.queue(Queued::Event(event));
        } else if ruling.source == Source::Platform && ruling.executes {
            let status = match outcome.status {
                OutcomeStatus::Failed => "failed",
                _ => "succeeded",
            };
            self.queue(Queued::Result {
                action_id: ruling.action_id,
                body: json!({
                    "status": status,
                    "error_code": outcome.error_code,
                    "latency_ms": latency_ms,
                }),
            });
        }
    }

    /// Uploads everything queued, waiting up to `timeout`. `true` when nothing is left.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        self.inner.inbox.push(Queued::Flush(tx));
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(true)))
    }

    /// [`Governor::flush`] for threads outside any async runtime.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        let this = self.clone();
        self.block_on(async move { this.flush(timeout).await })
            .unwrap_or(false)
    }

    /// Flushes (up to `timeout`), stops the background tasks, and keeps whatever could
    /// not be sent on disk for the next process. `true` when nothing was left.
    pub fn close_blocking(&self, timeout: Duration) -> bool {
        let _ = self.inner.stop.send(true);
        let (tx, rx) = oneshot::channel();
        self.inner.inbox.push(Queued::Shutdown(tx));
        self.block_on(async move { tokio::time::timeout(timeout, rx).await })
            .is_some_and(|r| matches!(r, Ok(Ok(true))))
    }

    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let bundle = self.inner.bundle.get();
        Stats {
            sync_requests: self.inner.platform.sync_requests.load(Ordering::Relaxed),
            events_queued: c.queued.load(Ordering::Relaxed),
            events_uploaded: c.uploaded.load(Ordering::Relaxed),
            events_spilled: c.spilled.load(Ordering::Relaxed),
            events_dropped: c.dropped.load(Ordering::Relaxed),
            on_disk: c.on_disk.load(Ordering::Relaxed),
            in_memory: c.in_memory.load(Ordering::Relaxed),
            bundle_version: self.inner.bundle.version(),
            has_bundle: bundle.is_some(),
            blocked: bundle.as_ref().is_some_and(|b| b.blocked.is_some()),
            circuit_open: self.inner.platform.breaker.is_open(),
        }
    }
}
