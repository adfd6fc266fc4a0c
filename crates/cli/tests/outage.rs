//! Outage seen by a Rust agent: the platform is stopped for a while (not restarted at
//! once) under a running agent thread that governs calls through `ascend_client::Governor`.
//! While it is away, calls follow the fail modes (LOW decided locally from the cached
//! bundle, HIGH denied: fail closed), audit events go to the disk queue once the memory
//! part is full, and the memory part stays within its limit. When the platform is back on
//! the same address, every queued event is uploaded: none lost, none stored twice.
//!
//! Prints `FIGURE` lines for `docs/reliability.md`:
//! `cargo nextest run -p ascend --test outage --no-capture`.

mod common;
mod reliability;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ascend_client::{CallOutcome, CallRequest, Config, Decided, Governor, Source, Stats};
use common::{Backend, Server};
use reliability::{audit_export, events_by_action, verify};
use serde_json::json;

/// Events the client keeps in memory before it spills to disk (small, so the outage
/// below overflows it many times).
const MEMORY_LIMIT: usize = 40;
const OUTAGE: Duration = Duration::from_secs(4);
/// Pause between two governed calls of the agent thread.
const CALL_GAP: Duration = Duration::from_millis(2);

/// One governed call as the agent saw it.
#[derive(Debug, Clone)]
struct Seen {
    action_id: String,
    high: bool,
    decided: Decided,
    source: Source,
    during_outage: bool,
}

fn call(governor: &Governor, i: usize) -> (bool, ascend_client::Ruling) {
    let high = i.is_multiple_of(4);
    let bucket = format!("outage-{i}");
    let request = if high {
        CallRequest {
            service: "s3",
            operation: "delete_bucket",
            params: json!({"Bucket": bucket}),
            region: "us-east-1",
        }
    } else {
        CallRequest {
            service: "s3",
            operation: "list_objects_v2",
            params: json!({"Bucket": bucket}),
            region: "us-east-1",
        }
    };
    let ruling = governor
        .check_blocking(request)
        .expect("governed, not bypassed");
    (high, ruling)
}

