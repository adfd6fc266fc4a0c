//! Isolation and roles (docs/reliability.md §3). One table: every route the server has —
//! read from its own `/openapi.json`, so a new route without a row fails the suite — plus
//! the compat routes outside the spec, each called by every kind of caller: the three
//! roles of organisation A, organisation B's admin and agent, a revoked key, no key and a
//! garbage key. Each cell asserts the status, that no body holds the other organisation's
//! ids, agent names or key prefixes, and that no body after creation holds a plaintext
//! key. The server runs with `ASCEND_LOG=debug`; its whole log is searched for the keys.
//! Runs on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::{Backend, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

suite!(
    every_route_every_caller,
    revoked_key_refused_on_the_next_request
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Admin,
    Approver,
    Agent,
    OtherAdmin,
    OtherAgent,
    Revoked,
    NoKey,
    Garbage,
}

const CALLERS: [Caller; 8] = [
    Caller::Admin,
    Caller::Approver,
    Caller::Agent,
    Caller::OtherAdmin,
    Caller::OtherAgent,
    Caller::Revoked,
    Caller::NoKey,
    Caller::Garbage,
];

impl Caller {
    /// The role of a valid key; `None` for callers that must be refused as unauthenticated.
    fn role(self) -> Option<&'static str> {
        match self {
            Caller::Admin | Caller::OtherAdmin => Some("admin"),
            Caller::Approver => Some("approver"),
            Caller::Agent | Caller::OtherAgent => Some("agent"),
            Caller::Revoked | Caller::NoKey | Caller::Garbage => None,
        }
    }

    fn is_other_org(self) -> bool {
        matches!(self, Caller::OtherAdmin | Caller::OtherAgent)
    }
}

/// Who may call a route at all.
#[derive(Clone, Copy, Debug)]
enum Access {
    Public,
    Roles(&'static [&'static str]),
}

/// What an allowed key of organisation B gets from the row's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Foreign {
    /// The route works on the caller's own organisation (lists, create, settings).
    Own,
    /// The path names one of A's records: B must get 404, as for an id that never existed.
    Hidden,
}

/// A record the cell consumes, made fresh in organisation A before each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fresh {
    Nothing,
    /// `{id}` = a new pending action of A's agent (approve and reject decide it once).
    PendingAction,
    /// `{id}` = a new key of A (revoke consumes it).
    Key,
    /// `{id}` = a new webhook of A (delete consumes it).
    Webhook,
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    Text(&'static str),
}

struct Row {
    method: Method,
    /// The path as `/openapi.json` names it; `None` for routes outside the spec.
    spec: Option<&'static str>,
    /// The path called; `{id}` is replaced by the fresh record when there is one.
    path: String,
    body: Body,
    access: Access,
    foreign: Foreign,
    fresh: Fresh,
    ok: StatusCode,
}

fn row(method: Method, spec: &'static str, path: impl Into<String>, access: Access) -> Row {
    Row {
        method,
        spec: Some(spec),
        path: path.into(),
        body: Body::None,
        access,
        foreign: Foreign::Own,
        fresh: Fresh::Nothing,
        ok: StatusCode::OK,
    }
}

impl Row {
    fn json(mut self, v: Value) -> Row {
        self.body = Body::Json(v);
        self
    }
    fn hidden(mut self) -> Row {
        self.foreign = Foreign::Hidden;
        self
    }
    fn fresh(mut self, f: Fresh) -> Row {
        self.fresh = f;
        self.foreign = Foreign::Hidden;
        self
    }
    fn outside_spec(mut self) -> Row {
        self.spec = None;
        self
    }

    fn expected(&self, caller: Caller) -> StatusCode {
        let roles = match self.access {
            Access::Public => return StatusCode::OK,
            Access::Roles(roles) => roles,
        };
        let Some(role) = caller.role() else {
            return StatusCode::UNAUTHORIZED;
        };
        if !roles.contains(&role) {
            return StatusCode::FORBIDDEN;
        }
        if caller.is_other_org() && self.foreign == Foreign::Hidden {
            return StatusCode::NOT_FOUND;
        }
        self.ok
    }
}

