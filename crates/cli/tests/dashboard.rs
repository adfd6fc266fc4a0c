//! The dashboard's sharp edges, without a browser: the real `ascend serve` on SQLite and
//! on PostgreSQL, spoken to as a browser would (cookies, url-encoded forms, redirects not
//! followed). The browser journeys are in tests/dashboard/ (headless Chromium).

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Backend, Server, high};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

suite!(
    signed_out_pages_redirect_and_stay_out_of_openapi,
    agent_and_bad_keys_cannot_sign_in,
    forms_without_the_csrf_token_change_nothing,
    revoked_key_and_sign_out_end_the_session,
    other_organisations_ids_are_not_found,
    approvers_cannot_block_or_save_policies,
    invalid_policies_show_their_line_and_test_shows_the_verdict,
    approve_and_reject_decide_the_action,
    block_and_unblock_flip_the_kill_switch,
    audit_search_filters_pages_and_exports,
    live_queue_streams_new_pending_actions,
    every_page_renders,
);

/// A browser's view of the dashboard: one session cookie, redirects not followed.
struct Web {
    base: String,
    client: reqwest::Client,
    cookie: String,
}

struct Page {
    status: StatusCode,
    location: String,
    set_cookie: Vec<String>,
    html: String,
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The first `name="csrf" value="…"` of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no csrf field in {html}"));
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

fn cookie_value(set_cookie: &[String], name: &str) -> Option<String> {
    set_cookie.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

impl Web {
    fn new(server: &Server) -> Web {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Web {
            base: server.url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            cookie: String::new(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<String>) -> Page {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if !self.cookie.is_empty() {
            req = req.header(COOKIE, &self.cookie);
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let set_cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        let html = resp.text().await.unwrap_or_default();
        Page {
            status,
            location,
            set_cookie,
            html,
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form(fields))).await
    }

    /// Posts the sign-in form as a browser does (its CSRF cookie and field).
    async fn try_sign_in(&mut self, key: &str) -> Page {
        let form_page = self.get("/login").await;
        assert_eq!(form_page.status, StatusCode::OK, "{}", form_page.html);
        let login_csrf =
            cookie_value(&form_page.set_cookie, "ascend_login_csrf").expect("login csrf cookie");
        assert_eq!(csrf_of(&form_page.html), login_csrf);
        self.cookie = format!("ascend_login_csrf={login_csrf}");
        let page = self
            .post("/login", &[("csrf", &login_csrf), ("key", key)])
            .await;
        if let Some(session) = cookie_value(&page.set_cookie, "ascend_session") {
            self.cookie = format!("ascend_session={session}");
        }
        page
    }

    async fn sign_in(server: &Server, key: &str) -> Web {
        let mut web = Web::new(server);
        let page = web.try_sign_in(key).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        assert_eq!(page.location, "/");
        let cookie = page
            .set_cookie
            .iter()
            .find(|c| c.starts_with("ascend_session="))
            .expect("session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        web
    }

    /// The session's CSRF token, read from a page as a browser has it.
    async fn csrf(&self) -> String {
        let page = self.get("/approvals").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        csrf_of(&page.html)
    }
}

async fn status_of(server: &Server, id: &str) -> Value {
    let (status, v) = server
        .get(&format!("/api/v1/actions/{id}"), &server.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn pending_action(server: &Server, agent: &str) -> String {
    let key = server.key(&server.admin, "agent").await;
    // Each its own bucket: an approved twin would be granted, not pending.
    let bucket = format!("prod-logs-{:08x}", rand::random::<u32>());
    let v = server.submit(&key, high(agent, &bucket)).await;
    assert_eq!(v["status"], "pending_approval", "{v}");
    v["id"].as_str().expect("id").to_string()
}

async fn blocked(server: &Server, agent: &str) -> bool {
    let (status, v) = server
        .get(&format!("/api/v1/agents/{agent}"), &server.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["blocked"] == json!(true)
}

async fn policies_version(server: &Server) -> i64 {
    let (status, v) = server.get("/api/v1/policies", &server.admin).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["version"].as_i64().expect("version")
}

async fn signed_out_pages_redirect_and_stay_out_of_openapi(backend: Backend) {
    let server = Server::start(backend).await;
    let web = Web::new(&server);
    for path in [
        "/",
        "/approvals",
        "/audit",
        "/agents",
        "/policies",
        "/dashboard/events",
    ] {
        let page = web.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location, "/login", "{path}");
    }
    let page = web.post("/approvals/act_x/approve", &[("csrf", "x")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let css = web.get("/assets/dashboard.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.html.contains(".card"));
    assert_eq!(
        web.get("/assets/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
    let (status, spec) = server.get("/openapi.json", &server.admin).await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1/actions/submit"));
    assert!(
        paths
            .keys()
            .all(|p| p.starts_with("/api/") || p == "/healthz" || p == "/metrics"),
        "{:?}",
        paths.keys()
    );
    // The JSON API still answers JSON errors.
    let (status, v) = server.get("/api/v1/nope", &server.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error_code"], "NOT_FOUND");
}

async fn agent_and_bad_keys_cannot_sign_in(backend: Backend) {
    let server = Server::start(backend).await;
    let agent = server.key(&server.admin, "agent").await;
    let cases = [
        (agent.as_str(), "Agent keys cannot sign in"),
        (
            "owkai_admin_not_a_real_key",
            "not valid or has been revoked",
        ),
        ("", "not valid or has been revoked"),
    ];
    for (key, message) in cases {
        let mut web = Web::new(&server);
        let page = web.try_sign_in(key).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(page.html.contains(message), "{key}: {}", page.html);
        assert!(cookie_value(&page.set_cookie, "ascend_session").is_none());
        assert_eq!(web.get("/").await.status, StatusCode::SEE_OTHER);
    }
    // The sign-in form itself needs its CSRF token (cookie and field alike).
    let mut web = Web::new(&server);
    let page = web.post("/login", &[("key", &server.admin)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    assert!(page.html.contains("CSRF"));
    assert!(cookie_value(&page.set_cookie, "ascend_session").is_none());
    web.cookie = "ascend_login_csrf=abc".into();
    let page = web
        .post("/login", &[("key", &server.admin), ("csrf", "abd")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // And the admin key does sign in.
    let page = web.try_sign_in(&server.admin).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let approver = server.key(&server.admin, "approver").await;
    Web::sign_in(&server, &approver).await;
}

async fn forms_without_the_csrf_token_change_nothing(backend: Backend) {
    let server = Server::start(backend).await;
    let id = pending_action(&server, "csrf-agent").await;
    let web = Web::sign_in(&server, &server.admin).await;
    let csrf = web.csrf().await;
    let approve = format!("/approvals/{id}/approve");
    let attempts: [&[(&str, &str)]; 3] = [
        &[("comment", "ok")],
        &[("comment", "ok"), ("csrf", "")],
        &[
            ("comment", "ok"),
            ("csrf", "WRONGwrongWRONGwrongWRONGwrong12"),
        ],
    ];
    for fields in attempts {
        let page = web.post(&approve, fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(page.html.contains("nothing was"), "{}", page.html);
        let page = web.post(&format!("/approvals/{id}/reject"), fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = web.post("/agents/csrf-agent/block", fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = web
            .post(
                "/policies",
                &[
                    fields,
                    &[("policies", "forbid(principal, action, resource);")],
                ]
                .concat(),
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = web.post("/logout", fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(status_of(&server, &id).await["status"], "pending");
    assert!(!blocked(&server, "csrf-agent").await);
    assert_eq!(policies_version(&server).await, 0);
    assert_eq!(
        web.get("/approvals").await.status,
        StatusCode::OK,
        "still signed in"
    );
    // Another session's token is no good either.
    let other = Web::sign_in(&server, &server.admin).await;
    let other_csrf = other.csrf().await;
    assert_ne!(other_csrf, csrf);
    let page = web.post(&approve, &[("csrf", &other_csrf)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&server, &id).await["status"], "pending");
    // With its token the same form works: the refusals above were the token's doing.
    let page = web.post(&approve, &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(status_of(&server, &id).await["status"], "approved");
}

async fn revoked_key_and_sign_out_end_the_session(backend: Backend) {
    let server = Server::start(backend).await;
    let (status, created) = server
        .post(
            "/api/v1/keys",
            &server.admin,
            json!({"role": "approver", "name": "Ann"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key");
    let web = Web::sign_in(&server, key).await;
    let page = web.get("/approvals").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Ann"), "the page names who is signed in");
    let id = pending_action(&server, "revoked-agent").await;
    let csrf = web.csrf().await;
    let (status, v) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{}", created["id"].as_str().expect("id")),
            &server.admin,
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let page = web.get("/approvals").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/login");
    let page = web
        .post(&format!("/approvals/{id}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&server, &id).await["status"], "pending");
    // A revoked key cannot sign in again.
    let page = Web::new(&server).try_sign_in(key).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);

    // Sign-out ends the session on the server, not only in the browser.
    let web = Web::sign_in(&server, &server.admin).await;
    let csrf = web.csrf().await;
    let page = web.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/login");
    assert!(
        page.set_cookie
            .iter()
            .any(|c| c.starts_with("ascend_session=;"))
    );
    assert_eq!(web.get("/approvals").await.status, StatusCode::SEE_OTHER);
}

async fn other_organisations_ids_are_not_found(backend: Backend) {
    let server = Server::start(backend).await;
    let id = pending_action(&server, "org-a-agent").await;
    let other_admin = server.create_org("beta");
    let web = Web::sign_in(&server, &other_admin).await;
    let csrf = web.csrf().await;
    let queue = web.get("/approvals").await;
    assert!(!queue.html.contains(&id), "another organisation's queue");
    for path in [
        format!("/approvals/{id}/approve"),
        format!("/approvals/{id}/reject"),
    ] {
        let page = web.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.html);
        assert!(page.html.contains("action not found"));
    }
    assert_eq!(status_of(&server, &id).await["status"], "pending");
    for path in ["/agents/org-a-agent/block", "/agents/org-a-agent/unblock"] {
        let page = web
            .post(path, &[("csrf", &csrf), ("reason", "not yours")])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(!blocked(&server, "org-a-agent").await);
    let agents = web.get("/agents").await;
    assert!(!agents.html.contains("org-a-agent"));
    let audit = web.get("/audit").await;
    assert!(!audit.html.contains(&id));
}

async fn approvers_cannot_block_or_save_policies(backend: Backend) {
    let server = Server::start(backend).await;
    pending_action(&server, "guarded-agent").await;
    let approver = server.key(&server.admin, "approver").await;
    let web = Web::sign_in(&server, &approver).await;
    let csrf = web.csrf().await;
    let agents = web.get("/agents").await;
    assert!(agents.html.contains("guarded-agent"));
    assert!(
        !agents.html.contains("/block\""),
        "no block control for approvers"
    );
    let page = web
        .post(
            "/agents/guarded-agent/block",
            &[("csrf", &csrf), ("reason", "because")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("Only an admin key may block an agent"));
    assert!(!blocked(&server, "guarded-agent").await);
    let policies = web.get("/policies").await;
    assert!(!policies.html.contains("Validate and save"));
    let page = web
        .post(
            "/policies",
            &[
                ("csrf", &csrf),
                ("policies", "forbid(principal, action, resource);"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(policies_version(&server).await, 0);
    // Approvers may still test a call.
    let page = web
        .post(
            "/policies/test",
            &[
                ("csrf", &csrf),
                ("policies", ""),
                ("action_type", "s3.list_buckets"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Verdict: allow"), "{}", page.html);
}

const BAD_POLICY: &str = "@id(\"ok\")\nforbid(principal, action == Action::\"s3:DeleteBucket\", resource);\npermit(principal, action, resource) when { resource.name like };\n";

const GOOD_POLICY: &str = "@id(\"no-bucket-delete\") @reason(\"Buckets stay\")\nforbid(principal, action == Action::\"s3:DeleteBucket\", resource);\n";

async fn invalid_policies_show_their_line_and_test_shows_the_verdict(backend: Backend) {
    let server = Server::start(backend).await;
    let web = Web::sign_in(&server, &server.admin).await;
    let csrf = web.csrf().await;
    let page = web
        .post(
            "/policies",
            &[
                ("csrf", &csrf),
                ("policies", &BAD_POLICY.replace('\n', "\r\n")),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    assert!(page.html.contains("nothing was saved"));
    assert!(
        page.html.contains(r##"<a href="#line-3">line 3</a>"##),
        "{}",
        page.html
    );
    assert!(
        page.html.contains(r#"<li id="line-3" class="bad">"#),
        "{}",
        page.html
    );
    assert!(!page.html.contains(r#"<li id="line-2" class="bad">"#));
    assert!(page.html.contains("like }"), "the submitted text is kept");
    assert_eq!(policies_version(&server).await, 0);
    // Testing the unsaved text: the verdict, nothing stored.
    let page = web
        .post(
            "/policies/test",
            &[
                ("csrf", &csrf),
                ("policies", GOOD_POLICY),
                ("action_type", "s3.delete_bucket"),
                ("parameters", r#"{"Bucket": "prod-logs"}"#),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Verdict: deny"), "{}", page.html);
    assert!(page.html.contains("no-bucket-delete"));
    assert_eq!(policies_version(&server).await, 0);
    // Bad test input is named.
    for (field, value, message) in [
        ("parameters", "[1, 2]", "must be an object"),
        ("parameters", "{oops", "Parameters must be a JSON object"),
        ("action_type", "not an operation", ""),
    ] {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("policies", ""),
            ("action_type", "s3.delete_bucket"),
        ];
        fields.retain(|(k, _)| *k != field);
        fields.push((field, value));
        let page = web.post("/policies/test", &fields).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        assert!(page.html.contains(r#"id="test-error""#), "{}", page.html);
        assert!(page.html.contains(message), "{}", page.html);
    }
    // Saving the good text stores it, and the next call obeys it.
    let page = web
        .post("/policies", &[("csrf", &csrf), ("policies", GOOD_POLICY)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(policies_version(&server).await, 1);
    let key = server.key(&server.admin, "agent").await;
    let v = server.submit(&key, high("policy-agent", "b")).await;
    assert_eq!(v["status"], "denied", "{v}");
    let page = web.get("/policies?saved=1").await;
    assert!(page.html.contains("Version 1"));
    assert!(page.html.contains("no-bucket-delete"));
}

async fn approve_and_reject_decide_the_action(backend: Backend) {
    let server = Server::start(backend).await;
    let first = pending_action(&server, "review-agent").await;
    let second = pending_action(&server, "review-agent").await;
    let approver = server.key(&server.admin, "approver").await;
    let web = Web::sign_in(&server, &approver).await;
    let queue = web.get("/approvals").await;
    let (a, b) = (
        queue
            .html
            .find(&format!("id=\"{second}\""))
            .expect("second"),
        queue.html.find(&format!("id=\"{first}\"")).expect("first"),
    );
    assert!(a < b, "newest first");
    assert!(queue.html.contains("s3.delete_bucket"));
    assert!(queue.html.contains("prod-logs"));
    let csrf = csrf_of(&queue.html);
    let page = web
        .post(
            &format!("/approvals/{first}/approve"),
            &[("csrf", &csrf), ("comment", "looks fine")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(page.location.starts_with("/approvals?done=approved"));
    let v = status_of(&server, &first).await;
    assert_eq!(v["status"], "approved");
    assert_eq!(v["comment"], "looks fine");
    let page = web
        .post(
            &format!("/approvals/{second}/reject"),
            &[("csrf", &csrf), ("comment", "not during the freeze")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let v = status_of(&server, &second).await;
    assert_eq!(v["status"], "denied");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("not during the freeze"),
        "{v}"
    );
    // A second decision is refused and says why.
    let page = web
        .post(&format!("/approvals/{second}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.html.contains("already decided"));
    assert_eq!(status_of(&server, &second).await["status"], "denied");
    let queue = web.get("/approvals").await;
    assert!(!queue.html.contains(&first) && !queue.html.contains(&second));
    assert!(queue.html.contains("Nothing waits"));
    let long = "x".repeat(2001);
    let third = pending_action(&server, "review-agent").await;
    let page = web
        .post(
            &format!("/approvals/{third}/approve"),
            &[("csrf", &csrf), ("comment", &long)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status_of(&server, &third).await["status"], "pending");
}

async fn block_and_unblock_flip_the_kill_switch(backend: Backend) {
    let server = Server::start(backend).await;
    let key = server.key(&server.admin, "agent").await;
    server.submit(&key, common::low("switch-agent")).await;
    let web = Web::sign_in(&server, &server.admin).await;
    let csrf = web.csrf().await;
    let page = web.get("/agents").await;
    assert!(page.html.contains("switch-agent"));
    assert!(
        page.html.contains("data-confirm"),
        "block asks for a confirmation"
    );
    for reason in ["", "   ", &"r".repeat(501)] {
        let page = web
            .post(
                "/agents/switch-agent/block",
                &[("csrf", &csrf), ("reason", reason)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.html.contains("Say why"));
    }
    let page = web
        .post(
            "/agents/nobody-known/block",
            &[("csrf", &csrf), ("reason", "typo")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!blocked(&server, "switch-agent").await);
    let page = web
        .post(
            "/agents/switch-agent/block",
            &[("csrf", &csrf), ("reason", "leaking keys")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(blocked(&server, "switch-agent").await);
    let v = server.submit(&key, common::low("switch-agent")).await;
    assert_eq!(v["status"], "denied");
    assert!(
        v["reason"].as_str().unwrap().contains("leaking keys"),
        "{v}"
    );
    let page = web.get("/agents").await;
    assert!(page.html.contains("leaking keys") && page.html.contains("Unblock"));
    let page = web
        .post("/agents/switch-agent/unblock", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!blocked(&server, "switch-agent").await);
    assert_eq!(
        server.submit(&key, common::low("switch-agent")).await["status"],
        "approved"
    );
}

async fn audit_search_filters_pages_and_exports(backend: Backend) {
    let server = Server::start(backend).await;
    let key = server.key(&server.admin, "agent").await;
    for i in 0..55 {
        server
            .submit(&key, common::low(&format!("bulk-{}", i % 2)))
            .await;
    }
    let ec2 = server
        .submit(
            &key,
            json!({"action_type": "ec2.terminate_instances", "parameters": {"InstanceIds": ["i-1"]}, "agent_id": "ec2-agent"}),
        )
        .await;
    let web = Web::sign_in(&server, &server.admin).await;
    let page = web.get("/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(r#"data-valid="true""#), "{}", page.html);
    assert!(page.html.contains("56 events"));
    assert!(
        page.html.contains("Older events"),
        "56 events are two pages"
    );
    assert!(page.html.contains("<td>56</td>"), "newest first");
    assert!(!page.html.contains("<td>6</td>"), "page one stops at 50");
    let older = page.html[page.html.find("href=\"/audit?before=").expect("older link") + 6..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let next = web.get(&older).await;
    assert!(next.html.contains("<td>6</td>") && next.html.contains("<td>1</td>"));
    assert!(!next.html.contains("<td>7</td>"));
    let ec2_id = ec2["id"].as_str().unwrap();
    let page = web.get("/audit?service=ec2").await;
    assert!(page.html.contains(ec2_id));
    assert!(!page.html.contains("s3.list_buckets"));
    let page = web
        .get(&format!(
            "/audit?risk={}",
            ec2["risk_level"].as_str().unwrap()
        ))
        .await;
    assert!(page.html.contains(ec2_id));
    assert!(!page.html.contains("s3.list_buckets"));
    let page = web.get("/audit?agent=bulk-1&decision=approved").await;
    assert_eq!(page.html.matches("<td>bulk-1</td>").count(), 27);
    assert!(!page.html.contains("<td>bulk-0</td>"));
    let page = web.get("/audit?since=2999-01-01T00:00").await;
    assert!(!page.html.contains("<td>bulk-"));
    for (query, message) in [
        ("decision=maybe", "unknown decision"),
        ("risk=extreme", "unknown risk level"),
        ("since=yesterday", "`since` must be a time"),
        ("service=s3%25", "not an AWS service name"),
    ] {
        let page = web.get(&format!("/audit?{query}")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(page.html.contains(message), "{query}: {}", page.html);
    }
    let export = web.get("/audit/export?service=s3&agent=bulk-0").await;
    assert_eq!(export.status, StatusCode::OK);
    let lines: Vec<Value> = export
        .html
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 28);
    assert!(
        lines
            .iter()
            .all(|l| l["agent_id"] == "bulk-0" && l["hash"].is_string())
    );
    assert!(
        lines[0]["seq"].as_i64() < lines[1]["seq"].as_i64(),
        "oldest first"
    );
    assert_eq!(
        web.get("/audit/export?risk=bad").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Reads the event stream until `done` holds for what arrived (bounded: 30 s, and 10 s
/// without a byte).
async fn read_events<B: AsRef<[u8]>>(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    seen: &mut String,
    mut done: impl FnMut(&str) -> bool,
) {
    use futures_util::StreamExt;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !done(seen) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await;
        let Ok(Some(Ok(chunk))) = chunk else { break };
        seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
}

async fn open_events(web: &Web) -> reqwest::Response {
    let resp = web
        .client
        .get(format!("{}/dashboard/events", web.base))
        .header(COOKIE, &web.cookie)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    resp
}

async fn live_queue_streams_new_pending_actions(backend: Backend) {
    let server = Server::start(backend).await;
    let web = Web::sign_in(&server, &server.admin).await;
    // Made before the stream opens (as between a page's render and its connection).
    let earlier = pending_action(&server, "early-agent").await;
    let mut body = Box::pin(open_events(&web).await.bytes_stream());
    // Another organisation's pending action must not appear.
    let other = server.create_org("gamma");
    let other_agent = server.key(&other, "agent").await;
    let hidden = server.submit(&other_agent, high("gamma-agent", "b")).await;
    let id = pending_action(&server, "live-agent").await;
    let mut seen = String::new();
    read_events(&mut body, &mut seen, |s| {
        s.contains("event: pending") && s.contains(&id)
    })
    .await;
    assert!(
        seen.contains(&format!("/approvals/{id}/approve")),
        "no pending card for {id}: {seen}"
    );
    assert!(seen.contains("s3.delete_bucket"), "{seen}");
    assert!(
        seen.contains(&format!("/approvals/{earlier}/approve")),
        "{seen}"
    );
    let approver = server.key(&server.admin, "approver").await;
    let (status, v) = server
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            &approver,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let decided = format!("event: decided\ndata: {id}");
    read_events(&mut body, &mut seen, |s| s.contains(&decided)).await;
    assert!(seen.contains(&decided), "{seen}");
    assert!(
        !seen.contains(hidden["id"].as_str().unwrap()),
        "another organisation's action leaked"
    );
}

/// The audit page verifies the chain from where its last verification ended, so a view
/// reads the events added since, not the whole log; an edit after that point is caught by
/// the next view, and `?verify=full` reads every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_reads_new_events_and_every_event_on_demand() {
    let server = Server::start(Backend::Sqlite).await;
    let key = server.key(&server.admin, "agent").await;
    let mut db = server.open_sqlite().await;
    let submit = |n: usize| {
        let (server, key) = (&server, &key);
        async move {
            for _ in 0..n {
                server.submit(key, common::low("chain-agent")).await;
            }
        }
    };
    let full_at = |html: &str| {
        let start = html
            .find("id=\"chain-full-at\">")
            .expect("time of the full walk")
            + 19;
        html[start..].split('<').next().unwrap().to_string()
    };
    submit(4).await;
    let web = Web::sign_in(&server, &server.admin).await;
    let page = web.get("/audit").await;
    assert!(page.html.contains(r#"data-valid="true""#), "{}", page.html);
    assert!(page.html.contains("4 events"), "{}", page.html);
    let first_full = full_at(&page.html);
    tokio::time::sleep(Duration::from_millis(20)).await;

    submit(3).await;
    let page = web.get("/audit").await;
    assert!(page.html.contains("7 events, unbroken"), "{}", page.html);
    assert_eq!(
        full_at(&page.html),
        first_full,
        "only the new events were read"
    );

    // An edit after the last verified event: the next view reads it and says so.
    submit(1).await;
    edit_event(&mut db, 8, "chain-agent", "other-agent").await;
    let page = web.get("/audit").await;
    assert!(page.html.contains(r#"data-valid="false""#), "{}", page.html);
    assert!(page.html.contains("event 8"), "{}", page.html);
    edit_event(&mut db, 8, "other-agent", "chain-agent").await;
    let page = web.get("/audit").await;
    assert!(page.html.contains("8 events, unbroken"), "{}", page.html);
    let second_full = full_at(&page.html);
    assert_ne!(
        second_full, first_full,
        "after a break the whole chain is read again"
    );

    // An edit before that point which leaves the hashes alone: a view reads only new
    // events, so it is the full walk that finds it, naming the event.
    edit_event(&mut db, 2, "chain-agent", "other-agent").await;
    let page = web.get("/audit").await;
    assert!(page.html.contains(r#"data-valid="true""#), "{}", page.html);
    assert_eq!(full_at(&page.html), second_full);
    let page = web.get("/audit?verify=full").await;
    assert!(page.html.contains(r#"data-valid="false""#), "{}", page.html);
    assert!(
        page.html.contains("1 good events") && page.html.contains("event 2"),
        "{}",
        page.html
    );
    let (_, v) = server.get("/api/v1/audit/verify", &server.admin).await;
    assert_eq!(
        (v["valid"].as_bool(), v["events"].as_i64()),
        (Some(false), Some(1))
    );
    let page = web.get("/audit?verify=everything").await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    assert!(
        page.html.contains("the only value is `full`"),
        "{}",
        page.html
    );
}

/// Rewrites part of a stored audit event's body, as someone with the file could.
async fn edit_event(db: &mut sqlx::SqliteConnection, seq: i64, from: &str, to: &str) {
    sqlx::query("UPDATE audit_events SET body = replace(body, $1, $2) WHERE seq = $3")
        .bind(from)
        .bind(to)
        .bind(seq)
        .execute(db)
        .await
        .unwrap();
}

/// On PostgreSQL a request that waits on one replica appears live on another's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_queue_hears_other_replicas() {
    let first = Server::start(Backend::Postgres).await;
    let second = first.replica().await;
    let web = Web::sign_in(&first, &first.admin).await;
    let mut body = Box::pin(open_events(&web).await.bytes_stream());
    let id = pending_action(&second, "replica-agent").await;
    let mut seen = String::new();
    read_events(&mut body, &mut seen, |s| s.contains(&id)).await;
    assert!(
        seen.contains("event: pending") && seen.contains(&id),
        "{seen}"
    );
}

async fn every_page_renders(backend: Backend) {
    let server = Server::start(backend).await;
    pending_action(&server, "render-agent").await;
    let key = server.key(&server.admin, "agent").await;
    server.submit(&key, common::low("render-agent")).await;
    let web = Web::sign_in(&server, &server.admin).await;
    for (path, marker) in [
        ("/", "Calls by decision"),
        ("/approvals", "render-agent"),
        ("/audit", "Hash chain verified"),
        ("/agents", "render-agent"),
        ("/policies", "Cedar policy set"),
        ("/login", ""),
    ] {
        let page = web.get(path).await;
        if path == "/login" {
            assert_eq!(
                page.status,
                StatusCode::SEE_OTHER,
                "signed in: to the overview"
            );
            continue;
        }
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.html);
        assert!(page.html.contains(marker), "{path}: {}", page.html);
        assert!(page.html.contains(r#"name="viewport""#));
        assert!(
            !page.html.contains("http://") || path == "/",
            "{path}: no external assets"
        );
    }
    let overview = web.get("/").await;
    assert!(overview.html.contains("<svg class=\"chart\""));
    assert!(
        overview
            .html
            .contains("<strong>1</strong> waiting for approval")
    );
}