/// Lines and bytes waiting in the client's queue files.
fn queued(dir: &Path) -> (usize, usize) {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .fold((0, 0), |(lines, bytes), text| {
                    (lines + text.lines().count(), bytes + text.len())
                })
        })
        .unwrap_or((0, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_platform_under_a_running_rust_agent_loses_no_audit_event() {
    let mut s = Server::start(Backend::Sqlite).await;
    let agent_key = s.key(&s.admin, "agent").await;
    let queue = tempfile::tempdir().expect("queue dir");
    let mut config = Config::new(&agent_key, &s.url, "outage-rust");
    config.queue_dir = Some(queue.path().to_path_buf());
    config.memory_queue_limit = MEMORY_LIMIT;
    config.approval_timeout = Duration::ZERO;
    config.request_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_millis(500);
    config.tool_name = "aws-sdk-rust".into();
    let governor = Governor::new(config).expect("governor");
    assert!(governor.ready(Duration::from_secs(10)).await, "no bundle");

    // The agent: a plain thread governing calls back to back until told to stop.
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let outage = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let agent = {
        let (governor, seen, outage, stop) =
            (governor.clone(), seen.clone(), outage.clone(), stop.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let during_outage = outage.load(Ordering::Relaxed);
                let (high, ruling) = call(&governor, i);
                seen.lock().unwrap().push(Seen {
                    action_id: ruling.action_id.clone(),
                    high,
                    decided: ruling.decided,
                    source: ruling.source,
                    during_outage,
                });
                if ruling.executes {
                    governor.finish(ruling, CallOutcome::succeeded());
                }
                std::thread::sleep(CALL_GAP);
            }
        })
    };
    let calls = || seen.lock().unwrap().len();
    let wait_for_calls = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while calls() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for_calls(50);

    // Stop the platform (SIGTERM) and keep it away while the agent keeps calling.
    assert!(s.terminate().is_some(), "ascend serve did not stop");
    let port = s.port();
    outage.store(true, Ordering::Relaxed);
    let (mut max_memory, mut max_disk, mut max_files, mut max_bytes) = (0u64, 0u64, 0usize, 0usize);
    let away = Instant::now();
    while away.elapsed() < OUTAGE {
        let stats: Stats = governor.stats();
        max_memory = max_memory.max(stats.in_memory);
        max_disk = max_disk.max(stats.on_disk);
        let (lines, bytes) = queued(queue.path());
        max_files = max_files.max(lines);
        max_bytes = max_bytes.max(bytes);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during: Vec<Seen> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.during_outage)
        .cloned()
        .collect();
    outage.store(false, Ordering::Relaxed);

    // Back on the same address; the agent keeps running a little longer.
    s.spawn_at(port).await;
    let before = calls();
    wait_for_calls(before + 50);
    stop.store(true, Ordering::Relaxed);
    agent.join().expect("the agent thread panicked");
    assert!(
        governor.flush(Duration::from_secs(60)).await,
        "queued events not uploaded after recovery: {:?}",
        governor.stats()
    );
    let stats = governor.stats();

    // Fail modes while away: LOW from the cached bundle, HIGH denied (fail closed).
    let (low_away, high_away): (Vec<&Seen>, Vec<&Seen>) = during.iter().partition(|c| !c.high);
    assert!(
        low_away.len() >= 100 && !high_away.is_empty(),
        "too few calls during the outage: {} LOW, {} HIGH",
        low_away.len(),
        high_away.len()
    );
    for c in &low_away {
        assert_eq!(
            (c.decided, c.source),
            (Decided::Approved, Source::Local),
            "{c:?}"
        );
    }
    // (`during_outage` is read before a call starts, after the stop returned.)
    for c in &high_away {
        assert_eq!(
            (c.decided, c.source),
            (Decided::Denied, Source::FailMode),
            "{c:?}"
        );
    }

    // Memory stayed within its limit while the disk queue took the rest.
    assert!(
        max_memory <= MEMORY_LIMIT as u64,
        "{max_memory} events in memory, limit {MEMORY_LIMIT}"
    );
    assert!(
        max_disk > MEMORY_LIMIT as u64 && max_files > MEMORY_LIMIT,
        "the outage should have spilled past the memory limit: on_disk {max_disk}, lines in files {max_files}"
    );
    assert_eq!(
        (stats.in_memory, stats.on_disk, stats.events_dropped),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(queued(queue.path()), (0, 0), "queue files left behind");

    // Every locally decided call is in the audit log exactly once; every platform-decided
    // one is stored as an action.
    let seen = seen.lock().unwrap().clone();
    let lines = audit_export(&s).await;
    let by_action = events_by_action(&lines);
    let (mut lost, mut duplicated, mut local) = (Vec::new(), Vec::new(), 0usize);
    for c in &seen {
        let kind = if c.source == Source::Platform {
            "decision"
        } else {
            local += 1;
            "local"
        };
        match by_action
            .get(&(kind.to_string(), c.action_id.clone()))
            .map(Vec::len)
        {
            None => lost.push(c.clone()),
            Some(1) => {}
            Some(_) => duplicated.push(c.clone()),
        }
    }
    let recorded_local = by_action.keys().filter(|(k, _)| k == "local").count();
    println!(
        "FIGURE rust-agent calls {}  during the outage {} ({} LOW approved locally, {} HIGH denied by fail mode)",
        seen.len(),
        during.len(),
        low_away.len(),
        high_away.len()
    );
    println!(
        "FIGURE rust-agent local events {local}  uploaded after recovery, lost {}  duplicated {}  max in memory {max_memory} (limit {MEMORY_LIMIT})  max on disk {max_disk} ({max_bytes} bytes, {} bytes per event)",
        lost.len(),
        duplicated.len(),
        max_bytes / max_files.max(1)
    );
    assert!(
        lost.is_empty(),
        "{} lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(duplicated.is_empty(), "{duplicated:?}");
    assert_eq!(recorded_local, local, "local events the agent never made");
    assert_eq!(verify(&s).await["valid"], true);
}