const ALL: Access = Access::Roles(&["admin", "approver", "agent"]);
const ADMIN: Access = Access::Roles(&["admin"]);
const REVIEWERS: Access = Access::Roles(&["admin", "approver"]);
const SUBMITTERS: Access = Access::Roles(&["admin", "agent"]);

/// Distinctive strings of one organisation that must never reach the other's bodies.
#[derive(Default)]
struct Marks(Vec<String>);

impl Marks {
    fn leaked_into(&self, body: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|m| body.contains(m.as_str()))
            .map(String::as_str)
    }
}

struct Org {
    admin: String,
    approver: String,
    agent: String,
    webhook: String,
    marks: Marks,
}

/// A webhook that can only fail (the discard port on loopback): its id and URL are marks.
async fn webhook(s: &Server, admin: &str, tag: &str) -> Value {
    let (st, v) = s
        .post(
            "/api/v1/webhooks",
            admin,
            json!({"url": format!("http://127.0.0.1:9/{tag}-hook-q7x"), "events": ["agent.blocked"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

/// Fills an organisation with an agent, a pending and an approved action, and notes what
/// would betray it: action ids, agent id and name, bucket, key ids and key prefixes.
async fn populate(s: &Server, admin: String, tag: &str) -> (Org, String) {
    let approver = s.key(&admin, "approver").await;
    let agent = s.key(&admin, "agent").await;
    let agent_id = format!("{tag}-agent-q7x");
    let mut marks = vec![
        agent_id.clone(),
        format!("{tag} Private Agent"),
        format!("{tag}-bucket-q7x"),
    ];
    let pending = s
        .submit(
            &agent,
            json!({"action_type": "s3.delete_bucket", "parameters": {"Bucket": format!("{tag}-bucket-q7x")},
                   "agent_id": agent_id, "agent_name": format!("{tag} Private Agent")}),
        )
        .await;
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let low = s
        .submit(
            &agent,
            json!({"service": "s3", "operation": "list_buckets", "parameters": {}, "agent_id": agent_id}),
        )
        .await;
    marks.push(pending["id"].as_str().unwrap().to_string());
    marks.push(low["id"].as_str().unwrap().to_string());
    let hook = webhook(s, &admin, tag).await;
    marks.push(hook["id"].as_str().unwrap().to_string());
    marks.push(format!("{tag}-hook-q7x"));
    let (st, keys) = s.get("/api/v1/keys", &admin).await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    for k in keys["keys"].as_array().unwrap() {
        marks.push(k["id"].as_str().unwrap().to_string());
        marks.push(k["prefix"].as_str().unwrap().to_string());
    }
    let org = Org {
        admin,
        approver,
        agent,
        webhook: hook["id"].as_str().unwrap().to_string(),
        marks: Marks(marks),
    };
    (org, pending["id"].as_str().unwrap().to_string())
}

fn table(action: &str, agent_id: &str, webhook: &str) -> Vec<Row> {
    use Method as M;
    let policy =
        "@id(\"iso\") forbid(principal, action == Action::\"iam:DeleteAccountAlias\", resource);";
    vec![
        row(M::GET, "/healthz", "/healthz", Access::Public),
        row(M::GET, "/metrics", "/metrics", Access::Public),
        row(M::GET, "/openapi.json", "/openapi.json", Access::Public).outside_spec(),
        row(M::GET, "/health", "/health", Access::Public).outside_spec(),
        row(M::GET, "/api/deployment-info", "/api/deployment-info", Access::Public).outside_spec(),
        row(M::POST, "/api/v1/actions/submit", "/api/v1/actions/submit", SUBMITTERS).json(
            json!({"service": "s3", "operation": "list_buckets", "parameters": {}, "agent_id": "row-agent"}),
        ),
        row(M::GET, "/api/v1/actions", "/api/v1/actions", ALL),
        row(M::GET, "/api/v1/actions/{id}", format!("/api/v1/actions/{action}"), ALL).hidden(),
        row(M::GET, "/api/v1/actions/{id}/status", format!("/api/v1/actions/{action}/status"), ALL)
            .hidden(),
        row(M::POST, "/api/v1/actions/{id}/approve", "/api/v1/actions/{id}/approve", REVIEWERS)
            .json(json!({"comment": "ok"}))
            .fresh(Fresh::PendingAction),
        row(M::POST, "/api/v1/actions/{id}/reject", "/api/v1/actions/{id}/reject", REVIEWERS)
            .json(json!({"reason": "no"}))
            .fresh(Fresh::PendingAction),
        row(M::POST, "/api/v1/actions/{id}/result", format!("/api/v1/actions/{action}/result"), SUBMITTERS)
            .json(json!({"status": "succeeded", "latency_ms": 3.0}))
            .hidden(),
        row(M::POST, "/api/v1/audit/events", "/api/v1/audit/events", SUBMITTERS).json(json!({"events": []})),
        row(M::GET, "/api/v1/audit", "/api/v1/audit", REVIEWERS),
        row(M::GET, "/api/v1/audit/verify", "/api/v1/audit/verify", REVIEWERS),
        row(M::GET, "/api/v1/policies", "/api/v1/policies", REVIEWERS),
        Row {
            body: Body::Text(policy),
            ..row(M::PUT, "/api/v1/policies", "/api/v1/policies", ADMIN)
        },
        row(M::POST, "/api/v1/policies/test", "/api/v1/policies/test", REVIEWERS)
            .json(json!({"action_type": "s3.list_buckets"})),
        row(M::GET, "/api/v1/bundle", "/api/v1/bundle", ALL),
        row(M::GET, "/api/v1/agents", "/api/v1/agents", REVIEWERS),
        row(M::GET, "/api/v1/agents/{agent_id}", format!("/api/v1/agents/{agent_id}"), REVIEWERS).hidden(),
        // A name both organisations may use: B blocking it registers B's own agent.
        row(M::POST, "/api/v1/agents/{agent_id}/block", "/api/v1/agents/shared-name/block", ADMIN)
            .json(json!({"reason": "isolation suite"})),
        row(M::POST, "/api/v1/agents/{agent_id}/unblock", "/api/v1/agents/shared-name/unblock", ADMIN)
            .json(json!({})),
        Row {
            ok: StatusCode::CREATED,
            ..row(M::POST, "/api/v1/keys", "/api/v1/keys", ADMIN).json(json!({"role": "agent", "name": "row key"}))
        },
        row(M::GET, "/api/v1/keys", "/api/v1/keys", ADMIN),
        row(M::DELETE, "/api/v1/keys/{id}", "/api/v1/keys/{id}", ADMIN).fresh(Fresh::Key),
        Row {
            ok: StatusCode::CREATED,
            ..row(M::POST, "/api/v1/webhooks", "/api/v1/webhooks", ADMIN)
                .json(json!({"url": "http://127.0.0.1:9/row-hook", "events": ["agent.blocked"]}))
        },
        row(M::GET, "/api/v1/webhooks", "/api/v1/webhooks", ADMIN),
        row(M::DELETE, "/api/v1/webhooks/{id}", "/api/v1/webhooks/{id}", ADMIN).fresh(Fresh::Webhook),
        row(M::GET, "/api/v1/webhooks/{id}/deliveries", format!("/api/v1/webhooks/{webhook}/deliveries"), ADMIN)
            .hidden(),
        row(M::GET, "/api/sdk/approval/{id}", format!("/api/sdk/approval/{action}"), ALL)
            .outside_spec()
            .hidden(),
        row(M::GET, "/api/sdk/kill-switch/status", format!("/api/sdk/kill-switch/status?agent_id={agent_id}"), ALL)
            .outside_spec(),
    ]
}

/// `(METHOD, path)` of every operation in the served spec.
fn spec_routes(api: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in api["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
            ) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

async fn send(
    s: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: &Body,
) -> (StatusCode, String) {
    let mut r = s.client.request(method, format!("{}{path}", s.url));
    if let Some(key) = key {
        r = r.header("X-API-Key", key);
    }
    r = match body {
        Body::None => r,
        Body::Json(v) => r.json(v),
        Body::Text(t) => r.header("Content-Type", "text/plain").body(*t),
    };
    let resp = r.send().await.expect("request");
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

async fn every_route_every_caller(b: Backend) {
    let s = Server::start_with_env(b, &[], &[("ASCEND_LOG", "debug")]).await;
    let (a, a_action) = populate(&s, s.admin.clone(), "Alpha").await;
    let b_admin = s.create_org("beta");
    let (o, _) = populate(&s, b_admin, "Beta").await;
    let revoked = s.key(&a.admin, "agent").await;
    let (_, listed) = s.get("/api/v1/keys", &a.admin).await;
    let revoked_id = listed["keys"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{revoked_id}"),
            &a.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Every plaintext key made so far; none may appear in a body after its creation.
    let mut secrets = vec![
        a.admin.clone(),
        a.approver.clone(),
        a.agent.clone(),
        o.admin.clone(),
        o.approver.clone(),
        o.agent.clone(),
        revoked.clone(),
    ];
    let garbage = "owkai_agent_00000000000000000000000000000000".to_string();

    let rows = table(&a_action, "Alpha-agent-q7x", &a.webhook);
    let (st, api) = s.get("/openapi.json", "").await;
    assert_eq!(st, StatusCode::OK);
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .filter_map(|r| r.spec.map(|p| (r.method.to_string(), p.to_string())))
        .collect();
    let served = spec_routes(&api);
    let missing: Vec<_> = served.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes in /openapi.json without a row in the isolation table: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "rows for routes /openapi.json does not have: {stale:?}"
    );

    let mut cells = 0;
    for r in &rows {
        for caller in CALLERS {
            let key = match caller {
                Caller::Admin => Some(a.admin.as_str()),
                Caller::Approver => Some(a.approver.as_str()),
                Caller::Agent => Some(a.agent.as_str()),
                Caller::OtherAdmin => Some(o.admin.as_str()),
                Caller::OtherAgent => Some(o.agent.as_str()),
                Caller::Revoked => Some(revoked.as_str()),
                Caller::NoKey => None,
                Caller::Garbage => Some(garbage.as_str()),
            };
            let path = match r.fresh {
                Fresh::Nothing => r.path.clone(),
                Fresh::PendingAction => {
                    let v = s
                        .submit(&a.agent, json!({"action_type": "s3.delete_bucket", "parameters": {"Bucket": format!("fresh-{cells}")}, "agent_id": "Alpha-agent-q7x"}))
                        .await;
                    // A new bucket each time: an approval grant must not decide it already.
                    assert_eq!(v["status"], "pending_approval", "{v}");
                    r.path.replace("{id}", v["id"].as_str().unwrap())
                }
                Fresh::Key => {
                    let (st, v) = s
                        .post(
                            "/api/v1/keys",
                            &a.admin,
                            json!({"role": "agent", "name": "to revoke"}),
                        )
                        .await;
                    assert_eq!(st, StatusCode::CREATED, "{v}");
                    secrets.push(v["key"].as_str().unwrap().to_string());
                    r.path.replace("{id}", v["id"].as_str().unwrap())
                }
                Fresh::Webhook => {
                    let v = webhook(&s, &a.admin, "fresh").await;
                    r.path.replace("{id}", v["id"].as_str().unwrap())
                }
            };
            let (st, text) = send(&s, r.method.clone(), &path, key, &r.body).await;
            let cell = format!("{caller:?} {} {path}", r.method);
            assert_eq!(st, r.expected(caller), "{cell}: {text}");
            if !st.is_success() {
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{cell}: error body is not JSON ({e}): {text}"));
                for field in ["detail", "error_code", "timestamp"] {
                    assert!(
                        v[field].is_string(),
                        "{cell}: error body lacks {field}: {text}"
                    );
                }
            }
            // Public routes belong to nobody: neither organisation may show there.
            let foreign: &[&Marks] = match (r.access, caller.is_other_org()) {
                (Access::Public, _) => &[&a.marks, &o.marks],
                (_, true) => &[&a.marks],
                (_, false) => &[&o.marks],
            };
            for marks in foreign {
                if let Some(m) = marks.leaked_into(&text) {
                    panic!("{cell}: body shows the other organisation's `{m}`: {text}");
                }
            }
            if let Some(k) = secrets.iter().find(|k| text.contains(k.as_str())) {
                panic!("{cell}: body shows the plaintext key {k}: {text}");
            }
            if r.method == Method::POST && r.spec == Some("/api/v1/keys") && st.is_success() {
                let v: Value = serde_json::from_str(&text).unwrap();
                secrets.push(v["key"].as_str().unwrap().to_string());
            }
            cells += 1;
        }
    }
    assert_eq!(cells, rows.len() * CALLERS.len());

    // The records every reader sees last: full lists, the audit export, the bundle.
    for path in [
        "/api/v1/actions?limit=100",
        "/api/v1/audit",
        "/api/v1/keys",
        "/api/v1/agents",
    ] {
        let (st, text) = send(&s, Method::GET, path, Some(&a.admin), &Body::None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {text}");
        if let Some(k) = secrets.iter().find(|k| text.contains(k.as_str())) {
            panic!("{path} shows the plaintext key {k}");
        }
    }
    let log = s.log_text();
    assert!(
        log.contains("DEBUG"),
        "the server did not log at debug level:\n{}",
        s.log_tail()
    );
    for k in &secrets {
        assert!(
            !log.contains(k.as_str()),
            "the server log shows the plaintext key {k}"
        );
        // Not even the random part alone.
        let random = &k[k.rfind('_').unwrap() + 1..];
        assert!(
            !log.contains(random),
            "the server log shows the random part of {k}"
        );
    }
}

async fn revoked_key_refused_on_the_next_request(b: Backend) {
    let s = Server::start(b).await;
    for role in ["agent", "approver", "admin"] {
        let key = s.key(&s.admin, role).await;
        let (_, listed) = s.get("/api/v1/keys", &s.admin).await;
        let id = listed["keys"].as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Used (and so cached where the server caches keys) right before the revocation.
        for _ in 0..3 {
            let (st, v) = s.get("/api/v1/bundle", &key).await;
            assert_eq!(st, StatusCode::OK, "{role}: {v}");
        }
        let (st, v) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/keys/{id}"),
                &s.admin,
                Value::Null,
            )
            .await;
        assert_eq!((st, &v["revoked"]), (StatusCode::OK, &json!(true)), "{v}");
        let (st, v) = s.get("/api/v1/bundle", &key).await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "{role} key worked after revocation: {v}"
        );
        assert_eq!(v["error_code"], "AUTH_FAILED");
        // Bearer spelling too, and revoking again is harmless.
        let resp = s
            .client
            .get(format!("{}/api/v1/bundle", s.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/keys/{id}"),
                &s.admin,
                Value::Null,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = s.get("/api/v1/bundle", &key).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, v) = s.get("/api/v1/bundle", &s.admin).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "the revoking admin's own key still works: {v}"
    );
    // A key cannot revoke itself (schemathesis found the admin locking itself out).
    let (_, listed) = s.get("/api/v1/keys", &s.admin).await;
    let own = listed["keys"][0]["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{own}"),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(
        (st, &v["error_code"]),
        (StatusCode::CONFLICT, &json!("CONFLICT")),
        "{v}"
    );
    assert!(
        v["detail"].as_str().unwrap().contains("another admin key"),
        "{v}"
    );
    let (_, after) = s.get("/api/v1/keys", &s.admin).await;
    assert_eq!(after["keys"][0]["revoked"], false, "{after}");
    let (st, _) = s.get("/api/v1/bundle", &s.admin).await;
    assert_eq!(st, StatusCode::OK);
}
