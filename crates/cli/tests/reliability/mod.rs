//! Shared pieces of the reliability suites (crash, outage, secrets, soak): reading back
//! everything the platform stored, through its own API, so a suite can count records by
//! id after the platform was killed, stopped or loaded.
#![allow(dead_code)]

use std::collections::HashMap;

use serde_json::Value;

use crate::common::Server;

/// Every line of `GET /api/v1/audit` (JSON Lines), oldest first.
pub async fn audit_export(s: &Server) -> Vec<Value> {
    let resp = s
        .req(reqwest::Method::GET, "/api/v1/audit", &s.admin)
        .send()
        .await
        .expect("audit export");
    assert!(
        resp.status().is_success(),
        "audit export: {}",
        resp.status()
    );
    let text = resp.text().await.expect("audit export body");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}

/// Audit events per `(kind, action_id)`, in chain order.
pub fn events_by_action(lines: &[Value]) -> HashMap<(String, String), Vec<Value>> {
    let mut map: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for line in lines {
        let kind = line["kind"].as_str().unwrap_or_default().to_string();
        let id = line["action_id"].as_str().unwrap_or_default().to_string();
        map.entry((kind, id)).or_default().push(line.clone());
    }
    map
}

/// Every action the admin sees, by id (paged through `GET /api/v1/actions`, bounded).
pub async fn all_actions(s: &Server) -> HashMap<String, Value> {
    let mut stored = HashMap::new();
    for offset in (0..).step_by(100).take(1_000) {
        let (status, v) = s
            .get(
                &format!("/api/v1/actions?limit=100&offset={offset}"),
                &s.admin,
            )
            .await;
        assert!(status.is_success(), "list actions: {v}");
        let page = v["actions"].as_array().expect("actions").clone();
        for a in &page {
            stored.insert(a["id"].as_str().unwrap().to_string(), a.clone());
        }
        if page.len() < 100 {
            break;
        }
    }
    stored
}

/// `/api/v1/audit/verify` of the admin's organisation.
pub async fn verify(s: &Server) -> Value {
    s.get("/api/v1/audit/verify", &s.admin).await.1
}

/// One line of a figures table: `kind acknowledged lost duplicated`.
pub fn figure(backend: &str, kind: &str, acked: usize, lost: usize, duplicated: usize) -> String {
    format!(
        "FIGURE {backend:<10} {kind:<10} acknowledged {acked:>6}  lost {lost:>3}  duplicated {duplicated:>3}"
    )
}
