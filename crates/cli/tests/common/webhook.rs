//! A webhook receiver on loopback (a small axum server) and the delivery log read back,
//! for the suites that check what `ascend serve` sends to webhooks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::StatusCode;
use serde_json::Value;

use super::Server;

/// One POST the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
pub struct Inbox {
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Status codes to answer, in order; 200 once used up.
    pub plan: Arc<Mutex<VecDeque<u16>>>,
}

/// A webhook receiver on loopback.
pub struct Receiver {
    pub url: String,
    pub inbox: Inbox,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> AxStatus {
    inbox.got.lock().unwrap().push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let code = inbox.plan.lock().unwrap().pop_front().unwrap_or(200);
    AxStatus::from_u16(code).unwrap()
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::start_on(0, &[]).await
    }

    pub async fn start_on(port: u16, plan: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().unwrap();
        let inbox = Inbox::default();
        inbox.plan.lock().unwrap().extend(plan.iter().copied());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            inbox,
            task,
        }
    }

    pub fn got(&self) -> Vec<Received> {
        self.inbox.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` every 50 ms until it returns a value, at most 30 s.
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn log(s: &Server, hook: &str) -> Vec<Value> {
    let (st, v) = s
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"), &s.admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["deliveries"].as_array().unwrap().clone()
}

/// The delivery log once every delivery of `hook` left `pending` and there are `n`.
pub async fn settled_log(s: &Server, hook: &str, n: usize) -> Vec<Value> {
    wait_until(
        &format!("{n} settled deliveries of {hook}"),
        || async move {
            let log = log(s, hook).await;
            (log.len() == n && log.iter().all(|d| d["state"] != "pending")).then_some(log)
        },
    )
    .await
}
