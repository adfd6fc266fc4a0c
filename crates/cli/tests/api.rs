//! The API suite. Every case runs twice: on SQLite (temp dir) and on PostgreSQL (a fresh
//! database per case), each against its own real `ascend serve` on loopback.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Backend, Server, high, low};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

suite!(
    health_metrics_openapi,
    submit_both_shapes_rescored,
    client_flags_stricter_wins,
    policies_validate_enforce_and_test,
    approve_wakes_long_poll_and_second_decision_conflicts,
    reject_reads_denied_everywhere,
    approval_grant_is_used_once,
    kill_switch_and_bundle_long_poll,
    agent_registry_counts,
    agent_counts_add_up_in_a_burst,
    keys_create_list_revoke_at_once,
    list_filters_and_agent_visibility,
    audit_upload_export_verify_and_redaction,
    result_is_recorded,
    pending_actions_expire,
    cross_org_isolation,
    bad_input_is_422_and_changes_nothing,
    body_over_1mib_is_413,
    rate_limit_is_429,
    compat_routes_and_auth_headers,
    sigterm_finishes_in_flight_requests,
);

async fn health_metrics_openapi(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = s.get("/healthz", "").await;
    assert_eq!((st, v), (StatusCode::OK, json!({"status": "ok"})));
    s.submit(&s.admin, low("m1")).await;
    let text = s.metrics_text().await;
    assert!(text.contains("ascend_decisions_total"), "{text}");
    // Histogram samples are folded by a thread of their own, not kept until a scrape.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", s.pid()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    assert!(
        threads.iter().any(|name| name.trim() == "ascend-metrics"),
        "no metrics upkeep thread among {threads:?}"
    );
    let (st, api) = s.get("/openapi.json", "").await;
    assert_eq!(st, StatusCode::OK);
    for path in [
        "/api/v1/actions/submit",
        "/api/v1/actions/{id}/status",
        "/api/v1/audit/verify",
        "/api/v1/bundle",
        "/api/v1/keys",
    ] {
        assert!(api["paths"].get(path).is_some(), "openapi lacks {path}");
    }
}

async fn submit_both_shapes_rescored(b: Backend) {
    let s = Server::start(b).await;
    let agent = s.key(&s.admin, "agent").await;
    let v = s.submit(&agent, low("a1")).await;
    assert_eq!(v["status"], "approved");
    assert_eq!(v["risk_level"], "low");
    assert_eq!(v["id"], v["action_id"]);
    assert!(v["id"].as_str().unwrap().starts_with("act_"));
    assert!(v.get("decision").is_none());
    // A client score is ignored; the SDK shape and `s3:DeleteBucket` spelling work.
    let v = s
        .submit(
            &agent,
            json!({"action_type": "s3:DeleteBucket", "resource": "b1",
        "action_details": {"Bucket": "b1"}, "agent_id": "a1", "risk_score": 3}),
        )
        .await;
    assert_eq!(
        (
            v["status"].as_str(),
            v["risk_score"].as_i64(),
            v["risk_level"].as_str()
        ),
        (Some("pending_approval"), Some(75), Some("high"))
    );
    assert_eq!(v["requires_approval"], true);
    assert_eq!(v["approval_request_id"], v["id"]);
    assert_eq!(v["alert_triggered"], true);
    assert!(v["alert_id"].as_str().unwrap().starts_with("alr_"));
    assert!(v["summary"].as_str().unwrap().contains("awaits approval"));
    // A taxonomy label is scored by its verb, MEDIUM when unsure.
    let v = s
        .submit(
            &agent,
            json!({"action_type": "database_write", "resource": "customer_db", "agent_id": "a1"}),
        )
        .await;
    assert_eq!(v["status"], "pending_approval");
    assert!(matches!(v["risk_level"].as_str(), Some("medium")), "{v}");
    // CRITICAL.
    let v = s.submit(&agent, json!({"action_type": "iam.create_user", "parameters": {"UserName": "x"}, "agent_id": "a1"})).await;
    assert_eq!(v["risk_level"], "critical");
    // The client's own id is used when well formed and unused.
    let id = "act_01J9ZZZZZZZZZZZZZZZZZZZZZZ";
    let v = s
        .submit(
            &agent,
            json!({"action_type": "s3.get_object", "parameters": {"Bucket": "b", "Key": "k"},
        "agent_id": "a1", "client_action_id": id}),
        )
        .await;
    assert_eq!(v["id"], id);
}

