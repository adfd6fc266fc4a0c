//! The Governor against the real `ascend serve` binary (`$ASCEND_BIN`, default
//! `target/debug/ascend`; missing → the tests fail and say how to build it).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ascend_client::{CallOutcome, CallRequest, Config, Decided, FailMode, Governor, Source};
use serde_json::{Value, json};

fn binary() -> PathBuf {
    let path = std::env::var_os("ASCEND_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/ascend")
        });
    assert!(
        path.exists(),
        "no ascend binary at {}: run `cargo build -p ascend` first, or set ASCEND_BIN",
        path.display()
    );
    path
}

/// Warnings the client logs, kept for the assertions (one logger per process; a test
/// picks its own by a path or name only it uses).
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("ascend_client") && metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn warnings_naming(text: &str) -> Vec<String> {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
    WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(text))
        .cloned()
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    url: String,
    admin: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start() -> Self {
        let bin = binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let admin = format!(
            "owkai_admin_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("ASCEND_BOOTSTRAP_KEY", &admin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            admin,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = server
                .http
                .get(format!("{}/healthz", server.url))
                .send()
                .await
                && r.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ascend serve did not start");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("X-API-Key", &self.admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// The audit log of one agent, as `GET /api/v1/audit` exports it (JSON Lines).
    async fn audit_export(&self, agent: &str) -> String {
        self.http
            .get(format!("{}/api/v1/audit?agent_id={agent}", self.url))
            .header("X-API-Key", &self.admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn agent_key(&self) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/api/v1/keys",
                Some(json!({"role": "agent", "name": "rust"})),
            )
            .await;
        v["key"].as_str().unwrap().to_string()
    }

    async fn governor(&self, agent: &str, tweak: impl FnOnce(&mut Config)) -> Governor {
        let mut config = Config::new(self.agent_key().await, &self.url, agent);
        config.queue_dir = Some(self._dir.path().join(format!("queue-{agent}")));
        tweak(&mut config);
        let governor = Governor::new(config).unwrap();
        assert!(governor.ready(Duration::from_secs(5)).await);
        governor
    }
}

fn request<'a>(service: &'a str, operation: &'a str, params: Value) -> CallRequest<'a> {
    CallRequest {
        service,
        operation,
        params,
        region: "us-east-1",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_call_is_local_and_its_audit_event_arrives() {
    let server = Server::start().await;
    let governor = server.governor("rust-local", |_| {}).await;
    let ruling = governor
        .check(request("s3", "ListBuckets", json!({})))
        .await
        .unwrap();
    assert_eq!(ruling.decided, Decided::Approved);
    assert_eq!(ruling.source, Source::Local);
    assert!(ruling.action_id.starts_with("act_"));
    let id = ruling.action_id.clone();
    governor.finish(ruling, CallOutcome::succeeded());
    assert!(governor.flush(Duration::from_secs(10)).await);
    let stats = governor.stats();
    assert_eq!(stats.sync_requests, 0);
    assert!(stats.events_uploaded >= 1);
    let audit = server.audit_export("rust-local").await;
    assert!(audit.contains(&id), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_is_awaited_without_blocking_a_thread() {
    let server = Server::start().await;
    let governor = server
        .governor("rust-approve", |c| {
            c.approval_timeout = Duration::from_secs(30)
        })
        .await;
    let g = governor.clone();
    let call = tokio::spawn(async move {
        g.check(request("s3", "delete_bucket", json!({"Bucket": "b"})))
            .await
            .unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        assert!(Instant::now() < deadline, "no pending action");
        let v = server
            .call(
                reqwest::Method::GET,
                "/api/v1/actions?agent_id=rust-approve&status=pending_approval",
                None,
            )
            .await;
        if let Some(id) = v["actions"][0]["id"].as_str() {
            break id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/actions/{id}/approve"),
            Some(json!({})),
        )
        .await;
    let ruling = call.await.unwrap();
    assert_eq!(ruling.decided, Decided::Approved);
    assert_eq!(ruling.source, Source::Platform);
    assert_eq!(ruling.action_id, id);
    assert_eq!(
        (ruling.risk_score, ruling.risk_level.as_str()),
        (75, "high")
    );
    governor.finish(ruling, CallOutcome::failed("NoSuchBucket"));
    assert!(governor.flush(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_reaches_the_running_governor() {
    let server = Server::start().await;
    let governor = server.governor("rust-kill", |_| {}).await;
    // Decided (and remembered, as a call without parameters) before the block.
    let before = governor
        .check(request("s3", "list_buckets", json!({})))
        .await
        .unwrap();
    assert_eq!(before.decided, Decided::Approved);
    server
        .call(
            reqwest::Method::POST,
            "/api/v1/agents/rust-kill/block",
            Some(json!({"reason": "incident 7"})),
        )
        .await;
    let started = Instant::now();
    while !governor.stats().blocked && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(governor.stats().blocked);
    let ruling = governor
        .check(request("s3", "list_buckets", json!({})))
        .await
        .unwrap();
    assert_eq!(ruling.decided, Decided::Denied);
    assert!(ruling.reason.contains("incident 7"), "{}", ruling.reason);
    assert!(!ruling.executes);
    assert_ne!(ruling.action_id, before.action_id, "a fresh id per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_platform_fails_by_level_and_mode() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let make = |mode: Option<FailMode>| {
        let mut config = Config::new("owkai_agent_x", &dead, "rust-down");
        config.queue_dir = Some(dir.path().to_path_buf());
        config.fail_mode = mode;
        Governor::new(config).unwrap()
    };
    let governor = make(None);
    assert!(!governor.ready(Duration::from_secs(5)).await);
    let low = governor
        .check(request("s3", "list_buckets", json!({})))
        .await
        .unwrap();
    assert_eq!(
        (low.decided, low.source),
        (Decided::Approved, Source::FailMode)
    );
    assert_eq!(
        low.warning.as_deref(),
        Some("Governance evaluation failed, allowing low-risk operation")
    );
    let high = governor
        .check(request("s3", "delete_bucket", json!({"Bucket": "b"})))
        .await
        .unwrap();
    assert_eq!(high.decided, Decided::Denied);
    assert_eq!(
        high.warning.as_deref(),
        Some("Governance evaluation failed, denying high-risk operation")
    );
    let open = make(Some(FailMode::Open));
    let high = open
        .check(request("iam", "create_user", json!({"UserName": "u"})))
        .await
        .unwrap();
    assert!(high.executes);
    let closed = make(Some(FailMode::Closed));
    let low = closed
        .check(request("s3", "list_buckets", json!({})))
        .await
        .unwrap();
    assert!(!low.executes);
}

#[test]
fn blocking_api_works_outside_any_runtime() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("owkai_agent_x", &dead, "rust-blocking");
    config.queue_dir = Some(dir.path().to_path_buf());
    config.settings.bypass_services = vec!["STS".into()];
    let governor = Governor::new(config).unwrap();
    assert!(!governor.wait_ready_blocking(Duration::from_secs(5)));
    assert!(
        governor
            .check_blocking(request("sts", "GetCallerIdentity", json!({})))
            .is_none(),
        "bypassed"
    );
    let ruling = governor
        .check_blocking(request("s3", "delete_bucket", json!({"Bucket": "b"})))
        .unwrap();
    assert_eq!(ruling.decided, Decided::Denied);
    assert!(!governor.flush_blocking(Duration::from_millis(300)));
    assert!(!governor.close_blocking(Duration::from_secs(2)));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "the unsent event waits on disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_events_arrive_in_batches_under_the_size_limit() {
    let server = Server::start().await;
    let governor = server.governor("rust-bulk", |_| {}).await;
    let key = "k".repeat(3000);
    for _ in 0..1200 {
        let ruling = governor
            .check(request(
                "s3",
                "get_object",
                json!({"Bucket": "b", "Range": key}),
            ))
            .await
            .unwrap();
        assert!(ruling.executes);
        governor.finish(ruling, CallOutcome::succeeded());
    }
    assert!(governor.flush(Duration::from_secs(60)).await);
    let stats = governor.stats();
    assert_eq!((stats.events_uploaded, stats.events_dropped), (1200, 0));
}

/// While the platform is away, events wait in this process's queue file, which stops
/// growing at `disk_queue_limit`: what does not fit is dropped and counted, never lost
/// silently, and the file never passes the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_file_stops_growing_at_its_limit() {
    warnings_naming("");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("owkai_agent_x", &dead, "rust-full");
    config.queue_dir = Some(dir.path().to_path_buf());
    config.fail_mode = Some(FailMode::Closed);
    config.memory_queue_limit = 1;
    config.disk_queue_limit = 4096;
    config.upload_interval = Duration::from_millis(20);
    let governor = Governor::new(config).unwrap();
    let calls = 60;
    for i in 0..calls {
        let bucket = format!("bucket-{i}");
        let ruling = governor
            .check(request("s3", "delete_bucket", json!({ "Bucket": bucket })))
            .await
            .unwrap();
        assert!(!ruling.executes);
        if i % 10 == 9 {
            // Spread over several upload ticks, so that several of them drop events.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let stats = loop {
        let stats = governor.stats();
        if stats.events_spilled + stats.events_dropped >= calls || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        stats.events_spilled + stats.events_dropped,
        calls,
        "{stats:?}"
    );
    assert!(
        stats.events_spilled > 0 && stats.events_dropped > 0,
        "{stats:?}"
    );
    assert_eq!(stats.on_disk, stats.events_spilled, "{stats:?}");
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk > 0 && on_disk <= 4096, "{on_disk} bytes on disk");
    // Events were dropped on many 20 ms ticks while the file stayed full: one warning.
    let full = warnings_naming(&dir.path().display().to_string());
    assert_eq!(full.len(), 1, "{full:#?}");
    assert!(full[0].contains("is full"), "{full:#?}");
}

/// Uploaded events are reused for later calls and refilled only where they differ, so no
/// field of an earlier call may show through in a later call's event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_event_carries_only_its_own_call() {
    let server = Server::start().await;
    let governor = server.governor("rust-reuse", |_| {}).await;
    let mut first = Vec::new();
    for _ in 0..20 {
        let ruling = governor
            .check(CallRequest {
                service: "s3",
                operation: "GetObject",
                params: json!({"Bucket": "a", "Key": "k"}),
                region: "eu-west-1",
            })
            .await
            .unwrap();
        first.push(ruling.action_id.clone());
        governor.finish(ruling, CallOutcome::failed("NoSuchKey"));
    }
    assert!(governor.flush(Duration::from_secs(10)).await);
    let mut second = Vec::new();
    for _ in 0..20 {
        let ruling = governor
            .check(request("s3", "ListBuckets", json!({})))
            .await
            .unwrap();
        second.push(ruling.action_id.clone());
        governor.finish(ruling, CallOutcome::succeeded());
    }
    assert!(governor.flush(Duration::from_secs(10)).await);
    let export = server.audit_export("rust-reuse").await;
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |id: &str| {
        lines
            .iter()
            .find(|l| l["action_id"] == id)
            .unwrap_or_else(|| panic!("{id} not exported: {export}"))
            .clone()
    };
    for id in &first {
        let event = find(id);
        let body = &event;
        assert_eq!(body["operation"], "s3.get_object", "{event}");
        assert_eq!(
            body["parameters"],
            json!({"Bucket": "a", "Key": "k"}),
            "{event}"
        );
        assert_eq!(body["region"], "eu-west-1", "{event}");
        assert_eq!(body["outcome"]["status"], "failed", "{event}");
        assert_eq!(body["outcome"]["error_code"], "NoSuchKey", "{event}");
    }
    for id in &second {
        let event = find(id);
        let body = &event;
        assert_eq!(body["operation"], "s3.list_buckets", "{event}");
        assert_eq!(body["parameters"], json!({}), "{event}");
        assert_eq!(body["region"], "us-east-1", "{event}");
        assert_eq!(body["outcome"]["status"], "succeeded", "{event}");
        assert_eq!(body["outcome"]["error_code"], Value::Null, "{event}");
    }
}
