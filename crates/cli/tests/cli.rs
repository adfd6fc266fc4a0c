//! The `ascend` command against a real server: bootstrap, `orgs create`, and the operator
//! commands over HTTP.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Backend, Server, free_port, high, http, low};
use serde_json::Value;

fn run(s: &Server, key: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ASCEND_URL", &s.url)
        .env("ASCEND_API_KEY", key)
        .output()
        .expect("run ascend")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands() {
    let s = Server::start(Backend::Sqlite).await;
    let approver = ok(&run(
        &s,
        &s.admin,
        &["keys", "create", "--role", "approver", "--name", "ops"],
    ))
    .trim()
    .to_string();
    assert!(approver.starts_with("owkai_approver_") && !approver.contains('\n'));
    let listed = ok(&run(&s, &s.admin, &["keys", "list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let pending = s.submit(&s.admin, high("cli-agent", "b")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = s.submit(&s.admin, high("cli-agent", "c")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.submit(&s.admin, low("cli-agent")).await;
    let list = ok(&run(
        &s,
        &approver,
        &["actions", "list", "--status", "pending_approval"],
    ));
    assert_eq!(list.lines().count(), 2, "{list}");
    let shown: Value =
        serde_json::from_str(&ok(&run(&s, &approver, &["actions", "show", &pending]))).unwrap();
    assert_eq!(shown["operation"], "s3.delete_bucket");
    assert!(
        ok(&run(
            &s,
            &approver,
            &["actions", "approve", &pending, "--comment", "go"]
        ))
        .contains("approved")
    );
    assert!(
        ok(&run(
            &s,
            &approver,
            &["actions", "reject", &other, "--reason", "no"]
        ))
        .contains("denied")
    );
    let again = run(&s, &approver, &["actions", "approve", &pending]);
    assert_eq!(again.status.code(), Some(2), "a second decision is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("409"));
    ok(&run(
        &s,
        &s.admin,
        &["agents", "block", "cli-agent", "--reason", "drill"],
    ));
    assert!(ok(&run(&s, &s.admin, &["agents", "list"])).contains("BLOCKED"));
    assert_eq!(
        s.submit(&s.admin, low("cli-agent")).await["status"],
        "denied"
    );
    ok(&run(&s, &s.admin, &["agents", "unblock", "cli-agent"]));
    // Policies: push (validated), pull.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.cedar");
    std::fs::write(
        &good,
        "@id(\"no-delete\")\nforbid(principal, action == Action::\"s3:DeleteBucket\", resource);\n",
    )
    .unwrap();
    ok(&run(
        &s,
        &s.admin,
        &["policy", "push", good.to_str().unwrap()],
    ));
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "permit(principal, action, resource)\n  when { oops };\n",
    )
    .unwrap();
    let out = run(&s, &s.admin, &["policy", "push", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2:"),
        "errors carry the line: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pulled = dir.path().join("pulled.cedar");
    ok(&run(
        &s,
        &approver,
        &["policy", "pull", "-o", pulled.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read_to_string(&pulled).unwrap(),
        std::fs::read_to_string(&good).unwrap()
    );
    // Audit export and verify.
    let export = dir.path().join("audit.jsonl");
    ok(&run(
        &s,
        &approver,
        &["audit", "export", "-o", export.to_str().unwrap()],
    ));
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), 6, "{lines}");
    assert!(
        lines
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    let stdout = ok(&run(
        &s,
        &approver,
        &["audit", "export", "--decision", "denied"],
    ));
    assert_eq!(stdout.lines().count(), 2);
    assert!(ok(&run(&s, &approver, &["audit", "verify"])).contains("valid: 6 events"));
    // Errors: no key → 2; a wrong key → 2; nobody listening → 1.
    let out = Command::new(BIN)
        .args(["keys", "list", "--url", &s.url])
        .env_remove("ASCEND_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        run(&s, "owkai_admin_wrong", &["keys", "list"])
            .status
            .code(),
        Some(2)
    );
    let out = Command::new(BIN)
        .args([
            "keys",
            "list",
            "--api-key",
            "k",
            "--url",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // orgs create on the store of a running server; the key works at once.
    let key = s.create_org("gamma");
    assert_eq!(ok(&run(&s, &key, &["keys", "list"])).lines().count(), 1);
    let dup = s.cli(&[
        "orgs",
        "create",
        "gamma",
        "--data-dir",
        s.data_dir.to_str().unwrap(),
    ]);
    assert_eq!(dup.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_makes_one_admin_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/missing/data");
    let client = http();
    let start = |port: u16| {
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("ASCEND_DATA_DIR", &data)
            .env_remove("ASCEND_BOOTSTRAP_KEY")
            .env_remove("ASCEND_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_ready = |port: u16| {
        let client = client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if client
                    .get(format!("http://127.0.0.1:{port}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("not ready");
        }
    };
    let port = free_port();
    let first = start(port);
    wait_ready(port).await;
    let key_file = data.join("admin.key");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("owkai_admin_"));
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let resp = client
        .get(format!("http://127.0.0.1:{port}/api/v1/keys"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(first.id().to_string())
        .status();
    let out = tokio::task::block_in_place(|| first.wait_with_output()).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&key),
        "the key is printed once"
    );
    // Second start: no new key, the file is untouched.
    let port = free_port();
    let second = start(port);
    wait_ready(port).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(second.id().to_string())
        .status();
    let out = tokio::task::block_in_place(|| second.wait_with_output()).unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("owkai_admin_"));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);
    // A bootstrap key of the wrong shape is refused.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:1"])
        .env("ASCEND_DATA_DIR", dir.path().join("x"))
        .env("ASCEND_BOOTSTRAP_KEY", "owkai_agent_x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A `--sqlite-synchronous` (or `ASCEND_SQLITE_SYNCHRONOUS`) other than `full` or `normal`
/// is refused before anything is created, naming what is accepted.
#[test]
fn an_unknown_sqlite_synchronous_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let by_flag = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--sqlite-synchronous",
            "off",
        ])
        .env("ASCEND_DATA_DIR", &data)
        .env_remove("ASCEND_SQLITE_SYNCHRONOUS")
        .output()
        .unwrap();
    let by_env = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:1"])
        .env("ASCEND_DATA_DIR", &data)
        .env("ASCEND_SQLITE_SYNCHRONOUS", "sometimes")
        .output()
        .unwrap();
    for (out, value) in [(by_flag, "off"), (by_env, "sometimes")] {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("invalid value '{value}'"))
                && err.contains("--sqlite-synchronous")
                && err.contains("full")
                && err.contains("normal"),
            "{err}"
        );
    }
    assert!(!data.exists(), "nothing is created for a refused setting");
}
