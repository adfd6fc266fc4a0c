//! Secrets never leave the call: parameters carrying passwords, secret strings, tokens,
//! private keys and secret access keys are planted with unique values — through submits
//! (both body shapes), audit uploads, and a Rust `Governor` whose events wait in its disk
//! queue while the platform is stopped — and then EVERYTHING the system wrote is grepped
//! for them: the SQLite files (`ascend.db`, `-wal`, `-shm`) or every PostgreSQL row, the
//! server's stdout/stderr at `ASCEND_LOG=debug`, the audit export, the action list and
//! details, the agent list, `/metrics`, and the client's queue files.
//!
//! Each grep also looks for a non-secret value planted beside the secrets, so a grep
//! that looks in the wrong place fails instead of passing.

mod common;
mod reliability;

use std::path::Path;
use std::time::{Duration, Instant};

use ascend_client::{CallOutcome, CallRequest, Config, Governor};
use common::{Backend, Server, webhook};
use reliability::audit_export;
use serde_json::{Value, json};

/// Unique values: every secret, and the visible (non-secret) marker planted beside them.
struct Plant {
    run: String,
    planted: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Plant {
    fn new() -> Self {
        Self {
            run: format!("{:016x}", rand::random::<u64>()),
            planted: Default::default(),
        }
    }

    /// A secret value; `what` tells a reader of a failure which one leaked.
    fn secret(&self, what: &str) -> String {
        let value = format!("zsecret{}{what}", self.run);
        self.planted.lock().unwrap().insert(value.clone());
        value
    }

    /// The common part of every secret: found anywhere, something leaked.
    fn secret_marker(&self) -> String {
        format!("zsecret{}", self.run)
    }

    /// A non-secret value stored beside the secrets (a bucket or user name).
    fn visible(&self) -> String {
        format!("zvisible{}", self.run)
    }
}

/// Submits in our body shape: service, operation, parameters.
fn submits(p: &Plant) -> Vec<Value> {
    let v = p.visible();
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE{}\n-----END RSA PRIVATE KEY-----",
        p.secret("pem")
    );
    let calls = [
        (
            "secretsmanager",
            "create_secret",
            json!({"Name": v, "SecretString": p.secret("secretstring")}),
        ),
        (
            "iam",
            "create_login_profile",
            json!({"UserName": v, "Password": p.secret("password"), "PasswordResetRequired": true}),
        ),
        (
            "acm",
            "import_certificate",
            json!({"Certificate": v, "PrivateKey": p.secret("privatekey")}),
        ),
        (
            "lambda",
            "create_function",
            json!({"FunctionName": v, "Environment": {"Variables": {
                "DB_PASSWORD": p.secret("envpassword"), "API_TOKEN": p.secret("envtoken")}}}),
        ),
        (
            "sts",
            "get_caller_identity",
            json!({"Tag": v, "Credentials": {"AccessKeyId": "AKIAEXAMPLE",
                "SecretAccessKey": p.secret("secretaccesskey"), "SessionToken": p.secret("sessiontoken")}}),
        ),
        (
            "ssm",
            "put_parameter",
            json!({"Name": v, "Value": p.secret("securestring"), "Type": "SecureString"}),
        ),
        (
            "ec2",
            "import_key_pair",
            json!({"KeyName": v, "Notes": pem, "AuthToken": p.secret("authtoken")}),
        ),
        (
            "rds",
            "create_db_instance",
            json!({"DBInstanceIdentifier": v, "MasterUserPassword": p.secret("masterpassword"),
                   "Tags": [{"Key": "k", "Value": v, "client_secret": p.secret("listsecret")}]}),
        ),
    ];
    calls
        .into_iter()
        .map(|(service, operation, parameters)| {
            json!({"service": service, "operation": operation, "parameters": parameters,
                   "agent_id": "secrets-agent", "region": "us-east-1"})
        })
        .collect()
}

/// The legacy SDK's body shape: `action_details` and `context`.
fn sdk_submit(p: &Plant) -> Value {
    json!({"action_type": "secretsmanager.put_secret_value", "resource": p.visible(),
           "agent_id": "secrets-sdk", "agent_name": "SDK agent",
           "action_details": {"SecretId": p.visible(), "SecretString": p.secret("sdkdetails"),
                              "password": p.secret("sdkpassword")},
           "context": {"api_key": p.secret("sdkcontext"), "session_token": p.secret("sdkcontexttoken")}})
}

/// A batch of locally decided calls as the clients upload them.
fn upload(p: &Plant) -> Value {
    json!({"events": [{"action_id": format!("act_secrets{}", p.run), "agent_id": "secrets-upload",
        "service": "secretsmanager", "operation": "create_secret",
        "parameters": {"Name": p.visible(), "SecretString": p.secret("upload"),
                       "Nested": {"Password": p.secret("uploadnested")}},
        "region": "us-east-1", "decision": "denied", "risk_score": 80, "risk_level": "high",
        "reason": "fail mode", "dry_run": false,
        "outcome": {"status": "not_executed", "error_code": null, "latency_ms": 0.0}}]})
}

