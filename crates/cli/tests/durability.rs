//! Storage guarantees on SQLite: an acknowledged submit survives `kill -9`, a row edited
//! by hand breaks the audit chain where it was edited, and writes through the writer's two
//! connections (submits on its own, uploads and reviews on sqlx's) keep one chain.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Server, high, low};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_acknowledged_action() {
    kill_9_during_a_burst("full").await;
}

/// `normal` answers before the disk has the commit; the operating system still has it,
/// so `kill -9` loses nothing acknowledged there either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_acknowledged_action_with_synchronous_normal() {
    kill_9_during_a_burst("normal").await;
}

async fn kill_9_during_a_burst(synchronous: &str) {
    let mut s = Server::start_with(Backend::Sqlite, &["--sqlite-synchronous", synchronous]).await;
    assert!(
        s.log_text()
            .contains(&format!("(sqlite, synchronous = {synchronous})")),
        "{}",
        s.log_tail()
    );
    let agent = s.key(&s.admin, "agent").await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, url, key, acked) = (
            s.client.clone(),
            s.url.clone(),
            agent.clone(),
            acked.clone(),
        );
        workers.push(tokio::spawn(async move {
            for i in 0..2_000 {
                if Instant::now() > deadline {
                    break;
                }
                let body = if i % 3 == 0 {
                    high(&format!("burst-{w}"), &format!("b{i}"))
                } else {
                    low(&format!("burst-{w}"))
                };
                let sent = client
                    .post(format!("{url}/api/v1/actions/submit"))
                    .header("X-API-Key", &key)
                    .json(&body)
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                if resp.status() != StatusCode::OK {
                    break;
                }
                let Ok(v) = resp.json::<Value>().await else {
                    break;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(v["id"].as_str().unwrap().to_string());
            }
        }));
    }
    // Let the burst run, then kill -9 in the middle of it.
    for _ in 0..100 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill9();
    for w in workers {
        let _ = w.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "too few submits before the kill: {}",
        acked.len()
    );
    s.spawn().await;
    let mut stored = HashSet::new();
    for offset in (0..).step_by(100).take(200) {
        let (_, v) = s
            .get(
                &format!("/api/v1/actions?limit=100&offset={offset}"),
                &s.admin,
            )
            .await;
        let page = v["actions"].as_array().unwrap().clone();
        stored.extend(page.iter().map(|a| a["id"].as_str().unwrap().to_string()));
        if page.len() < 100 {
            break;
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged actions lost after kill -9: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let (_, v) = s.get("/api/v1/audit/verify", &s.admin).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["events"].as_u64().unwrap() as usize, stored.len());
}

