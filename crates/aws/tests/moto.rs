//! Governed aws-sdk-s3 calls against real parts: a moto server on loopback and the real
//! `ascend serve` binary (`$ASCEND_BIN`, default `target/debug/ascend`; missing → the tests
//! fail and say how to build it). Python with moto: see [`python_with_moto`].

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ascend_aws::{Ascend, Config, FailMode, RiskLevel};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};

/// Every record on the `ascend_aws` targets, kept for the assertions (one logger per
/// process; tests tell their records apart by agent id or operation).
static LOGS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("ascend_aws")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LOGS.lock().unwrap().push((
                record.level(),
                record.target().to_string(),
                record.args().to_string(),
            ));
        }
    }

    fn flush(&self) {}
}

fn capture_logs() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
}

/// The metrics records of one agent.
fn metrics(agent: &str) -> Vec<Value> {
    LOGS.lock()
        .unwrap()
        .iter()
        .filter(|(_, target, _)| target == "ascend_aws::metrics")
        .filter_map(|(_, _, text)| serde_json::from_str::<Value>(text).ok())
        .filter(|v| v["agent_id"] == agent)
        .collect()
}

fn log_lines(target: &str) -> Vec<(log::Level, String)> {
    LOGS.lock()
        .unwrap()
        .iter()
        .filter(|(_, t, _)| t == target)
        .map(|(level, _, text)| (*level, text.clone()))
        .collect()
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_http(http: &reqwest::Client, url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not answer {url} within 30 s");
}

struct Moto {
    url: String,
    _proc: Proc,
}

/// The moto pin of `python/requirements-dev.txt`.
const MOTO: &str = "moto[server]==5.2.5";

fn has_moto(python: &std::path::Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// A Python with moto: `$ASCEND_PYTHON`, the workspace's `.venv` (python/scripts/test.sh),
/// this crate's own `.venv`, `python3`; else this crate's `.venv` is made once (pip from
/// PyPI, the same pin as the Python suite).
fn python_with_moto() -> PathBuf {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(python) = std::env::var_os("ASCEND_PYTHON") {
                let python = PathBuf::from(python);
                assert!(
                    has_moto(&python),
                    "ASCEND_PYTHON={} has no moto",
                    python.display()
                );
                return python;
            }
            let own = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv");
            for candidate in [
                workspace().join(".venv/bin/python"),
                own.join("bin/python"),
                PathBuf::from("python3"),
            ] {
                if has_moto(&candidate) {
                    return candidate;
                }
            }
            eprintln!("no Python with moto found; making {}", own.display());
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&own)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(own.join("bin/python"))
                    .args(["-m", "pip", "install", "-q", MOTO])
                    .status()
                    .is_ok_and(|s| s.success());
            let python = own.join("bin/python");
            assert!(
                made && has_moto(&python),
                "no Python with moto: set ASCEND_PYTHON, run python/scripts/test.sh (makes \
                 .venv), or let this test make {} (needs python3 with venv and PyPI)",
                own.display()
            );
            python
        })
        .clone()
}

impl Moto {
    async fn start(http: &reqwest::Client) -> Self {
        let python = tokio::task::spawn_blocking(python_with_moto).await.unwrap();
        let port = free_port();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python.display()));
        let moto = Self {
            url: format!("http://127.0.0.1:{port}"),
            _proc: Proc(child),
        };
        wait_http(http, &format!("{}/moto-api/", moto.url), "moto").await;
        moto
    }

    /// An S3 client for moto, governed or not.
    fn s3(&self, ascend: Option<&Ascend>) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .http_client(aws_smithy_http_client::Builder::new().build_http());
        if let Some(ascend) = ascend {
            builder = builder.interceptor(ascend.interceptor());
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }
}

struct Platform {
    url: String,
    admin: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    _proc: Proc,
}