/// Where `needle` occurs in `haystack`, as a short excerpt.
fn find(haystack: &[u8], needle: &str) -> Option<String> {
    let n = needle.as_bytes();
    let at = haystack.windows(n.len()).position(|w| w == n)?;
    let from = at.saturating_sub(80);
    let to = (at + n.len() + 80).min(haystack.len());
    Some(String::from_utf8_lossy(&haystack[from..to]).into_owned())
}

/// Checks one thing the system wrote: no secret in it, and (when `expect_visible`) the
/// non-secret marker is, so the grep looked at the right thing.
fn check(p: &Plant, what: &str, bytes: &[u8], expect_visible: bool, report: &mut Vec<String>) {
    if let Some(excerpt) = find(bytes, &p.secret_marker()) {
        report.push(format!("{what}: a secret leaked: …{excerpt}…"));
    }
    if expect_visible && find(bytes, &p.visible()).is_none() {
        report.push(format!(
            "{what}: the visible marker is missing, so this grep proves nothing ({} bytes)",
            bytes.len()
        ));
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..10_000 {
        let Some(d) = stack.pop() else { break };
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Every row of every table of the PostgreSQL database, as text.
async fn pg_dump(url: &str) -> Vec<u8> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    assert!(tables.iter().any(|t| t == "audit_events"), "{tables:?}");
    let mut dump = Vec::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM \"{table}\" t"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("dump");
        for row in rows {
            let text: String = row.get(0);
            dump.extend_from_slice(text.as_bytes());
            dump.push(b'\n');
        }
    }
    dump
}

/// A Rust agent governs calls with planted secrets while the platform is stopped: its
/// events wait in the disk queue (checked there), then go up when the platform is back.
async fn governor_through_an_outage(s: &mut Server, p: &Plant, report: &mut Vec<String>) {
    let key = s.key(&s.admin, "agent").await;
    let queue = tempfile::tempdir().expect("queue dir");
    let mut config = Config::new(&key, &s.url, "secrets-rust");
    config.queue_dir = Some(queue.path().to_path_buf());
    config.memory_queue_limit = 1;
    config.approval_timeout = Duration::ZERO;
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    let governor = Governor::new(config).expect("governor");
    assert!(governor.ready(Duration::from_secs(10)).await);
    let port = s.port();
    assert!(s.terminate().is_some());
    let calls = [
        // LOW: decided locally from the bundle, executed.
        (
            "sts",
            "get_caller_identity",
            json!({"Tag": p.visible(), "SessionToken": p.secret("govtoken")}),
        ),
        // HIGH: the platform is away, denied by fail mode closed.
        (
            "secretsmanager",
            "create_secret",
            json!({"Name": p.visible(), "SecretString": p.secret("govsecret")}),
        ),
        (
            "iam",
            "create_login_profile",
            json!({"UserName": p.visible(), "Password": p.secret("govpassword")}),
        ),
    ];
    let g = governor.clone();
    tokio::task::spawn_blocking(move || {
        for (service, operation, params) in calls {
            let ruling = g
                .check_blocking(CallRequest {
                    service,
                    operation,
                    params,
                    region: "us-east-1",
                })
                .expect("governed");
            if ruling.executes {
                g.finish(ruling, CallOutcome::succeeded());
            }
        }
    })
    .await
    .expect("agent");
    let deadline = Instant::now() + Duration::from_secs(20);
    while governor.stats().on_disk < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(governor.stats().on_disk, 3, "{:?}", governor.stats());
    let files = files_under(queue.path());
    assert!(
        !files.is_empty(),
        "no queue file while the platform is away"
    );
    let mut queued = Vec::new();
    for f in &files {
        queued.extend(std::fs::read(f).expect("queue file"));
    }
    check(p, "client disk queue", &queued, true, report);
    s.spawn_at(port).await;
    assert!(
        governor.flush(Duration::from_secs(30)).await,
        "{:?}",
        governor.stats()
    );
    assert!(governor.close_blocking(Duration::from_secs(5)));
}

async fn nothing_secret_is_written(backend: Backend) {
    let mut s = Server::start_with_env(backend, &[], &[("ASCEND_LOG", "debug")]).await;
    let p = Plant::new();
    let agent = s.key(&s.admin, "agent").await;
    let mut report = Vec::new();
    let receiver = webhook::Receiver::start().await;
    let (status, hook) = s
        .post(
            "/api/v1/webhooks",
            &s.admin,
            json!({"url": receiver.url, "events": ["approval.requested", "action.denied", "alert.high_risk", "agent.blocked"]}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{hook}");
    let hook_id = hook["id"].as_str().expect("webhook id").to_string();

    let mut ids = Vec::new();
    for body in submits(&p).into_iter().chain([sdk_submit(&p)]) {
        let v = s.submit(&agent, body).await;
        check(
            &p,
            "submit response",
            v.to_string().as_bytes(),
            false,
            &mut report,
        );
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    // A person decides the pending ones: the decision is audited too.
    for id in &ids {
        let (_, v) = s
            .post(
                &format!("/api/v1/actions/{id}/approve"),
                &s.admin,
                json!({"comment": "ok"}),
            )
            .await;
        check(
            &p,
            "approve response",
            v.to_string().as_bytes(),
            false,
            &mut report,
        );
    }
    let (status, v) = s.post("/api/v1/audit/events", &agent, upload(&p)).await;
    assert!(status.is_success(), "{v}");
    assert_eq!(v["accepted"], 1, "{v}");
    governor_through_an_outage(&mut s, &p, &mut report).await;

    // What the API gives back.
    let export: Vec<u8> = audit_export(&s)
        .await
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    check(&p, "GET /api/v1/audit", &export, true, &mut report);
    let (_, list) = s.get("/api/v1/actions?limit=100", &s.admin).await;
    check(
        &p,
        "GET /api/v1/actions",
        list.to_string().as_bytes(),
        true,
        &mut report,
    );
    for id in &ids {
        let (_, detail) = s.get(&format!("/api/v1/actions/{id}"), &s.admin).await;
        check(
            &p,
            &format!("GET /api/v1/actions/{id}"),
            detail.to_string().as_bytes(),
            false,
            &mut report,
        );
    }
    let (_, agents) = s.get("/api/v1/agents", &s.admin).await;
    check(
        &p,
        "GET /api/v1/agents",
        agents.to_string().as_bytes(),
        false,
        &mut report,
    );
    let metrics = s.metrics_text().await;
    check(&p, "GET /metrics", metrics.as_bytes(), false, &mut report);

    // What the webhooks sent (the held CRITICAL and HIGH calls page the approvers), and
    // the delivery log that keeps each payload.
    let log = webhook::wait_until("the webhook deliveries to settle", || async {
        let log = webhook::log(&s, &hook_id).await;
        (!log.is_empty() && log.iter().all(|d| d["state"] != "pending")).then_some(log)
    })
    .await;
    check(
        &p,
        "webhook delivery log",
        Value::from(log).to_string().as_bytes(),
        true,
        &mut report,
    );
    let received: String = receiver
        .got()
        .iter()
        .map(|r| r.body.clone() + "\n")
        .collect();
    check(
        &p,
        "webhook deliveries received",
        received.as_bytes(),
        true,
        &mut report,
    );

    // What the platform stored.
    match backend {
        Backend::Sqlite => {
            let mut stored = Vec::new();
            let files = files_under(&s.data_dir);
            for name in ["ascend.db", "ascend.db-wal"] {
                assert!(
                    files.iter().any(|f| f.ends_with(name)),
                    "{name} missing among {files:?}"
                );
            }
            for f in &files {
                let bytes = std::fs::read(f).expect("data file");
                check(&p, &f.display().to_string(), &bytes, false, &mut report);
                stored.extend(bytes);
            }
            check(&p, "the SQLite files together", &stored, true, &mut report);
        }
        Backend::Postgres => {
            let dump = pg_dump(s.database_url.as_deref().expect("url")).await;
            check(&p, "every PostgreSQL row", &dump, true, &mut report);
            let files = files_under(&s.data_dir);
            for f in &files {
                let bytes = std::fs::read(f).expect("data file");
                check(&p, &f.display().to_string(), &bytes, false, &mut report);
            }
        }
    }

    // What it logged, at debug, over both of its lives.
    let log = std::fs::read(s.log_path()).expect("server log");
    assert!(
        find(&log, "DEBUG").is_some() || find(&log, "debug").is_some(),
        "ASCEND_LOG=debug did not reach the server: {}",
        s.log_tail()
    );
    check(
        &p,
        "server stdout/stderr (ASCEND_LOG=debug)",
        &log,
        false,
        &mut report,
    );

    assert!(report.is_empty(), "{}", report.join("\n"));
    println!(
        "FIGURE {backend:?}: {} planted secrets in {} submits, 1 upload and 3 queued client events; \
         grepped DB, log ({} bytes), export ({} bytes), API bodies, queue files: 0 found",
        p.planted.lock().unwrap().len(),
        ids.len(),
        log.len(),
        export.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_storage_logs_exports_or_queues_on_sqlite() {
    nothing_secret_is_written(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_storage_logs_exports_or_queues_on_postgres() {
    nothing_secret_is_written(Backend::Postgres).await;
}