async fn client_flags_stricter_wins(b: Backend) {
    let s = Server::start(b).await;
    let mut body = low("f1");
    body["auto_approve_low_risk"] = json!(false);
    assert_eq!(s.submit(&s.admin, body).await["status"], "pending_approval");
    let v = s
        .submit(
            &s.admin,
            json!({"action_type": "s3.put_object", "parameters": {"Bucket": "b", "Key": "k"},
        "agent_id": "f1", "auto_approve_medium_risk": true}),
        )
        .await;
    assert_eq!(
        (v["risk_level"].as_str(), v["status"].as_str()),
        (Some("medium"), Some("pending_approval"))
    );
}

async fn put_policies(s: &Server, key: &str, text: &str) -> (StatusCode, Value) {
    let r = s
        .req(Method::PUT, "/api/v1/policies", key)
        .header("Content-Type", "text/plain")
        .body(text.to_string());
    let resp = r.send().await.unwrap();
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

const FORBID_DELETE: &str = r#"@id("no-bucket-delete") @reason("Bucket deletion is forbidden here")
forbid(principal, action == Action::"s3:DeleteBucket", resource);"#;

async fn policies_validate_enforce_and_test(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = put_policies(
        &s,
        &s.admin,
        "permit(principal, action == Action::\"s3:DeleteBucket\", resource)\n  when { nonsense };",
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["errors"][0]["line"].as_u64().is_some(), "{v}");
    assert!(v["detail"].is_string() && v["error_code"].is_string() && v["timestamp"].is_string());
    let (st, v) = put_policies(&s, &s.admin, FORBID_DELETE).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = s.submit(&s.admin, high("p1", "b")).await;
    assert_eq!(v["status"], "denied");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("Bucket deletion is forbidden here")
    );
    assert_eq!(v["policy_ids"], json!(["no-bucket-delete"]));
    let (_, full) = s
        .get(
            &format!("/api/v1/actions/{}", v["id"].as_str().unwrap()),
            &s.admin,
        )
        .await;
    assert_eq!(full["policy_ids"], json!(["no-bucket-delete"]));
    let text = s
        .req(Method::GET, "/api/v1/policies", &s.admin)
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, FORBID_DELETE);
    let (_, v) = s.get("/api/v1/policies", &s.admin).await;
    assert_eq!(v["policy_ids"], json!(["no-bucket-delete"]));
    let (st, v) = s
        .post(
            "/api/v1/policies/test",
            &s.admin,
            json!({"action_type": "s3:DeleteBucket", "parameters": {"Bucket": "x"}}),
        )
        .await;
    assert_eq!(
        (st, v["verdict"].as_str()),
        (StatusCode::OK, Some("deny")),
        "{v}"
    );
    let (st, _) = put_policies(&s, &s.admin, "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s.submit(&s.admin, high("p1", "b")).await["status"],
        "pending_approval"
    );
}