impl Platform {
    async fn start(http: &reqwest::Client) -> Self {
        let bin = std::env::var_os("ASCEND_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target/debug/ascend"));
        assert!(
            bin.exists(),
            "ascend binary missing at {} (run `cargo build -p ascend` or set ASCEND_BIN)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let admin = format!("owkai_admin_test{nanos:x}{port}");
        let child = Command::new(&bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("ASCEND_BOOTSTRAP_KEY", &admin)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let platform = Self {
            url: format!("http://127.0.0.1:{port}"),
            admin,
            http: http.clone(),
            dir,
            _proc: Proc(child),
        };
        wait_http(http, &format!("{}/healthz", platform.url), "ascend serve").await;
        platform
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

    async fn ascend(&self, agent: &str, tweak: impl FnOnce(&mut Config)) -> Ascend {
        let key = self
            .call(
                reqwest::Method::POST,
                "/api/v1/keys",
                Some(json!({"role": "agent", "name": agent})),
            )
            .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        let mut config = Config::new(key, &self.url, agent);
        config.queue_dir = Some(self.dir.path().join(format!("queue-{agent}")));
        tweak(&mut config);
        let ascend = Ascend::new(config).unwrap();
        assert!(
            ascend.ready(Duration::from_secs(10)).await,
            "no policy bundle"
        );
        ascend
    }

    /// The id of the agent's pending action, polled for up to 15 s.
    async fn pending(&self, agent: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "no pending action for {agent}");
            let v = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/actions?agent_id={agent}&status=pending_approval"),
                    None,
                )
                .await;
            if let Some(id) = v["actions"][0]["id"].as_str() {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn audit(&self, agent: &str) -> String {
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
}

/// The test's own HTTP client (reqwest is built without a default crypto provider).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn parts() -> (Moto, Platform) {
    capture_logs();
    let http = http();
    let (moto, platform) = tokio::join!(Moto::start(&http), Platform::start(&http));
    (moto, platform)
}

async fn bucket_exists(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    let list = s3.list_buckets().send().await.unwrap();
    list.buckets().iter().any(|b| b.name() == Some(bucket))
}

// Current-thread runtimes on purpose: a governed call that blocked its thread while
// awaiting approval would starve the approver below and the test would time out.

#[tokio::test]
async fn list_buckets_is_allowed_locally_and_audited() {
    let (moto, platform) = parts().await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("reports")
        .send()
        .await
        .unwrap();
    let ascend = platform.ascend("rs-list", |_| {}).await;
    let s3 = moto.s3(Some(&ascend));
    let listed = s3.list_buckets().send().await.unwrap();
    assert_eq!(listed.buckets()[0].name(), Some("reports"));
    // get_object of a missing key: a LOW call that runs and fails at AWS.
    let missing = s3.get_object().bucket("reports").key("nope").send().await;
    assert!(missing.is_err());
    assert!(ascend_aws::denial(&missing.unwrap_err()).is_none());
    assert_eq!(
        ascend.governor().stats().sync_requests,
        0,
        "LOW calls wait on nothing"
    );
    assert!(ascend.flush(Duration::from_secs(10)).await);
    let audit = platform.audit("rs-list").await;
    assert!(audit.contains("list_buckets"), "{audit}");
    assert!(audit.contains("get_object"), "{audit}");
    assert!(audit.contains("NoSuchKey"), "{audit}");

    // The same log line and metrics record as the Python package.
    let records = metrics("rs-list");
    let list = records
        .iter()
        .find(|r| r["operation"] == "list_buckets")
        .expect("a metrics record");
    assert_eq!(list["service"], "s3");
    assert_eq!(list["risk_level"], "low");
    assert_eq!(list["decision"], "approved");
    assert_eq!(list["dry_run"], false);
    assert!(list["action_id"].as_str().unwrap().starts_with("act_"));
    assert!(
        audit.contains(list["action_id"].as_str().unwrap()),
        "audit has the same id"
    );
    for key in ["risk_score", "latency_ms", "reason"] {
        assert!(list.get(key).is_some(), "{key} in {list}");
    }
    let line = format!(
        "[Ascend Governance] s3.list_buckets - Risk: LOW ({}) - APPROVED",
        list["risk_score"]
    );
    assert!(
        log_lines("ascend_aws").contains(&(log::Level::Info, line.clone())),
        "{line}"
    );
}

#[tokio::test]
async fn dry_run_lets_a_held_call_run_and_says_so() {
    let (moto, platform) = parts().await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("dry-bucket")
        .send()
        .await
        .unwrap();
    let ascend = platform
        .ascend("rs-dry", |c| c.settings.dry_run = true)
        .await;
    let s3 = moto.s3(Some(&ascend));
    s3.delete_bucket()
        .bucket("dry-bucket")
        .send()
        .await
        .expect("dry run: the call runs");
    assert!(!bucket_exists(&plain, "dry-bucket").await);
    let record = metrics("rs-dry")
        .into_iter()
        .find(|r| r["operation"] == "delete_bucket")
        .expect("a metrics record");
    assert_eq!(record["dry_run"], true);
    assert_eq!(record["risk_score"], 75);
    assert!(log_lines("ascend_aws").contains(&(
        log::Level::Info,
        "[DRY RUN] Would execute: s3.delete_bucket".to_string()
    )));
    assert_eq!(
        ascend.governor().stats().sync_requests,
        0,
        "nothing submitted"
    );
}

#[tokio::test]
async fn bypassed_service_is_neither_governed_nor_recorded() {
    capture_logs();
    let http = http();
    let moto = Moto::start(&http).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("owkai_agent_x", &dead, "rs-bypass");
    config.queue_dir = Some(dir.path().to_path_buf());
    config.fail_mode = Some(FailMode::Closed);
    config.settings.bypass_services = vec!["S3".into()];
    let ascend = Ascend::new(config).unwrap();
    let s3 = moto.s3(Some(&ascend));
    s3.create_bucket()
        .bucket("bypassed")
        .send()
        .await
        .expect("bypassed: runs although the platform is down and the mode is closed");
    s3.list_buckets().send().await.unwrap();
    assert!(
        metrics("rs-bypass").is_empty(),
        "no record for bypassed calls"
    );
    assert_eq!(ascend.governor().stats().events_queued, 0);
}

#[tokio::test]
async fn presigning_is_local_and_not_governed() {
    capture_logs();
    let http = http();
    let moto = Moto::start(&http).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("owkai_agent_x", &dead, "rs-presign");
    config.queue_dir = Some(dir.path().to_path_buf());
    config.fail_mode = Some(FailMode::Closed);
    let ascend = Ascend::new(config).unwrap();
    let s3 = moto.s3(Some(&ascend));
    let presigned = s3
        .get_object()
        .bucket("any-bucket")
        .key("k")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60)).unwrap(),
        )
        .await
        .expect("presigning sends nothing and is not governed");
    assert!(presigned.uri().contains("any-bucket"));
    assert!(metrics("rs-presign").is_empty());
    // The same client's real calls are governed (platform down, mode closed: denied).
    let err = s3.list_buckets().send().await.expect_err("governed");
    assert!(ascend_aws::denial(&err).is_some());
    assert_eq!(metrics("rs-presign").len(), 1);
}

