//! Crash suite: `kill -9` of `ascend serve` in the middle of a bounded load from several
//! clients — submits (LOW auto-approved, HIGH pending), approvals and rejections of the
//! pending ones, and audit uploads — then a restart on the same store. Every acknowledged
//! operation must be stored exactly once, every acknowledged decision must read as
//! acknowledged, and the audit chain must verify. On SQLite and on PostgreSQL.
//!
//! Prints `FIGURE` lines (acknowledged / lost / duplicated per kind) for
//! `docs/reliability.md`: `cargo nextest run -p ascend --test crash --no-capture`.

mod common;
mod reliability;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Server, high, low};
use reliability::{all_actions, audit_export, events_by_action, figure, verify};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SUBMITTERS: usize = 4;
const APPROVERS: usize = 2;
const UPLOADERS: usize = 2;
const UPLOAD_BATCH: usize = 20;
/// The kill falls once this many requests were acknowledged (or after `KILL_AFTER`).
const KILL_AT_ACKS: usize = 400;
const KILL_AFTER: Duration = Duration::from_secs(10);

/// What the clients were told, before the kill.
#[derive(Default)]
struct Acked {
    /// Submits: action id → status answered.
    submits: HashMap<String, String>,
    /// Approvals and rejections: action id → `approved` / `denied`.
    decisions: HashMap<String, String>,
    /// Uploaded local events: action ids of batches answered 200.
    uploads: Vec<String>,
    /// Operations sent and not answered (the kill fell on them).
    unanswered: usize,
}

impl Acked {
    /// Acknowledged requests (an upload batch counts once).
    fn requests(&self) -> usize {
        self.submits.len() + self.decisions.len() + self.uploads.len() / UPLOAD_BATCH
    }
}

type Shared = Arc<Mutex<Acked>>;

struct Load {
    client: reqwest::Client,
    url: String,
    deadline: Instant,
    acked: Shared,
    pending: Arc<Mutex<VecDeque<String>>>,
}

impl Load {
    async fn post(&self, path: &str, key: &str, body: &Value) -> Option<Value> {
        let sent = self
            .client
            .post(format!("{}{path}", self.url))
            .header("X-API-Key", key)
            .timeout(Duration::from_secs(20))
            .json(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(_) => {
                self.acked.lock().unwrap().unanswered += 1;
                return None;
            }
        };
        let status = resp.status();
        let body: Option<Value> = resp.json().await.ok();
        match (status, body) {
            (StatusCode::OK, Some(v)) => Some(v),
            (status, body) => {
                // An answer that is neither an acknowledgement nor the kill: the load
                // itself is wrong, and the figures would mean nothing.
                assert!(
                    status.is_server_error() || body.is_none(),
                    "{path} answered {status}: {body:?}"
                );
                self.acked.lock().unwrap().unanswered += 1;
                None
            }
        }
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }
}

async fn submitter(load: Arc<Load>, key: String, worker: usize) {
    for i in 0..5_000u32 {
        if !load.running() {
            return;
        }
        let agent = format!("crash-{worker}");
        let body = if i.is_multiple_of(2) {
            high(&agent, &format!("crash-{worker}-{i}"))
        } else {
            low(&agent)
        };
        let Some(v) = load.post("/api/v1/actions/submit", &key, &body).await else {
            return;
        };
        let id = v["id"].as_str().expect("id").to_string();
        let status = v["status"].as_str().expect("status").to_string();
        if status == "pending_approval" {
            load.pending.lock().unwrap().push_back(id.clone());
        }
        load.acked.lock().unwrap().submits.insert(id, status);
    }
}

async fn approver(load: Arc<Load>, key: String, worker: usize) {
    for i in 0..20_000 {
        if !load.running() {
            return;
        }
        let next = load.pending.lock().unwrap().pop_front();
        let Some(id) = next else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let (verb, decided) = if (i + worker).is_multiple_of(3) {
            ("reject", "denied")
        } else {
            ("approve", "approved")
        };
        let path = format!("/api/v1/actions/{id}/{verb}");
        match load.post(&path, &key, &json!({})).await {
            Some(v) => {
                assert_eq!(v["status"], decided, "{verb} answered {v}");
                load.acked
                    .lock()
                    .unwrap()
                    .decisions
                    .insert(id, decided.to_string());
            }
            // No answer: the platform is gone.
            None => return,
        }
    }
}

async fn uploader(load: Arc<Load>, key: String, worker: usize, run: u64) {
    for batch in 0..2_000 {
        if !load.running() {
            return;
        }
        let ids: Vec<String> = (0..UPLOAD_BATCH)
            .map(|i| format!("act_crash{run:x}w{worker}b{batch}e{i}"))
            .collect();
        let events: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"action_id": id, "agent_id": format!("crash-up-{worker}"),
                       "service": "s3", "operation": "list_buckets", "parameters": {},
                       "region": "us-east-1", "decision": "approved", "risk_score": 5,
                       "risk_level": "low", "reason": "local", "dry_run": false,
                       "outcome": {"status": "succeeded", "error_code": null, "latency_ms": 1.0}})
            })
            .collect();
        let Some(v) = load
            .post("/api/v1/audit/events", &key, &json!({"events": events}))
            .await
        else {
            return;
        };
        assert_eq!(v["accepted"], UPLOAD_BATCH, "{v}");
        load.acked.lock().unwrap().uploads.extend(ids);
    }
}

