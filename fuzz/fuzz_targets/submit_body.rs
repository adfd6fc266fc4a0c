//! Request bodies through the real router in-process (`ascend_server::in_process_app`
//! on a SQLite file, tower `oneshot`): the first byte picks the route, the rest is the
//! body. Never a panic, never a 5xx; every 4xx is `{"detail","error_code","timestamp"}`.
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt;

const ADMIN: &str = "owkai_admin_fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";
const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/actions/submit", "application/json"),
    ("POST", "/api/v1/audit/events", "application/json"),
    ("POST", "/api/v1/policies/test", "application/json"),
    ("PUT", "/api/v1/policies", "text/plain"),
    ("POST", "/api/v1/agents/fuzz/block", "application/json"),
    ("POST", "/api/v1/keys", "application/json"),
];

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
    _stop: tokio::sync::watch::Sender<bool>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("ascend-fuzz-{}", std::process::id()));
        let config = ascend_server::ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: ascend_server::StoreConfig {
                data_dir: dir,
                database_url: None,
                sqlite_synchronous: Default::default(),
            },
            pending_ttl_secs: 3600,
            rate_limit_per_sec: 0,
            bootstrap_key: Some(ADMIN.to_string()),
            webhooks: Default::default(),
        };
        let (app, stop) = rt
            .block_on(ascend_server::in_process_app(config))
            .expect("app");
        Harness {
            rt,
            app,
            _stop: stop,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, path, content_type) = ROUTES[pick as usize % ROUTES.len()];
    let h = harness();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("X-API-Key", ADMIN)
        .header("Content-Type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("request");
    let (status, bytes) = h.rt.block_on(async {
        let response = h.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        let v: Value = serde_json::from_slice(&bytes).expect("a JSON error body");
        for field in ["detail", "error_code", "timestamp"] {
            assert!(v[field].is_string(), "error body without {field}: {v}");
        }
    }
    assert!(
        status == StatusCode::OK || status == StatusCode::CREATED || status.is_client_error(),
        "{status}"
    );
});