#[tokio::test]
async fn delete_bucket_is_held_until_approved_then_runs() {
    let (moto, platform) = parts().await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("team-logs")
        .send()
        .await
        .unwrap();
    let ascend = platform
        .ascend("rs-approve", |c| {
            c.approval_timeout = Duration::from_secs(30)
        })
        .await;
    let s3 = moto.s3(Some(&ascend));
    let call = tokio::spawn(async move { s3.delete_bucket().bucket("team-logs").send().await });
    let id = platform.pending("rs-approve").await;
    let action = platform
        .call(reqwest::Method::GET, &format!("/api/v1/actions/{id}"), None)
        .await;
    assert_eq!(action["risk_score"], 75, "{action}");
    assert!(
        action.to_string().contains("team-logs"),
        "parameters reach the platform: {action}"
    );
    assert!(
        bucket_exists(&plain, "team-logs").await,
        "nothing ran before the decision"
    );
    platform
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/actions/{id}/approve"),
            Some(json!({"comment": "ok"})),
        )
        .await;
    tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("approved call finished")
        .unwrap()
        .expect("approved delete_bucket succeeds");
    assert!(
        !bucket_exists(&plain, "team-logs").await,
        "bucket really gone"
    );
}

#[tokio::test]
async fn rejected_delete_fails_with_a_typed_denial_and_the_bucket_stays() {
    let (moto, platform) = parts().await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("keep-me")
        .send()
        .await
        .unwrap();
    let ascend = platform
        .ascend("rs-reject", |c| {
            c.approval_timeout = Duration::from_secs(30)
        })
        .await;
    let s3 = moto.s3(Some(&ascend));
    let call = tokio::spawn(async move { s3.delete_bucket().bucket("keep-me").send().await });
    let id = platform.pending("rs-reject").await;
    platform
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/actions/{id}/reject"),
            Some(json!({"reason": "not today"})),
        )
        .await;
    let err = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("rejected call finished")
        .unwrap()
        .expect_err("rejected call fails");
    let denied = ascend_aws::denial(&err).expect("a GovernanceDenied in the source chain");
    assert_eq!(denied.action_id, id);
    assert_eq!(
        (denied.risk_score, denied.risk_level),
        (75, RiskLevel::High)
    );
    assert!(!denied.pending);
    assert!(
        denied
            .to_string()
            .starts_with("Operation denied by Ascend governance.")
    );
    assert!(bucket_exists(&plain, "keep-me").await, "bucket still there");
}