/// Submits go through the writer's own connection, which remembers each chain head;
/// uploads and approvals go through sqlx's. Interleaved and concurrent, they must still
/// make one unbroken chain whose head the database holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_writer_connections_append_to_one_chain() {
    let s = Arc::new(Server::start(Backend::Sqlite).await);
    let agent = s.key(&s.admin, "agent").await;
    let approver = s.key(&s.admin, "approver").await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (s, agent, approver) = (s.clone(), agent.clone(), approver.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                if i % 4 == 0 {
                    let v = s
                        .submit(&agent, high(&format!("mix-{w}"), &format!("b{i}")))
                        .await;
                    let id = v["id"].as_str().unwrap();
                    let (st, _) = s
                        .post(
                            &format!("/api/v1/actions/{id}/approve"),
                            &approver,
                            json!({}),
                        )
                        .await;
                    assert_eq!(st, StatusCode::OK);
                } else {
                    s.submit(&agent, low(&format!("mix-{w}"))).await;
                }
            }
        }));
    }
    for w in 0..2 {
        let (s, agent) = (s.clone(), agent.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let events: Vec<Value> = (0..3)
                    .map(|j| {
                        json!({"action_id": format!("up-{w}-{i}-{j}"), "agent_id": "uploader",
                        "service": "s3", "operation": "list_buckets", "decision": "approved",
                        "risk_score": 10, "risk_level": "low", "reason": "local",
                        "timestamp": "2026-01-01T00:00:00Z"})
                    })
                    .collect();
                let (st, v) = s
                    .post("/api/v1/audit/events", &agent, json!({"events": events}))
                    .await;
                assert_eq!((st, v["accepted"].as_u64()), (StatusCode::OK, Some(3)));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 4 × 40 submits, 4 × 10 approvals, 2 × 20 × 3 uploaded events.
    let expected = 160 + 40 + 120;
    assert_eq!(verify(&s).await, json!({"valid": true, "events": expected}));
    let mut db = s.open_sqlite().await;
    let (seq, head, last): (i64, String, String) = sqlx::query_as(
        "SELECT o.audit_seq, o.audit_head, e.hash FROM orgs o JOIN audit_events e \
         ON e.org_id = o.id AND e.seq = (SELECT MAX(seq) FROM audit_events WHERE org_id = o.id)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!((seq, head), (expected, last));
    // And the next submit, after all that, still links on.
    s.submit(&agent, low("mix-after")).await;
    assert_eq!(
        verify(&s).await,
        json!({"valid": true, "events": expected + 1})
    );
}

/// A steady stream of writes never gives the background checkpointer a moment when the
/// whole WAL is copied, so without the writer checkpointing itself the WAL never starts
/// over and grows by pages per submit (4,000 submits here: 52 MB). With it, the WAL
/// holds at most ~1,000 pages (~4 MiB) and a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_a_steady_stream_of_submits() {
    let s = Arc::new(Server::start_with(Backend::Sqlite, &["--rate-limit", "0"]).await);
    let agent = s.key(&s.admin, "agent").await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (s, agent) = (s.clone(), agent.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                s.submit(&agent, low(&format!("stream-{w}"))).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wal = std::fs::metadata(s.data_path("ascend.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal <= 6 << 20,
        "the WAL grew to {wal} bytes over 4,000 submits"
    );
    assert_eq!(verify(&s).await, json!({"valid": true, "events": 4_000}));
}

async fn verify(s: &Server) -> Value {
    s.get("/api/v1/audit/verify", &s.admin).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_row_edited_by_hand() {
    let s = Server::start(Backend::Sqlite).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = if i == 2 { high("t1", "b") } else { low("t1") };
        ids.push(
            s.submit(&s.admin, body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(verify(&s).await, json!({"valid": true, "events": 5}));
    let mut db = s.open_sqlite().await;
    // Rewrite history: the pending HIGH call (event 3) now reads approved.
    sqlx::query("UPDATE audit_events SET body = replace(body, 'pending_approval', 'approved') WHERE seq = 3")
        .execute(&mut db).await.unwrap();
    let v = verify(&s).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["events"], 2);
    assert_eq!(v["first_broken"], ids[2].as_str());
    assert!(v["detail"].as_str().unwrap().contains("event 3"));
    let out = s.cli(&["audit", "verify", "--url", &s.url, "--api-key", &s.admin]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    sqlx::query("UPDATE audit_events SET body = replace(body, '\"decision\":\"approved\"', '\"decision\":\"pending_approval\"') WHERE seq = 3")
        .execute(&mut db).await.unwrap();
    assert_eq!(
        verify(&s).await["valid"],
        true,
        "restoring the row restores the chain"
    );
    // Editing only a column that the body also holds is caught too.
    sqlx::query("UPDATE audit_events SET decision = 'denied' WHERE seq = 4")
        .execute(&mut db)
        .await
        .unwrap();
    let v = verify(&s).await;
    assert_eq!(
        (v["valid"].as_bool(), v["first_broken"].as_str()),
        (Some(false), Some(ids[3].as_str()))
    );
    sqlx::query("UPDATE audit_events SET decision = 'approved' WHERE seq = 4")
        .execute(&mut db)
        .await
        .unwrap();
    // Deleting the last event is caught by the head.
    sqlx::query("DELETE FROM audit_events WHERE seq = 5")
        .execute(&mut db)
        .await
        .unwrap();
    let v = verify(&s).await;
    assert_eq!(v["valid"], false, "{v}");
    let (st, _) = s.call(Method::GET, "/healthz", "", Value::Null).await;
    assert_eq!(st, StatusCode::OK);
}

/// Verification while agents keep submitting: events appended during the walk are left
/// for the next one, never reported as a chain cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_stays_valid_while_events_are_appended() {
    let s = Arc::new(Server::start(Backend::Sqlite).await);
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    s.submit(&s.admin, low(&format!("busy-{i}"))).await;
                }
            })
        })
        .collect();
    let mut checks = 0;
    while !writers.iter().all(|w| w.is_finished()) && checks < 300 {
        let v = verify(&s).await;
        assert_eq!(v["valid"], true, "after {checks} good checks: {v}");
        checks += 1;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(checks > 5, "only {checks} checks overlapped the submits");
    assert_eq!(verify(&s).await, json!({"valid": true, "events": 400}));
}