async fn approve_wakes_long_poll_and_second_decision_conflicts(b: Backend) {
    let s = Server::start(b).await;
    let (agent, approver) = (
        s.key(&s.admin, "agent").await,
        s.key(&s.admin, "approver").await,
    );
    let id = s.submit(&agent, high("w1", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Without wait: at once, still pending.
    let t = Instant::now();
    let (_, v) = s.get(&format!("/api/v1/actions/{id}/status"), &agent).await;
    assert_eq!(v["status"], "pending_approval");
    assert!(t.elapsed() < Duration::from_secs(2));
    let waiter = {
        let (client, url, agent, id) = (s.client.clone(), s.url.clone(), agent.clone(), id.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let v: Value = client
                .get(format!("{url}/api/v1/actions/{id}/status?wait=30"))
                .header("X-API-Key", agent)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (v, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, v) = s
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            &approver,
            json!({"comment": "fine"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (v, waited) = waiter.await.unwrap();
    assert_eq!(v["status"], "approved");
    assert!(
        waited < Duration::from_secs(5),
        "the long-poll took {waited:?}"
    );
    assert!(v["approved_by"].as_str().unwrap().contains("approver key"));
    assert_eq!(v["comment"], "fine");
    assert!(v["decided_at"].is_string());
    let (st, v) = s
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            &approver,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, _) = s
        .post(
            &format!("/api/v1/actions/{id}/reject"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
}

async fn reject_reads_denied_everywhere(b: Backend) {
    let s = Server::start(b).await;
    let approver = s.key(&s.admin, "approver").await;
    let id = s.submit(&s.admin, high("r1", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = s
        .post(
            &format!("/api/v1/actions/{id}/reject"),
            &approver,
            json!({"reason": "not today"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = s
        .get(&format!("/api/v1/actions/{id}/status"), &s.admin)
        .await;
    assert_eq!(v["status"], "denied");
    assert!(v["reason"].as_str().unwrap().contains("not today"));
    assert!(v["rejected_by"].is_string());
    let (_, v) = s.get(&format!("/api/v1/actions/{id}"), &s.admin).await;
    assert_eq!(v["status"], "denied");
    let (_, list) = s.get("/api/v1/actions?status=denied", &s.admin).await;
    assert_eq!(list["total"], 1);
}

async fn approval_grant_is_used_once(b: Backend) {
    let s = Server::start(b).await;
    let agent = s.key(&s.admin, "agent").await;
    let first = s.submit(&agent, high("g1", "gb")).await;
    let id = first["id"].as_str().unwrap();
    let (st, _) = s
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Other parameters or another agent: no grant.
    assert_eq!(
        s.submit(&agent, high("g1", "other")).await["status"],
        "pending_approval"
    );
    assert_eq!(
        s.submit(&agent, high("g2", "gb")).await["status"],
        "pending_approval"
    );
    let again = s.submit(&agent, high("g1", "gb")).await;
    assert_eq!(again["status"], "approved", "{again}");
    assert_eq!(again["granted_from"], id);
    assert_ne!(again["id"], first["id"]);
    assert_eq!(
        s.submit(&agent, high("g1", "gb")).await["status"],
        "pending_approval"
    );
}

async fn kill_switch_and_bundle_long_poll(b: Backend) {
    let s = Server::start(b).await;
    let agent = s.key(&s.admin, "agent").await;
    assert_eq!(s.submit(&agent, low("k1")).await["status"], "approved");
    let (st, v) = s
        .post(
            "/api/v1/agents/k1/block",
            &s.admin,
            json!({"reason": "incident 42"}),
        )
        .await;
    assert_eq!((st, v["blocked"].as_bool()), (StatusCode::OK, Some(true)));
    let v = s.submit(&agent, low("k1")).await;
    assert_eq!(v["status"], "denied");
    assert!(v["reason"].as_str().unwrap().contains("incident 42"));
    assert!(v["summary"].as_str().unwrap().contains("incident 42"));
    let resp = s
        .req(Method::GET, "/api/v1/bundle?agent_id=k1", &agent)
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let bundle: Value = resp.json().await.unwrap();
    assert_eq!(bundle["agent"]["blocked"], true);
    assert_eq!(bundle["etag"], etag);
    // Current ETag: 304 after the wait.
    let t = Instant::now();
    let resp = s
        .req(Method::GET, "/api/v1/bundle?agent_id=k1&wait=1", &agent)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(t.elapsed() >= Duration::from_millis(900));
    // A change returns the wait early.
    let waiter = {
        let r = s
            .req(Method::GET, "/api/v1/bundle?agent_id=k1&wait=30", &agent)
            .header("If-None-Match", &etag);
        tokio::spawn(async move {
            let t = Instant::now();
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap(), t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, _) = s
        .post("/api/v1/agents/k1/unblock", &s.admin, Value::Null)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v, took) = waiter.await.unwrap();
    assert_eq!(
        (st, v["agent"]["blocked"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(s.submit(&agent, low("k1")).await["status"], "approved");
    // Stale ETag: at once.
    let resp = s
        .req(Method::GET, "/api/v1/bundle?agent_id=k1&wait=30", &agent)
        .header("If-None-Match", "\"b-old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn agent_registry_counts(b: Backend) {
    let s = Server::start(b).await;
    s.submit(&s.admin, low("c1")).await;
    s.submit(&s.admin, low("c1")).await;
    let id = s.submit(&s.admin, high("c1", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = s.get("/api/v1/agents/c1", &s.admin).await;
    assert_eq!(
        v["counts"],
        json!({"approved": 2, "denied": 0, "pending_approval": 1})
    );
    s.post(
        &format!("/api/v1/actions/{id}/reject"),
        &s.admin,
        Value::Null,
    )
    .await;
    let (_, v) = s.get("/api/v1/agents", &s.admin).await;
    let a = &v["agents"][0];
    assert_eq!(a["agent_id"], "c1");
    assert_eq!(
        a["counts"],
        json!({"approved": 2, "denied": 1, "pending_approval": 0})
    );
    assert!(a["first_seen"].as_str() <= a["last_seen"].as_str());
    let (st, _) = s.get("/api/v1/agents/nobody", &s.admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Concurrent submits share SQLite commits, whose agent counters are added up per batch:
/// every submit must still be counted once, for its own agent, with its own decision.
async fn agent_counts_add_up_in_a_burst(b: Backend) {
    let s = Server::start(b).await;
    let agents = ["burst-a", "burst-b", "burst-c"];
    let calls = agents.iter().flat_map(|agent| {
        let lows = (0..24).map(move |_| low(agent));
        let highs = (0..6).map(move |i| high(agent, &format!("bucket-{i}")));
        lows.chain(highs)
    });
    let answers = futures_util::future::join_all(calls.map(|body| s.submit(&s.admin, body))).await;
    assert_eq!(answers.len(), 90);
    for agent in agents {
        let (st, v) = s.get(&format!("/api/v1/agents/{agent}"), &s.admin).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            v["counts"],
            json!({"approved": 24, "denied": 0, "pending_approval": 6}),
            "{agent}: {v}"
        );
        assert!(v["first_seen"].as_str() <= v["last_seen"].as_str(), "{v}");
    }
    let (_, verify) = s.get("/api/v1/audit/verify", &s.admin).await;
    assert_eq!(verify["valid"], true, "{verify}");
    assert_eq!(verify["events"], 90, "{verify}");
}

async fn keys_create_list_revoke_at_once(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = s
        .post(
            "/api/v1/keys",
            &s.admin,
            json!({"role": "agent", "name": "ci"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    for f in ["id", "key", "role", "name", "created_at"] {
        assert!(v.get(f).is_some(), "{f} missing: {v}");
    }
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("owkai_agent_"));
    let (_, list) = s.get("/api/v1/keys", &s.admin).await;
    assert!(
        !list.to_string().contains(&key),
        "the list must not show keys"
    );
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);
    s.submit(&key, low("kk")).await;
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{}", v["id"].as_str().unwrap()),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s.post("/api/v1/actions/submit", &key, low("kk")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error_code"], "AUTH_FAILED");
}

async fn list_filters_and_agent_visibility(b: Backend) {
    let s = Server::start(b).await;
    let (a1, a2) = (
        s.key(&s.admin, "agent").await,
        s.key(&s.admin, "agent").await,
    );
    for _ in 0..3 {
        s.submit(&a1, low("l1")).await;
    }
    s.submit(&a1, high("l1", "b")).await;
    let other = s.submit(&a2, low("l2")).await;
    let (_, v) = s.get("/api/v1/actions?limit=2&offset=1", &s.admin).await;
    assert_eq!(
        (
            v["total"].as_i64(),
            v["limit"].as_i64(),
            v["offset"].as_i64()
        ),
        (Some(5), Some(2), Some(1))
    );
    assert_eq!(v["actions"].as_array().unwrap().len(), 2);
    let (_, v) = s
        .get(
            "/api/v1/actions?status=pending_approval&agent_id=l1",
            &s.admin,
        )
        .await;
    assert_eq!(v["total"], 1);
    let (_, v) = s.get("/api/v1/actions", &a1).await;
    assert_eq!(v["total"], 4, "an agent key sees only its own actions");
    let (st, _) = s
        .get(
            &format!("/api/v1/actions/{}", other["id"].as_str().unwrap()),
            &a1,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

async fn audit_upload_export_verify_and_redaction(b: Backend) {
    let s = Server::start(b).await;
    let agent = s.key(&s.admin, "agent").await;
    let secret = "AKIAIOSFODNN7EXAMPLE-wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    s.submit(
        &agent,
        json!({"action_type": "secretsmanager.create_secret",
        "parameters": {"Name": "db", "SecretString": secret}, "agent_id": "u1"}),
    )
    .await;
    let ev = |id: &str, d: &str| {
        json!({"action_id": id, "agent_id": "u2", "agent_name": "Up", "service": "s3",
        "operation": "list_buckets", "parameters": {"Password": "hunter2"}, "region": "us-east-1", "decision": d,
        "risk_score": 10, "risk_level": "low", "reason": "local", "policy_ids": [], "dry_run": false,
        "timestamp": "2026-01-01T00:00:00Z", "outcome": {"status": "succeeded", "error_code": null, "latency_ms": 1.5}})
    };
    let (st, v) = s.post("/api/v1/audit/events", &agent, json!({"events": [ev("act_01JA0000000000000000000001", "approved"), ev("act_01JA0000000000000000000002", "denied")]})).await;
    assert_eq!(
        (st, v.clone()),
        (StatusCode::OK, json!({"accepted": 2, "duplicates": 0}))
    );
    let (_, v) = s.post("/api/v1/audit/events", &agent, json!({"events": [ev("act_01JA0000000000000000000002", "denied"), ev("act_01JA0000000000000000000003", "approved")]})).await;
    assert_eq!(v, json!({"accepted": 1, "duplicates": 1}));
    let resp = s
        .req(Method::GET, "/api/v1/audit", &s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(
        !text.contains(secret) && !text.contains("hunter2"),
        "secrets must be redacted: {text}"
    );
    let (_, full) = s.get("/api/v1/actions?agent_id=u1", &s.admin).await;
    assert!(!full.to_string().contains(secret));
    let lines = |q: &'static str| {
        let s = &s;
        async move {
            s.req(Method::GET, &format!("/api/v1/audit?{q}"), &s.admin)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .lines()
                .count()
        }
    };
    assert_eq!(lines("agent_id=u2").await, 3);
    assert_eq!(lines("agent_id=u2&decision=denied").await, 1);
    assert_eq!(lines("until=2026-06-01T00:00:00Z").await, 3);
    assert_eq!(lines("since=2026-06-01T00:00:00Z").await, 1);
    let (_, v) = s.get("/api/v1/audit/verify", &s.admin).await;
    assert_eq!(v, json!({"valid": true, "events": 4}));
}

async fn result_is_recorded(b: Backend) {
    let s = Server::start(b).await;
    let agent = s.key(&s.admin, "agent").await;
    let id = s.submit(&agent, low("res")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .post(
            &format!("/api/v1/actions/{id}/result"),
            &agent,
            json!({"status": "failed", "error_code": "NoSuchBucket", "latency_ms": 12.5}),
        )
        .await;
    assert_eq!((st, v), (StatusCode::OK, json!({"ok": true})));
    let (_, v) = s.get(&format!("/api/v1/actions/{id}"), &s.admin).await;
    assert_eq!(v["result"]["error_code"], "NoSuchBucket");
}

async fn pending_actions_expire(b: Backend) {
    let s = Server::start_with(b, &["--pending-ttl", "1"]).await;
    let id = s.submit(&s.admin, high("e1", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let (_, v) = s
        .get(&format!("/api/v1/actions/{id}/status?wait=10"), &s.admin)
        .await;
    assert_eq!(v["status"], "denied", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("expired"));
    assert!(t.elapsed() < Duration::from_secs(5));
    let (st, _) = s
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, v) = s.get("/api/v1/audit/verify", &s.admin).await;
    assert_eq!(v["valid"], true);
}

async fn cross_org_isolation(b: Backend) {
    let s = Server::start(b).await;
    let a_agent = s.key(&s.admin, "agent").await;
    let a_id = s.submit(&a_agent, high("iso", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, keys) = s.get("/api/v1/keys", &s.admin).await;
    let a_key_id = keys["keys"][1]["id"].as_str().unwrap().to_string();
    // Organisation B, created on the store while the server runs; its key works at once.
    let b_admin = s.create_org("beta");
    let b_agent = s.key(&b_admin, "agent").await;
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/actions/{a_id}"), Value::Null),
        (
            Method::GET,
            format!("/api/v1/actions/{a_id}/status"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/api/v1/actions/{a_id}/approve"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/actions/{a_id}/reject"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/actions/{a_id}/result"),
            json!({"status": "succeeded"}),
        ),
        (Method::GET, "/api/v1/agents/iso".to_string(), Value::Null),
        (
            Method::POST,
            "/api/v1/agents/iso/unblock".to_string(),
            json!({}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/keys/{a_key_id}"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/api/sdk/approval/{a_id}"),
            Value::Null,
        ),
    ] {
        let (st, v) = s.call(method.clone(), &path, &b_admin, body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "B {method} {path}: {v}");
    }
    let (_, v) = s
        .get(&format!("/api/v1/actions/{a_id}/status"), &b_agent)
        .await;
    assert_eq!(v["error_code"], "NOT_FOUND");
    for path in ["/api/v1/actions", "/api/v1/agents", "/api/v1/keys"] {
        let (_, v) = s.get(path, &b_admin).await;
        assert!(
            !v.to_string().contains("iso") && !v.to_string().contains(&a_key_id),
            "{path} leaks: {v}"
        );
    }
    let text = s
        .req(Method::GET, "/api/v1/audit", &b_admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.is_empty(), "B sees A's audit: {text}");
    let (_, v) = s.get("/api/v1/audit/verify", &b_admin).await;
    assert_eq!(v, json!({"valid": true, "events": 0}));
    // B's kill switch and policies touch only B.
    s.post(
        "/api/v1/agents/iso/block",
        &b_admin,
        json!({"reason": "b only"}),
    )
    .await;
    put_policies(&s, &b_admin, FORBID_DELETE).await;
    let v = s.submit(&a_agent, low("iso")).await;
    assert_eq!(v["status"], "approved");
    assert_eq!(
        s.submit(&a_agent, high("iso", "b2")).await["status"],
        "pending_approval"
    );
    let (_, v) = s.get(&format!("/api/v1/actions/{a_id}"), &s.admin).await;
    assert_eq!(
        v["status"], "pending",
        "org B's actions left A's pending action alone"
    );
}

async fn counts(s: &Server) -> (i64, i64) {
    let (_, v) = s.get("/api/v1/actions?limit=1", &s.admin).await;
    let (_, a) = s.get("/api/v1/audit/verify", &s.admin).await;
    (v["total"].as_i64().unwrap(), a["events"].as_i64().unwrap())
}

async fn bad_input_is_422_and_changes_nothing(b: Backend) {
    let s = Server::start(b).await;
    let id = s.submit(&s.admin, high("bad", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = counts(&s).await;
    let raw = |method: Method, path: String, body: &'static str| (method, path, body);
    let cases = [
        raw(Method::POST, "/api/v1/actions/submit".into(), "{not json"),
        raw(
            Method::POST,
            "/api/v1/actions/submit".into(),
            r#"{"action_type": 5}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/actions/submit".into(),
            r#"{"agent_id": "x"}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/actions/submit".into(),
            r#"{"action_type": "s3.get_object", "parameters": [1]}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/actions/submit".into(),
            r#"{"action_type": "s3.get_object", "auto_approve_low_risk": "yes"}"#,
        ),
        raw(Method::POST, "/api/v1/actions/submit".into(), r#"[]"#),
        raw(
            Method::POST,
            format!("/api/v1/actions/{id}/approve"),
            r#"{"comment": 7}"#,
        ),
        raw(
            Method::POST,
            format!("/api/v1/actions/{id}/reject"),
            r#"{"reason": ["x"]}"#,
        ),
        raw(
            Method::POST,
            format!("/api/v1/actions/{id}/result"),
            r#"{"status": "maybe"}"#,
        ),
        raw(
            Method::POST,
            format!("/api/v1/actions/{id}/result"),
            r#"{"latency_ms": 1}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/audit/events".into(),
            r#"{"events": [{"action_id": "a"}]}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/audit/events".into(),
            r#"{"events": [{"action_id": "a", "agent_id": "b", "decision": "perhaps"}]}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/audit/events".into(),
            r#"{"evts": []}"#,
        ),
        raw(
            Method::POST,
            "/api/v1/policies/test".into(),
            r#"{"action_type": "no name"}"#,
        ),
        raw(Method::POST, "/api/v1/keys".into(), r#"{"role": "root"}"#),
        raw(
            Method::POST,
            "/api/v1/agents/bad/block".into(),
            r#"{"reason": 1}"#,
        ),
        raw(Method::GET, "/api/v1/actions?limit=0".into(), ""),
        raw(Method::GET, "/api/v1/actions?limit=101".into(), ""),
        raw(Method::GET, "/api/v1/actions?limit=ten".into(), ""),
        raw(Method::GET, "/api/v1/actions?status=maybe".into(), ""),
        raw(Method::GET, "/api/v1/actions?colour=red".into(), ""),
        raw(
            Method::GET,
            format!("/api/v1/actions/{id}/status?wait=61"),
            "",
        ),
        raw(
            Method::GET,
            format!("/api/v1/actions/{id}/status?hurry=1"),
            "",
        ),
        raw(Method::GET, "/api/v1/audit?decision=maybe".into(), ""),
        raw(Method::GET, "/api/v1/audit?since=yesterday".into(), ""),
        raw(Method::GET, "/api/v1/audit?colour=red".into(), ""),
        raw(Method::GET, "/api/v1/bundle?wait=-1".into(), ""),
        raw(Method::GET, "/api/v1/bundle?colour=red".into(), ""),
    ];
    for (method, path, body) in cases {
        let mut r = s
            .req(method.clone(), &path, &s.admin)
            .header("Content-Type", "application/json");
        if !body.is_empty() {
            r = r.body(body);
        }
        let resp = r.send().await.unwrap();
        let st = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body}: {v}"
        );
        assert!(
            v["detail"].is_string()
                && v["error_code"] == "VALIDATION_ERROR"
                && v["timestamp"].is_string(),
            "{v}"
        );
    }
    let (st, _) = put_policies(&s, &s.admin, "forbid(principal, action, resource) when {").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(counts(&s).await, before, "bad input changed what is stored");
    let (_, v) = s.get(&format!("/api/v1/actions/{id}"), &s.admin).await;
    assert_eq!(
        v["status"], "pending",
        "the full record says `pending` (ascend-ai-sdk)"
    );
    assert_eq!(v["requires_approval"], true);
    let (_, v) = s.get("/api/v1/policies", &s.admin).await;
    assert_eq!(v["policies"], "");
    assert_eq!(s.get("/healthz", "").await.0, StatusCode::OK);
}

async fn body_over_1mib_is_413(b: Backend) {
    let s = Server::start(b).await;
    let big = format!(
        r#"{{"action_type": "s3.put_object", "agent_id": "big", "parameters": {{"Body": "{}"}}}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    // Connections the server closes after a 413 stay out of the shared client's pool.
    let fresh = common::http();
    let resp = fresh
        .post(format!("{}/api/v1/actions/submit", s.url))
        .header("X-API-Key", &s.admin)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error_code"], "PAYLOAD_TOO_LARGE");
    // Chunked, without a declared length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    // The server answers 413 as soon as the limit is passed; the client may still be
    // sending and then sees the connection close instead of the answer.
    match fresh
        .put(format!("{}/api/v1/policies", s.url))
        .header("X-API-Key", &s.admin)
        .body(body)
        .send()
        .await
    {
        Ok(resp) => assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    assert_eq!(counts(&s).await, (0, 0));
    assert_eq!(s.submit(&s.admin, low("big")).await["status"], "approved");
}

async fn rate_limit_is_429(b: Backend) {
    let s = Server::start_with(b, &["--rate-limit", "5"]).await;
    let agent = s.key(&s.admin, "agent").await;
    let mut limited = None;
    for _ in 0..30 {
        let resp = s
            .req(Method::GET, "/api/v1/actions", &agent)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .expect("integer Retry-After");
            limited = Some((retry, resp.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (retry, v) = limited.expect("no 429 within 30 quick requests at 5/s");
    assert!(retry >= 1);
    assert_eq!(v["error_code"], "RATE_LIMITED");
    // Per key: another key is unaffected; the server keeps serving.
    let (st, _) = s.get("/api/v1/actions", &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.get("/api/v1/actions", &agent).await.0, StatusCode::OK);
}

async fn compat_routes_and_auth_headers(b: Backend) {
    let s = Server::start(b).await;
    let agent = s.key(&s.admin, "agent").await;
    // The 1.2.1 wrapper: clear X-API-Key and a masked bearer token.
    let masked = format!("{}{}", &agent[..6], "*".repeat(30));
    let resp = s
        .client
        .post(format!("{}/api/v1/actions/submit", s.url))
        .header("X-API-Key", &agent)
        .header("Authorization", format!("Bearer {masked}"))
        .json(&high("cw", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = s
        .client
        .get(format!("{}/api/v1/actions/{id}/status", s.url))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "bearer alone works");
    let (st, v) = s.get("/health", "").await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (_, v) = s.get(&format!("/api/sdk/approval/{id}"), &agent).await;
    assert_eq!(v["status"], "pending");
    s.post(
        &format!("/api/v1/actions/{id}/reject"),
        &s.admin,
        json!({"reason": "no"}),
    )
    .await;
    let (_, v) = s.get(&format!("/api/sdk/approval/{id}"), &agent).await;
    assert_eq!(
        (v["status"].as_str(), v["rejection_reason"].as_str()),
        (Some("rejected"), Some("no"))
    );
    s.post(
        "/api/v1/agents/cw/block",
        &s.admin,
        json!({"reason": "stop"}),
    )
    .await;
    let (_, v) = s
        .get("/api/sdk/kill-switch/status?agent_id=cw", &agent)
        .await;
    assert_eq!(
        (v["blocked"].as_bool(), v["reason"].as_str()),
        (Some(true), Some("stop"))
    );
    let (st, v) = s.get("/api/v1/nothing", &agent).await;
    assert_eq!(
        (st, v["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
}

async fn sigterm_finishes_in_flight_requests(b: Backend) {
    let mut s = Server::start(b).await;
    let id = s.submit(&s.admin, high("st", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let waiter = {
        let r = s.req(
            Method::GET,
            &format!("/api/v1/actions/{id}/status?wait=50"),
            &s.admin,
        );
        tokio::spawn(async move {
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let status = tokio::task::block_in_place(|| s.terminate()).expect("exit status");
    let (st, v) = waiter.await.unwrap();
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("pending_approval"))
    );
    assert!(status.success(), "exit status {status}");
    assert!(t.elapsed() < Duration::from_secs(10));
}