#[tokio::test]
async fn approval_timeout_zero_fails_at_once_as_pending_then_the_grant_runs_once() {
    let (moto, platform) = parts().await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("wait-not")
        .send()
        .await
        .unwrap();
    let ascend = platform
        .ascend("rs-nowait", |c| c.approval_timeout = Duration::ZERO)
        .await;
    let s3 = moto.s3(Some(&ascend));
    // No approver runs: the call must come back on its own, long before any poll would.
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        s3.delete_bucket().bucket("wait-not").send(),
    )
    .await
    .expect("a held call does not wait when approval_timeout is zero")
    .expect_err("held call fails");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed at once: {:?}",
        started.elapsed()
    );
    let denied = ascend_aws::denial(&err).expect("a GovernanceDenied in the source chain");
    assert!(denied.pending, "{denied:?}");
    assert!(denied.action_id.starts_with("act_"), "{}", denied.action_id);
    assert_eq!(
        (denied.risk_score, denied.risk_level),
        (75, RiskLevel::High)
    );
    assert_eq!(
        platform.pending("rs-nowait").await,
        denied.action_id,
        "the action waits on the platform under the id the error carries"
    );
    assert!(
        bucket_exists(&plain, "wait-not").await,
        "nothing ran before the decision"
    );
    let record = metrics("rs-nowait")
        .into_iter()
        .find(|r| r["operation"] == "delete_bucket")
        .expect("a metrics record");
    assert_eq!(record["decision"], "pending");
    assert!(log_lines("ascend_aws").contains(&(
        log::Level::Info,
        "[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - PENDING".to_string()
    )));

    // Approved later: the same call, made again, runs once (the grant); a third asks anew.
    platform
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/actions/{}/approve", denied.action_id),
            Some(json!({"comment": "ok"})),
        )
        .await;
    s3.delete_bucket()
        .bucket("wait-not")
        .send()
        .await
        .expect("the approved call runs");
    assert!(!bucket_exists(&plain, "wait-not").await, "bucket gone");
    let err = s3
        .delete_bucket()
        .bucket("wait-not")
        .send()
        .await
        .expect_err("the grant is used once");
    assert!(ascend_aws::denial(&err).expect("typed denial").pending);
}