async fn kill_mid_load(backend: Backend) {
    let name = format!("{backend:?}");
    let mut s = Server::start(backend).await;
    let agent = s.key(&s.admin, "agent").await;
    let approver_key = s.key(&s.admin, "approver").await;
    let load = Arc::new(Load {
        client: s.client.clone(),
        url: s.url.clone(),
        deadline: Instant::now() + KILL_AFTER + Duration::from_secs(20),
        acked: Shared::default(),
        pending: Arc::default(),
    });
    let run: u64 = rand::random();
    let mut tasks = Vec::new();
    for w in 0..SUBMITTERS {
        tasks.push(tokio::spawn(submitter(load.clone(), agent.clone(), w)));
    }
    for w in 0..APPROVERS {
        tasks.push(tokio::spawn(approver(
            load.clone(),
            approver_key.clone(),
            w,
        )));
    }
    for w in 0..UPLOADERS {
        tasks.push(tokio::spawn(uploader(load.clone(), agent.clone(), w, run)));
    }
    // Kill -9 in the middle: once enough was acknowledged, while every client is busy.
    let started = Instant::now();
    while started.elapsed() < KILL_AFTER && load.acked.lock().unwrap().requests() < KILL_AT_ACKS {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.kill9();
    for t in tasks {
        t.await.expect("a load client panicked");
    }
    let acked = std::mem::take(&mut *load.acked.lock().unwrap());
    assert!(
        !acked.submits.is_empty() && !acked.decisions.is_empty() && !acked.uploads.is_empty(),
        "the kill fell before every kind of operation was acknowledged: {} submits, {} decisions, {} uploads",
        acked.submits.len(),
        acked.decisions.len(),
        acked.uploads.len()
    );

    s.spawn().await;
    let lines = audit_export(&s).await;
    let by_action = events_by_action(&lines);
    let actions = all_actions(&s).await;
    // Events of one kind for one action: `decision` (the submit), `approval` /
    // `rejection` (a person), `local` (an upload).
    let events = |kind: &str, id: &str| {
        by_action
            .get(&(kind.to_string(), id.to_string()))
            .cloned()
            .unwrap_or_default()
    };

    // Submits: the action exists, audited once, as the status acknowledged.
    let (mut lost, mut duplicated, mut wrong) = (Vec::new(), Vec::new(), Vec::new());
    for (id, status) in &acked.submits {
        let audited = events("decision", id);
        if !actions.contains_key(id) || audited.is_empty() {
            lost.push(id.clone());
        } else if audited.len() > 1 {
            duplicated.push(id.clone());
        } else if audited[0]["decision"] != status.as_str() {
            wrong.push(format!(
                "{id}: acknowledged {status}, audited {}",
                audited[0]
            ));
        }
    }
    println!(
        "{}",
        figure(
            &name,
            "submits",
            acked.submits.len(),
            lost.len(),
            duplicated.len()
        )
    );
    assert!(lost.is_empty(), "acknowledged submits lost: {lost:?}");
    assert!(
        duplicated.is_empty(),
        "submits audited twice: {duplicated:?}"
    );
    assert!(wrong.is_empty(), "{wrong:?}");

    // Decisions: the action reads as acknowledged, and the person's decision is audited
    // once.
    let (mut lost, mut duplicated) = (Vec::new(), Vec::new());
    for (id, decided) in &acked.decisions {
        let kind = if decided == "approved" {
            "approval"
        } else {
            "rejection"
        };
        let audited = events(kind, id);
        let stored = actions.get(id).map(|a| a["status"].clone());
        if stored != Some(json!(decided)) || audited.is_empty() {
            lost.push(format!(
                "{id}: acknowledged {decided}, stored {stored:?}, audited {audited:?}"
            ));
        } else if audited.len() > 1 {
            duplicated.push(id.clone());
        } else {
            assert_eq!(audited[0]["decision"], decided.as_str(), "{id}");
        }
    }
    println!(
        "{}",
        figure(
            &name,
            "decisions",
            acked.decisions.len(),
            lost.len(),
            duplicated.len()
        )
    );
    assert!(lost.is_empty(), "acknowledged decisions lost: {lost:?}");
    assert!(
        duplicated.is_empty(),
        "decisions audited twice: {duplicated:?}"
    );

    // Uploads: one `local` event per action id.
    let (mut lost, mut duplicated) = (Vec::new(), Vec::new());
    for id in &acked.uploads {
        match events("local", id).len() {
            0 => lost.push(id.clone()),
            1 => {}
            _ => duplicated.push(id.clone()),
        }
    }
    println!(
        "{}",
        figure(
            &name,
            "uploads",
            acked.uploads.len(),
            lost.len(),
            duplicated.len()
        )
    );
    assert!(lost.is_empty(), "acknowledged uploads lost: {lost:?}");
    assert!(
        duplicated.is_empty(),
        "uploads stored twice: {duplicated:?}"
    );

    // Whether or not its answer arrived, no action is audited twice for one step, and no
    // action was both approved and rejected.
    let twice: Vec<_> = by_action
        .iter()
        .filter(|(_, e)| e.len() > 1)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(twice.is_empty(), "{twice:?}");
    let both: Vec<_> = by_action
        .keys()
        .filter(|(kind, id)| {
            kind == "approval" && by_action.contains_key(&("rejection".to_string(), id.clone()))
        })
        .collect();
    assert!(both.is_empty(), "{both:?}");
    println!(
        "FIGURE {name:<10} in flight at the kill (sent, unanswered): {}; audit events after restart: {}",
        acked.unanswered,
        lines.len()
    );

    let v = verify(&s).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["events"].as_u64(), Some(lines.len() as u64), "{v}");

    // The restarted platform takes work again and the chain still verifies.
    let after = s.submit(&agent, low("crash-after")).await;
    assert_eq!(after["status"], "approved", "{after}");
    assert_eq!(verify(&s).await["valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_loses_and_duplicates_nothing_on_sqlite() {
    kill_mid_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_loses_and_duplicates_nothing_on_postgres() {
    kill_mid_load(Backend::Postgres).await;
}
