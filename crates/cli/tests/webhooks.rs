//! Webhooks against the real `ascend serve`: a receiver on 127.0.0.1 (a small axum server,
//! `common::webhook`) checks signatures, headers, payloads and the Slack `text`; retries after
//! a 500; giving up; a delivery that waits in the outbox across a restart; secrets never
//! leaving; roles, organisations and bad input. Every case runs on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::webhook::{Received, Receiver, log, settled_log, wait_until};
use common::{Backend, Server, free_port, high, low};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

suite!(
    register_list_delete_and_openapi,
    bad_input_roles_and_other_orgs_change_nothing,
    deliveries_are_signed_and_describe_the_event,
    retry_after_500_then_success,
    gives_up_after_max_attempts,
    delivery_waits_in_the_outbox_across_a_restart,
    deleting_a_webhook_cancels_its_pending_deliveries,
    an_expired_approval_request_is_a_denial,
    the_log_keeps_30_days_of_settled_deliveries,
    refusing_private_networks_blocks_new_and_stored_urls,
);

/// Quick retries so the suite does not wait on the default 1 s base.
const FAST: &[&str] = &["--webhook-retry-base-ms", "50"];

async fn register(s: &Server, url: &str, events: &[&str]) -> Value {
    let (st, v) = s
        .post(
            "/api/v1/webhooks",
            &s.admin,
            json!({"url": url, "events": events, "description": "test hook"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

fn sign(secret: &str, ts: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn hooks(s: &Server, key: &str) -> Value {
    let (st, v) = s.get("/api/v1/webhooks", key).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn register_list_delete_and_openapi(b: Backend) {
    let s = Server::start(b).await;
    let v = register(
        &s,
        "https://hooks.slack.example/services/T0/B0/x",
        &["alert.high_risk", "approval.requested"],
    )
    .await;
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("whk_"), "{v}");
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"), "{v}");
    // Stored in the order of the event list, each once.
    assert_eq!(
        v["events"],
        json!(["approval.requested", "alert.high_risk"])
    );
    assert_eq!(v["description"], "test hook");
    assert!(v["created_at"].is_string());
    let listed = hooks(&s, &s.admin).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["webhooks"][0]["id"], id);
    assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");
    assert!(!listed.to_string().contains(v["secret"].as_str().unwrap()));
    // An empty log is a log.
    assert_eq!(log(&s, id).await, Vec::<Value>::new());
    let (st, del) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{del}");
    assert_eq!(del["deleted"], true);
    assert_eq!(hooks(&s, &s.admin).await["total"], 0);
    let (st, again) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{again}");
    assert_eq!(again["error_code"], "NOT_FOUND");
    let (st, api) = s.get("/openapi.json", "").await;
    assert_eq!(st, StatusCode::OK);
    for path in [
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/deliveries",
    ] {
        assert!(api["paths"].get(path).is_some(), "openapi lacks {path}");
    }
}

async fn bad_input_roles_and_other_orgs_change_nothing(b: Backend) {
    let s = Server::start(b).await;
    let hook = register(&s, "http://127.0.0.1:9/hook", &["agent.blocked"]).await;
    let id = hook["id"].as_str().unwrap().to_string();
    let before = hooks(&s, &s.admin).await;
    let long = "d".repeat(501);
    for (body, needle) in [
        (
            json!({"url": "ftp://x.example/h", "events": ["agent.blocked"]}),
            "http or https",
        ),
        (
            json!({"url": "not a url", "events": ["agent.blocked"]}),
            "not a valid URL",
        ),
        (
            json!({"url": "", "events": ["agent.blocked"]}),
            "url must hold",
        ),
        (
            json!({"url": "http://x.example/h", "events": []}),
            "allowed: approval.requested, action.denied, alert.high_risk, agent.blocked",
        ),
        (
            json!({"url": "http://x.example/h", "events": ["approval.granted"]}),
            "unknown event `approval.granted`; allowed:",
        ),
        (
            json!({"url": "http://x.example/h", "events": "agent.blocked"}),
            "invalid JSON body",
        ),
        (
            json!({"url": "http://x.example/h", "event": ["agent.blocked"]}),
            "unknown field `event`",
        ),
        (json!({"events": ["agent.blocked"]}), "missing field `url`"),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data/iam/", "events": ["agent.blocked"]}),
            "points at a link-local address (the cloud metadata service lives there)",
        ),
        (
            json!({"url": "http://[fd00:ec2::254]/latest/", "events": ["agent.blocked"]}),
            "points at the cloud metadata service",
        ),
        (
            json!({"url": "http://metadata.google.internal/computeMetadata/v1/", "events": ["agent.blocked"]}),
            "webhooks may not reach it",
        ),
        (
            json!({"url": "http://0.0.0.0:8080/h", "events": ["agent.blocked"]}),
            "the unspecified address",
        ),
        (
            json!({"url": "http://x.example/h", "events": ["agent.blocked"], "description": long}),
            "at most 500",
        ),
    ] {
        let (st, v) = s.post("/api/v1/webhooks", &s.admin, body.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error_code"], "VALIDATION_ERROR", "{v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{body}: {detail}");
        assert!(v["timestamp"].is_string());
    }
    for q in ["?limit=0", "?limit=101", "?page=2"] {
        let (st, v) = s
            .get(&format!("/api/v1/webhooks/{id}/deliveries{q}"), &s.admin)
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {v}");
    }
    // Roles: only an admin key manages webhooks or reads their log.
    let approver = s.key(&s.admin, "approver").await;
    let agent = s.key(&s.admin, "agent").await;
    let good = json!({"url": "http://x.example/h", "events": ["agent.blocked"]});
    let hook_path = format!("/api/v1/webhooks/{id}");
    let log_path = format!("/api/v1/webhooks/{id}/deliveries");
    for key in [&approver, &agent] {
        for (method, path, body) in [
            (Method::POST, "/api/v1/webhooks", good.clone()),
            (Method::GET, "/api/v1/webhooks", Value::Null),
            (Method::DELETE, hook_path.as_str(), Value::Null),
            (Method::GET, log_path.as_str(), Value::Null),
        ] {
            let (st, v) = s.call(method.clone(), path, key, body).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}: {v}");
            assert!(v["detail"].as_str().unwrap().contains("role admin"), "{v}");
        }
    }
    let (st, _) = s
        .post("/api/v1/webhooks", "owkai_admin_nope", good.clone())
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Another organisation sees none of it and cannot touch it.
    let other = s.create_org("other");
    assert_eq!(hooks(&s, &other).await["total"], 0);
    for (method, path) in [(Method::DELETE, &hook_path), (Method::GET, &log_path)] {
        let (st, v) = s.call(method.clone(), path, &other, Value::Null).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["detail"], "webhook not found");
    }
    let (st, _) = s
        .call(
            Method::DELETE,
            "/api/v1/webhooks/whk_unknown",
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Nothing of the above stored or removed anything.
    assert_eq!(hooks(&s, &s.admin).await, before);
    assert_eq!(log(&s, &id).await, Vec::<Value>::new());
}

async fn deliveries_are_signed_and_describe_the_event(b: Backend) {
    let s = Server::start_with(b, FAST).await;
    let all = Receiver::start().await;
    let blocks_only = Receiver::start().await;
    let other_org = Receiver::start().await;
    let hook = register(
        &s,
        &all.url,
        &[
            "approval.requested",
            "action.denied",
            "alert.high_risk",
            "agent.blocked",
        ],
    )
    .await;
    let (hook_id, secret) = (
        hook["id"].as_str().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    let narrow = register(&s, &blocks_only.url, &["agent.blocked"]).await;
    let other_admin = s.create_org("other");
    let (st, _) = s
        .post(
            "/api/v1/webhooks",
            &other_admin,
            json!({"url": other_org.url, "events": ["approval.requested", "action.denied", "alert.high_risk", "agent.blocked"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let agent = s.key(&s.admin, "agent").await;

    // A HIGH call waits for a person: approval.requested and alert.high_risk. Its
    // parameters carry secrets that must never leave.
    let mut call = high("agent-7", "data-b");
    call["parameters"]["DbPassword"] = json!("TOPSECRET-pw-1");
    call["parameters"]["SessionToken"] = json!("TOPSECRET-tok-2");
    let pending = s.submit(&agent, call).await;
    assert_eq!(pending["status"], "pending_approval");
    let act = pending["id"].as_str().unwrap().to_string();
    let (level, score) = (
        pending["risk_level"].as_str().unwrap().to_uppercase(),
        pending["risk_score"].as_i64().unwrap(),
    );
    assert!(score >= 70, "{pending}");
    // A LOW call raises nothing.
    s.submit(&agent, low("agent-7")).await;
    // A person rejects it: action.denied.
    let (st, _) = s
        .post(
            &format!("/api/v1/actions/{act}/reject"),
            &s.admin,
            json!({"reason": "not today"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Kill switch: agent.blocked, then the blocked agent's next call is denied at submit.
    let (st, _) = s
        .post(
            "/api/v1/agents/agent-7/block",
            &s.admin,
            json!({"reason": "incident 7"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let denied = s.submit(&agent, low("agent-7")).await;
    assert_eq!(denied["status"], "denied");

    let log = settled_log(&s, hook_id, 5).await;
    let got = all.got();
    assert_eq!(got.len(), 5, "{got:?}");
    let mut events: Vec<String> = got
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().into())
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "action.denied",
            "action.denied",
            "agent.blocked",
            "alert.high_risk",
            "approval.requested"
        ]
    );
    for r in &got {
        let body = r.json();
        let ts = r.header("x-ascend-timestamp");
        assert!(ts.parse::<i64>().is_ok(), "{ts}");
        assert_eq!(
            r.header("x-ascend-signature"),
            sign(secret, ts, &r.body),
            "signature"
        );
        assert_ne!(
            r.header("x-ascend-signature"),
            sign("whsec_wrong", ts, &r.body)
        );
        assert_eq!(r.header("x-ascend-event"), body["event"]);
        assert_eq!(r.header("x-ascend-delivery"), body["id"]);
        assert!(body["id"].as_str().unwrap().starts_with("whd_"), "{body}");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(body["org"]["name"], "default");
        assert!(
            body["created_at"].is_string() && body["text"].is_string(),
            "{body}"
        );
        assert!(!r.body.contains("TOPSECRET"), "a secret left in {}", r.body);
    }
    let by_event = |e: &str| -> Vec<Value> {
        got.iter()
            .map(Received::json)
            .filter(|b| b["event"] == e)
            .collect()
    };
    let requested = &by_event("approval.requested")[0];
    assert_eq!(
        requested["text"],
        format!(
            ":warning: approval requested: Test Agent (agent-7) wants s3.delete_bucket ({level} {score}) — {act}"
        )
    );
    let a = &requested["action"];
    assert_eq!(a["id"], act);
    assert_eq!(
        (a["agent_id"].as_str(), a["agent_name"].as_str()),
        (Some("agent-7"), Some("Test Agent"))
    );
    assert_eq!(
        (a["service"].as_str(), a["operation"].as_str()),
        (Some("s3"), Some("s3.delete_bucket"))
    );
    assert_eq!(a["status"], "pending_approval");
    assert_eq!(a["risk_score"], score);
    assert_eq!(a["parameters"]["Bucket"], "data-b");
    assert_eq!(a["parameters"]["DbPassword"], "[REDACTED]");
    assert_eq!(a["parameters"]["SessionToken"], "[REDACTED]");
    assert!(a["policy_ids"].is_array());
    let alert = &by_event("alert.high_risk")[0];
    assert!(
        alert["text"].as_str().unwrap().starts_with(
            ":rotating_light: high-risk action: Test Agent (agent-7) s3.delete_bucket"
        ),
        "{alert}"
    );
    assert!(
        alert["action"]["alert_id"]
            .as_str()
            .unwrap()
            .starts_with("alr_")
    );
    let denials = by_event("action.denied");
    let rejected = denials
        .iter()
        .find(|d| d["action"]["id"] == act.as_str())
        .expect("the rejection");
    assert_eq!(rejected["action"]["status"], "denied");
    assert_eq!(rejected["action"]["decided_via"], "rejection");
    assert!(
        rejected["text"].as_str().unwrap().contains("rejected by"),
        "{rejected}"
    );
    let killed = denials
        .iter()
        .find(|d| d["action"]["id"] == denied["id"])
        .expect("the kill-switch denial");
    assert!(
        killed["text"].as_str().unwrap().contains("incident 7"),
        "{killed}"
    );
    let blocked = &by_event("agent.blocked")[0];
    assert_eq!(blocked["agent"]["agent_id"], "agent-7");
    assert_eq!(blocked["agent"]["blocked_reason"], "incident 7");
    assert!(
        blocked["text"]
            .as_str()
            .unwrap()
            .starts_with(":octagonal_sign: agent blocked: agent-7 by "),
        "{blocked}"
    );
    // The log: each delivered at the first attempt, with its status code and duration.
    for d in &log {
        assert_eq!(d["state"], "delivered", "{d}");
        assert_eq!(
            (d["delivered"].as_bool(), d["attempts"].as_i64()),
            (Some(true), Some(1)),
            "{d}"
        );
        assert_eq!(d["log"][0]["status_code"], 200, "{d}");
        assert!(d["log"][0]["duration_ms"].is_i64(), "{d}");
        assert!(d["next_attempt_at"].is_null(), "{d}");
    }
    assert!(!json!(log).to_string().contains("TOPSECRET"));
    // The narrow hook got only the block; the other organisation's got nothing.
    let narrow_log = settled_log(&s, narrow["id"].as_str().unwrap(), 1).await;
    assert_eq!(narrow_log[0]["event"], "agent.blocked");
    assert_eq!(blocks_only.got().len(), 1);
    assert!(other_org.got().is_empty());
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("ascend_webhook_deliveries_total{outcome=\"delivered\"} 6"),
        "{metrics}"
    );
}

async fn retry_after_500_then_success(b: Backend) {
    let s = Server::start_with(b, FAST).await;
    let receiver = Receiver::start_on(0, &[500]).await;
    let hook = register(&s, &receiver.url, &["approval.requested"]).await;
    let agent = s.key(&s.admin, "agent").await;
    s.submit(&agent, high("r1", "b1")).await;
    let log = settled_log(&s, hook["id"].as_str().unwrap(), 1).await;
    let d = &log[0];
    assert_eq!(d["state"], "delivered", "{d}");
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(d["log"][0]["status_code"], 500, "{d}");
    assert_eq!(
        d["log"][0]["error"], "HTTP 500 Internal Server Error",
        "{d}"
    );
    assert_eq!(d["log"][0]["outcome"], "failed", "{d}");
    assert_eq!(d["log"][1]["status_code"], 200, "{d}");
    assert_eq!(d["log"][1]["outcome"], "delivered", "{d}");
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    // The same delivery both times (receivers deduplicate by it), signed afresh.
    assert_eq!(
        got[0].header("x-ascend-delivery"),
        got[1].header("x-ascend-delivery")
    );
    assert_eq!(got[0].body, got[1].body);
}

async fn gives_up_after_max_attempts(b: Backend) {
    let s = Server::start_with(
        b,
        &[
            "--webhook-retry-base-ms",
            "20",
            "--webhook-max-attempts",
            "3",
        ],
    )
    .await;
    let receiver = Receiver::start_on(0, &[500; 10]).await;
    let down = format!("http://127.0.0.1:{}/hook", free_port());
    let failing = register(&s, &receiver.url, &["approval.requested"]).await;
    let unreachable = register(&s, &down, &["approval.requested"]).await;
    let agent = s.key(&s.admin, "agent").await;
    s.submit(&agent, high("g1", "b1")).await;
    for (hook, code) in [(&failing, Some(500)), (&unreachable, None)] {
        let log = settled_log(&s, hook["id"].as_str().unwrap(), 1).await;
        let d = &log[0];
        assert_eq!(d["state"], "failed", "{d}");
        assert_eq!(
            (d["failed"].as_bool(), d["attempts"].as_i64()),
            (Some(true), Some(3)),
            "{d}"
        );
        assert_eq!(d["log"].as_array().unwrap().len(), 3, "{d}");
        assert!(d["next_attempt_at"].is_null(), "{d}");
        for a in d["log"].as_array().unwrap() {
            assert_eq!(a["status_code"].as_i64(), code, "{d}");
        }
        if code.is_none() {
            let error = d["last_error"].as_str().unwrap();
            assert!(error.starts_with("connection failed"), "{error}");
        }
    }
    // All three attempts reached the receiver before the delivery was marked failed.
    assert_eq!(receiver.got().len(), 3);
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("ascend_webhook_deliveries_total{outcome=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ascend_webhook_deliveries_total{outcome=\"retry\"} 4"),
        "{metrics}"
    );
}

async fn delivery_waits_in_the_outbox_across_a_restart(b: Backend) {
    // Retries 1 s apart at first: the server is killed long before the second one.
    let mut s = Server::start_with(
        b,
        &[
            "--webhook-retry-base-ms",
            "1000",
            "--webhook-max-attempts",
            "20",
        ],
    )
    .await;
    let port = free_port();
    let hook = register(
        &s,
        &format!("http://127.0.0.1:{port}/hook"),
        &["approval.requested"],
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let agent = s.key(&s.admin, "agent").await;
    let act = s.submit(&agent, high("w1", "b1")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (srv, id) = (&s, hook_id.as_str());
    let first = wait_until("the first failed attempt", || async move {
        let log = log(srv, id).await;
        let d = log.first()?.clone();
        (d["log"].as_array()?.len() == 1).then_some(d)
    })
    .await;
    assert_eq!(first["state"], "pending", "{first}");
    assert!(first["next_attempt_at"].is_string(), "{first}");
    s.kill9();
    // The receiver comes up while no server runs; the outbox row is all that remembers.
    let receiver = Receiver::start_on(port, &[]).await;
    s.spawn().await;
    let log = settled_log(&s, &hook_id, 1).await;
    let d = &log[0];
    assert_eq!(d["state"], "delivered", "{d}");
    assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].header("x-ascend-delivery"), d["id"]);
    assert_eq!(got[0].json()["action"]["id"], act);
}

/// `--webhook-refuse-private-networks`: registration refuses loopback and private URLs
/// with a message naming the switch and stores nothing; a URL stored before the switch was
/// turned on is refused when its delivery is posted, and the receiver sees nothing.
async fn refusing_private_networks_blocks_new_and_stored_urls(b: Backend) {
    let mut s = Server::start_with(b, &["--webhook-max-attempts", "1"]).await;
    let receiver = Receiver::start_on(0, &[]).await;
    let stored = register(&s, &receiver.url, &["approval.requested"]).await;
    let before = hooks(&s, &s.admin).await;
    s.terminate();
    s.set_args(&[
        "--webhook-max-attempts",
        "1",
        "--webhook-refuse-private-networks",
    ]);
    s.spawn().await;
    for (url, why) in [
        (receiver.url.clone(), "a loopback address"),
        (
            "http://10.1.2.3/hook".into(),
            "a private address (RFC 1918)",
        ),
        (
            "http://[fd12::1]:8080/hook".into(),
            "a unique-local address",
        ),
        ("http://100.64.0.9/hook".into(), "a shared address"),
        (
            format!("http://localhost:{}/hook", free_port()),
            "a loopback name",
        ),
        // Always refused, switch or not.
        (
            "http://169.254.169.254/latest/".into(),
            "a link-local address",
        ),
    ] {
        let (st, v) = s
            .post(
                "/api/v1/webhooks",
                &s.admin,
                json!({"url": url, "events": ["approval.requested"]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{url}: {detail}");
        if !url.contains("169.254") {
            assert!(
                detail.contains("--webhook-refuse-private-networks"),
                "{url}: {detail}"
            );
        }
    }
    assert_eq!(
        hooks(&s, &s.admin).await,
        before,
        "nothing stored or changed"
    );
    // A public name still registers (it is judged again when it resolves).
    let public = register(&s, "https://hooks.example.com/x", &["agent.blocked"]).await;
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", public["id"].as_str().unwrap()),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // The hook stored before the switch: its delivery is refused where it is posted.
    let agent = s.key(&s.admin, "agent").await;
    s.submit(&agent, high("p1", "b1")).await;
    let log = settled_log(&s, stored["id"].as_str().unwrap(), 1).await;
    let d = &log[0];
    assert_eq!(d["state"], "failed", "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert_eq!(
        error, "not delivered: the URL points at a loopback address",
        "{d}"
    );
    assert!(receiver.got().is_empty(), "{:?}", receiver.got());
    // A value of the switch's variable that is not a yes or a no stops the server.
    let out = std::process::Command::new(common::BIN)
        .args(["serve", "--listen", "127.0.0.1:1", "--data-dir"])
        .arg(&s.data_dir)
        .env("ASCEND_WEBHOOK_REFUSE_PRIVATE_NETWORKS", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'maybe' for '--webhook-refuse-private-networks'"),
        "{stderr}"
    );
}

/// PostgreSQL replicas share the outbox: each delivery goes out once, whoever claims it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_deliver_each_delivery_once() {
    let a = Server::start_with(Backend::Postgres, FAST).await;
    let b = a.replica().await;
    let receiver = Receiver::start().await;
    let hook = register(&a, &receiver.url, &["approval.requested"]).await;
    let agent = a.key(&a.admin, "agent").await;
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        s.submit(&agent, high(&format!("rep{i}"), "b")).await;
    }
    let log = settled_log(&a, hook["id"].as_str().unwrap(), 10).await;
    assert!(
        log.iter()
            .all(|d| d["state"] == "delivered" && d["attempts"] == 1),
        "{log:?}"
    );
    let mut ids: Vec<String> = receiver
        .got()
        .iter()
        .map(|r| r.header("x-ascend-delivery").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(receiver.got().len(), 10);
}

async fn deleting_a_webhook_cancels_its_pending_deliveries(b: Backend) {
    // Retries a minute apart: the delivery stays pending after its first failure.
    let s = Server::start_with(b, &["--webhook-retry-base-ms", "60000"]).await;
    let down = format!("http://127.0.0.1:{}/hook", free_port());
    let hook = register(&s, &down, &["approval.requested"]).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let agent = s.key(&s.admin, "agent").await;
    s.submit(&agent, high("c1", "b1")).await;
    let (srv, id) = (&s, hook_id.as_str());
    let first = wait_until("the first failed attempt", || async move {
        let d = log(srv, id).await.first()?.clone();
        (d["attempts"] == 1 && d["log"].as_array()?.len() == 1).then_some(d)
    })
    .await;
    assert_eq!(first["state"], "pending", "{first}");
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{hook_id}"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["cancelled_deliveries"], 1, "{v}");
    let (st, _) = s
        .get(&format!("/api/v1/webhooks/{hook_id}/deliveries"), &s.admin)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

async fn an_expired_approval_request_is_a_denial(b: Backend) {
    let s = Server::start_with(b, &["--pending-ttl", "1", "--webhook-retry-base-ms", "50"]).await;
    let receiver = Receiver::start().await;
    let hook = register(&s, &receiver.url, &["action.denied"]).await;
    let agent = s.key(&s.admin, "agent").await;
    let act = s.submit(&agent, high("e1", "b1")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = settled_log(&s, hook["id"].as_str().unwrap(), 1).await;
    assert_eq!(log[0]["state"], "delivered", "{log:?}");
    let body = receiver.got()[0].json();
    assert_eq!(body["event"], "action.denied");
    assert_eq!(body["action"]["id"], act);
    assert_eq!(body["action"]["decided_via"], "expiry");
    assert!(body["text"].as_str().unwrap().contains("expired"), "{body}");
}

/// Runs SQL on the server's store directly (the server is stopped or only reads).
async fn store_sql(s: &Server, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match &s.database_url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
            n
        }
        None => {
            let url = format!("sqlite://{}", s.data_path("ascend.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
            n
        }
    }
}

async fn the_log_keeps_30_days_of_settled_deliveries(b: Backend) {
    let mut s = Server::start(b).await;
    let receiver = Receiver::start().await;
    let hook = register(&s, &receiver.url, &["approval.requested"]).await;
    let id = hook["id"].as_str().unwrap().to_string();
    let gone = register(&s, &receiver.url, &["agent.blocked"]).await;
    let gone_id = gone["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{gone_id}"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(s.terminate().is_some_and(|st| st.success()));
    // Written while no server runs: a settled delivery from 2020 (with its attempt), a
    // pending one as old, and a settled one after the cutoff.
    let org = "(SELECT org_id FROM webhooks WHERE id = '{id}')";
    let rows = [
        (
            "whd_old_failed",
            "failed",
            "2020-01-01T00:00:00.000Z",
            "NULL",
        ),
        (
            "whd_old_pending",
            "pending",
            "2020-01-01T00:00:00.000Z",
            "'2999-01-01T00:00:00.000Z'",
        ),
        ("whd_later", "delivered", "2999-01-01T00:00:00.000Z", "NULL"),
    ];
    for (delivery, state, created, next) in rows {
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, webhook_id, org_id, event, payload, state, \
             attempts, created_at, next_attempt_at) VALUES ('{delivery}', '{id}', {org}, \
             'approval.requested', '{{}}', '{state}', 1, '{created}', {next}) RETURNING attempts",
            org = org.replace("{id}", &id)
        );
        store_sql(&s, &sql).await;
        store_sql(
            &s,
            &format!(
                "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, \
                 duration_ms) VALUES ('{delivery}', 1, '{created}', 500, 3) RETURNING attempt"
            ),
        )
        .await;
    }
    store_sql(
        &s,
        &format!(
            "UPDATE webhooks SET deleted_at = '2020-01-01T00:00:00.000Z' WHERE id = '{gone_id}' \
             RETURNING CAST(1 AS BIGINT)"
        ),
    )
    .await;
    s.spawn().await;
    let kept = wait_until("the old settled delivery to be pruned", || async {
        let ids: Vec<String> = log(&s, &id)
            .await
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        (ids.len() == 2).then_some(ids)
    })
    .await;
    assert_eq!(kept, ["whd_later", "whd_old_pending"]);
    let attempts = "SELECT COUNT(*) FROM webhook_attempts WHERE delivery_id = 'whd_old_failed'";
    assert_eq!(store_sql(&s, attempts).await, 0);
    let hooks = format!("SELECT COUNT(*) FROM webhooks WHERE id IN ('{id}', '{gone_id}')");
    assert_eq!(
        store_sql(&s, &hooks).await,
        1,
        "the deleted webhook's row is pruned"
    );
}