#[tokio::test]
async fn blocked_agent_is_denied_before_anything_is_sent() {
    let (moto, platform) = parts().await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("bucket-one")
        .send()
        .await
        .unwrap();
    let ascend = platform.ascend("rs-blocked", |_| {}).await;
    let s3 = moto.s3(Some(&ascend));
    // Allowed (and its decision remembered: no parameters) before the block.
    s3.list_buckets()
        .send()
        .await
        .expect("allowed before the block");
    platform
        .call(
            reqwest::Method::POST,
            "/api/v1/agents/rs-blocked/block",
            Some(json!({"reason": "incident 42"})),
        )
        .await;
    let started = Instant::now();
    while !ascend.governor().stats().blocked && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        ascend.governor().stats().blocked,
        "block reached the governor"
    );
    let err = s3
        .list_buckets()
        .send()
        .await
        .expect_err("blocked agent denied");
    let denied = ascend_aws::denial(&err).expect("typed denial");
    assert!(denied.reason.contains("incident 42"), "{}", denied.reason);
    assert!(denied.action_id.starts_with("act_"));
    let err = s3
        .delete_bucket()
        .bucket("bucket-one")
        .send()
        .await
        .expect_err("denied");
    assert!(ascend_aws::denial(&err).is_some());
    assert!(bucket_exists(&plain, "bucket-one").await);
}

#[tokio::test]
async fn platform_down_low_runs_high_is_denied_modes_override() {
    let http = http();
    let moto = Moto::start(&http).await;
    let plain = moto.s3(None);
    plain
        .create_bucket()
        .bucket("bucket-two")
        .send()
        .await
        .unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let make = |mode: Option<FailMode>| {
        let mut config = Config::new("owkai_agent_x", &dead, "rs-down");
        config.queue_dir = Some(dir.path().to_path_buf());
        config.fail_mode = mode;
        config.connect_timeout = Duration::from_millis(500);
        Ascend::new(config).unwrap()
    };
    let ascend = make(None);
    assert!(!ascend.ready(Duration::from_secs(5)).await);
    let s3 = moto.s3(Some(&ascend));
    s3.list_buckets().send().await.expect("LOW fails open");
    let err = s3
        .delete_bucket()
        .bucket("bucket-two")
        .send()
        .await
        .expect_err("HIGH fails closed");
    let denied = ascend_aws::denial(&err).expect("typed denial");
    assert_eq!(denied.risk_level, RiskLevel::High);
    assert!(
        denied.reason.contains("fail mode closed"),
        "{}",
        denied.reason
    );
    assert!(bucket_exists(&plain, "bucket-two").await);

    let closed = make(Some(FailMode::Closed));
    let err = moto
        .s3(Some(&closed))
        .list_buckets()
        .send()
        .await
        .expect_err("closed");
    assert!(ascend_aws::denial(&err).is_some());
    let open = make(Some(FailMode::Open));
    moto.s3(Some(&open))
        .delete_bucket()
        .bucket("bucket-two")
        .send()
        .await
        .expect("open lets HIGH run");
    assert!(!bucket_exists(&plain, "bucket-two").await);
}

#[tokio::test]
async fn governed_client_macro_governs_a_client_built_from_sdk_config() {
    let (moto, platform) = parts().await;
    moto.s3(None)
        .create_bucket()
        .bucket("from-sdk-config")
        .send()
        .await
        .unwrap();
    let ascend = platform.ascend("rs-sdkconfig", |_| {}).await;
    let sdk_config = aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
            Credentials::new("testing", "testing", None, None, "test"),
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let s3 = ascend_aws::governed_client!(aws_sdk_s3, &sdk_config, &ascend);
    let listed = s3.list_buckets().send().await.unwrap();
    assert_eq!(listed.buckets()[0].name(), Some("from-sdk-config"));
    let record = metrics("rs-sdkconfig");
    assert_eq!(record.len(), 1, "{record:?}");
    assert_eq!(record[0]["operation"], "list_buckets");
}
