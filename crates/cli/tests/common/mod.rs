//! Test harness: the real `ascend serve` binary on a free loopback port, with a temp data
//! dir (SQLite) or a fresh PostgreSQL database, spoken to over HTTP.
#![allow(dead_code)]

pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// `suite!(case, …)`: each `async fn case(backend: Backend)` of the test file runs twice,
/// as `sqlite::case` and `postgres::case` (a fresh database per case). Needs `Backend` in
/// scope at the file's root and `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

pub const BIN: &str = env!("CARGO_BIN_EXE_ascend");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("http client")
}

/// A fresh PostgreSQL database, dropped at the end. PostgreSQL not answering is a
/// failure, never a skip.
pub struct PgDb {
    pub url: String,
    admin_url: String,
    name: String,
}

fn pg_base() -> String {
    std::env::var("ASCEND_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl PgDb {
    pub async fn create() -> PgDb {
        use sqlx::Connection;
        let base = pg_base();
        let root = base
            .rsplit_once('/')
            .map(|(r, _)| r.to_string())
            .unwrap_or(base.clone());
        let admin_url = format!("{root}/postgres");
        let name = format!("ascend_t_{:016x}", rand::random::<u64>());
        let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => panic!(
                "PostgreSQL does not answer at {admin_url} (from ASCEND_TEST_DATABASE_URL={base}): {e}. \
                 The PostgreSQL half of the suite needs it; start PostgreSQL or point \
                 ASCEND_TEST_DATABASE_URL at one."
            ),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        PgDb {
            url: format!("{root}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// A running `ascend serve`.
pub struct Server {
    pub url: String,
    pub admin: String,
    pub backend: Backend,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub client: reqwest::Client,
    child: Option<Child>,
    log: PathBuf,
    extra: Vec<String>,
    /// Environment of the `ascend serve` process (e.g. `ASCEND_LOG`).
    pub env: Vec<(String, String)>,
    _db: Option<PgDb>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, extra: &[&str]) -> Server {
        Self::start_with_env(backend, extra, &[]).await
    }

    /// Starts with extra environment variables for the server process (e.g. `ASCEND_LOG`).
    pub async fn start_with_env(backend: Backend, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = match backend {
            Backend::Postgres => Some(PgDb::create().await),
            Backend::Sqlite => None,
        };
        let admin = format!("owkai_admin_test{:016x}", rand::random::<u64>());
        let mut server = Server {
            url: String::new(),
            admin,
            backend,
            data_dir: dir.path().join("data"),
            database_url: db.as_ref().map(|d| d.url.clone()),
            client: http(),
            child: None,
            log: dir.path().join("serve.log"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _db: db,
            _dir: dir,
        };
        server.spawn().await;
        server
    }

    /// Another replica on the same PostgreSQL database (its own data dir and port).
    pub async fn replica(&self) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server {
            url: String::new(),
            admin: self.admin.clone(),
            backend: self.backend,
            data_dir: dir.path().join("data"),
            database_url: self.database_url.clone(),
            client: http(),
            child: None,
            log: dir.path().join("serve.log"),
            extra: self.extra.clone(),
            env: self.env.clone(),
            _db: None,
            _dir: dir,
        };
        server.spawn().await;
        server
    }

    /// Arguments of the next `spawn` (after the listen address and data dir).
    pub fn set_args(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
    }

    /// Starts (again) on a new port with the same store.
    pub async fn spawn(&mut self) {
        self.spawn_at(free_port()).await;
    }

    /// This server's port.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a port")
    }

    /// Starts (again) on `port` with the same store: clients that know the old address
    /// find the platform back where it was.
    pub async fn spawn_at(&mut self, port: u16) {
        self.url = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .env("ASCEND_BOOTSTRAP_KEY", &self.admin)
            .env_remove("ASCEND_DATABASE_URL")
            .env_remove("ASCEND_LISTEN")
            .env_remove("ASCEND_DATA_DIR")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        self.child = Some(cmd.spawn().expect("spawn ascend serve"));
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("ascend serve exited with {status}:\n{}", self.log_tail());
            }
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ascend serve not ready in 30 s:\n{}", self.log_tail());
    }

    /// Everything the server processes of this store wrote to stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The same, read now.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text[text.len().saturating_sub(4000)..].to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    pub fn req(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .header("X-API-Key", key)
    }

    /// Sends JSON (or nothing for `Value::Null`) and reads JSON back.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path, key);
        if !body.is_null() {
            r = r.json(&body);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, key, Value::Null).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.req(Method::GET, "/metrics", "")
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, key, body).await
    }

    pub async fn key(&self, admin: &str, role: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/keys",
                admin,
                json!({"role": role, "name": format!("{role} key")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"].as_str().expect("key").to_string()
    }

    pub async fn submit(&self, key: &str, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/actions/submit", key, body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// `ascend <args>` with this server's store flags or URL as the caller adds them.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env_remove("ASCEND_API_KEY")
            .env_remove("ASCEND_URL")
            .output()
            .expect("run ascend")
    }

    /// `ascend orgs create NAME` on this server's store; returns the new admin key.
    pub fn create_org(&self, name: &str) -> String {
        let mut args = vec![
            "orgs",
            "create",
            name,
            "--data-dir",
            self.data_dir.to_str().unwrap(),
        ];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url", url]);
        }
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "orgs create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            key.starts_with("owkai_admin_") && !key.contains('\n'),
            "{key}"
        );
        key
    }

    pub fn data_path(&self, name: &str) -> PathBuf {
        Path::new(&self.data_dir).join(name)
    }

    /// A connection of its own to a SQLite server's file, to change rows behind its back.
    pub async fn open_sqlite(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let url = format!("sqlite://{}", self.data_path("ascend.db").display());
        sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open the SQLite file")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A HIGH call that needs approval by default.
pub fn high(agent: &str, bucket: &str) -> Value {
    json!({"action_type": "s3.delete_bucket", "parameters": {"Bucket": bucket}, "agent_id": agent, "agent_name": "Test Agent"})
}

/// A LOW call that is auto-approved by default.
pub fn low(agent: &str) -> Value {
    json!({"service": "s3", "operation": "list_buckets", "parameters": {}, "agent_id": agent, "region": "us-east-1"})
}
