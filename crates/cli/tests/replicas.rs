//! Several `ascend serve` replicas on one PostgreSQL: a waiter on replica A wakes when
//! replica B records the decision (LISTEN/NOTIFY), and bundles follow kill switches.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Server, high};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_a_wakes_when_b_approves() {
    let a = Server::start(Backend::Postgres).await;
    let b = a.replica().await;
    let agent = a.key(&a.admin, "agent").await;
    let approver = b.key(&b.admin, "approver").await;
    for round in 0..3 {
        let id = a.submit(&agent, high("rep", &format!("b{round}"))).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let waiter = {
            let r = a.req(
                Method::GET,
                &format!("/api/v1/actions/{id}/status?wait=30"),
                &agent,
            );
            tokio::spawn(async move {
                let r = r.send().await.unwrap();
                (r.json::<Value>().await.unwrap(), Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (st, _) = b
            .post(
                &format!("/api/v1/actions/{id}/approve"),
                &approver,
                json!({"comment": "from b"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let approved_at = Instant::now();
        let (v, answered_at) = waiter.await.unwrap();
        assert_eq!(v["status"], "approved", "{v}");
        let lag = answered_at.saturating_duration_since(approved_at);
        assert!(
            lag < Duration::from_secs(2),
            "replica A answered {lag:?} after B's approval"
        );
    }
    // Kill switch on B: A's bundle waiter wakes, A's submits are denied.
    let resp = a
        .req(Method::GET, "/api/v1/bundle?agent_id=rep", &agent)
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let waiter = {
        let r = a
            .req(Method::GET, "/api/v1/bundle?agent_id=rep&wait=30", &agent)
            .header("If-None-Match", etag);
        tokio::spawn(async move {
            let t = Instant::now();
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap(), t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.post(
        "/api/v1/agents/rep/block",
        &b.admin,
        json!({"reason": "from b"}),
    )
    .await;
    let (st, v, took) = waiter.await.unwrap();
    assert_eq!(
        (st, v["agent"]["blocked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(a.submit(&agent, high("rep", "x")).await["status"], "denied");
    // One chain across replicas.
    let (_, v) = b.get("/api/v1/audit/verify", &b.admin).await;
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_on_two_replicas_keep_one_valid_chain() {
    let a = Server::start(Backend::Postgres).await;
    let b = a.replica().await;
    let agent = a.key(&a.admin, "agent").await;
    let mut tasks = Vec::new();
    for (w, url) in [a.url.clone(), b.url.clone(), a.url.clone(), b.url.clone()]
        .into_iter()
        .enumerate()
    {
        let (client, key) = (a.client.clone(), agent.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..40 {
                let body = if i % 4 == 0 {
                    high(&format!("cc{w}"), &format!("b{i}"))
                } else {
                    common::low(&format!("cc{w}"))
                };
                let r = client
                    .post(format!("{url}/api/v1/actions/submit"))
                    .header("X-API-Key", &key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                ok += 1;
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let (_, v) = b.get("/api/v1/audit/verify", &b.admin).await;
    assert_eq!(v, json!({"valid": true, "events": total}));
    let (_, v) = a.get("/api/v1/agents", &a.admin).await;
    let counted: i64 = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            x["counts"]["approved"].as_i64().unwrap()
                + x["counts"]["pending_approval"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(counted, total);
}
