//! Policies: the organisation's Cedar text in an editor; saving (admins) validates and
//! shows each error at its line; "test a call" decides a sample call against the text in
//! the editor before it is saved. Validation, saving and testing are
//! `routes::policies`'s functions.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::Value;

use super::page::{Chrome, PageError, PageResult, PostForm, render};
use super::session::Session;
use crate::error::ApiError;
use crate::routes::AppState;
use crate::routes::policies::{TestBody, save, test_call};

/// One numbered line of the text, marked when an error points at it.
#[derive(Debug)]
pub struct Line {
    pub number: usize,
    pub text: String,
    pub errors: Vec<String>,
}

/// A problem of the text, with where it is.
#[derive(Debug)]
pub struct Problem {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

/// A test call's outcome.
#[derive(Debug)]
pub struct Verdict {
    pub operation: String,
    pub verdict: String,
    pub risk_level: String,
    pub risk_score: i64,
    pub reason: String,
    pub reasons: Vec<String>,
    pub policy_ids: String,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    text: String,
    version: i64,
    updated_at: String,
    problems: Vec<Problem>,
    lines: Vec<Line>,
    saved: bool,
    test: TestFields,
    verdict: Option<Verdict>,
    test_error: Option<String>,
}

/// The "test a call" fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct TestFields {
    #[serde(default)]
    pub action_type: String,
    #[serde(default)]
    pub parameters: String,
    #[serde(default)]
    pub agent_id: String,
    #[serde(default)]
    pub region: String,
}

async fn stored(state: &AppState, org: &str) -> Result<(String, i64, String), ApiError> {
    let (text, version, updated): (String, i64, Option<String>) = sqlx::query_as(
        "SELECT policies, policies_version, policies_updated_at FROM orgs WHERE id = $1",
    )
    .bind(org)
    .fetch_one(&state.store.pool)
    .await?;
    Ok((text, version, updated.unwrap_or_default()))
}

/// The problems of a 422 `POLICY_INVALID` (its `errors`), or the error's own text.
fn problems(e: &ApiError) -> Vec<Problem> {
    let listed = e
        .extra
        .as_deref()
        .and_then(|x| x["errors"].as_array().cloned());
    match listed {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|d| Problem {
                line: d["line"].as_u64(),
                column: d["column"].as_u64(),
                message: d["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect(),
        _ => vec![Problem {
            line: None,
            column: None,
            message: e.detail.clone(),
        }],
    }
}

fn numbered(text: &str, problems: &[Problem]) -> Vec<Line> {
    text.lines()
        .enumerate()
        .map(|(i, line)| Line {
            number: i + 1,
            text: line.to_string(),
            errors: problems
                .iter()
                .filter(|p| p.line == Some(i as u64 + 1))
                .map(|p| match p.column {
                    Some(c) => format!("column {c}: {}", p.message),
                    None => p.message.clone(),
                })
                .collect(),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Saved>,
) -> PageResult {
    let (text, version, updated_at) = stored(&state, &session.who.org_id).await?;
    let page = PoliciesPage {
        chrome: Chrome::new(&session, "policies"),
        text,
        version,
        updated_at,
        problems: Vec::new(),
        lines: Vec::new(),
        saved: q.saved.is_some(),
        test: TestFields::default(),
        verdict: None,
        test_error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    policies: String,
    #[serde(flatten)]
    test: TestFields,
}

/// Browsers send CRLF from a textarea; the stored text uses LF.
fn unix_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

pub async fn save_form(
    State(state): State<AppState>,
    session: Session,
    PostForm(form): PostForm<PolicyForm>,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    if !session.is_admin() {
        return Err(PageError::admin_only("save policies"));
    }
    let text = unix_lines(&form.policies);
    match save(&state, &session.who, text.clone()).await {
        Ok(_) => Ok(Redirect::to("/policies?saved=1").into_response()),
        Err(e) if e.code == "POLICY_INVALID" => {
            let (_, version, updated_at) = stored(&state, &session.who.org_id).await?;
            let problems = problems(&e);
            let page = PoliciesPage {
                chrome: Chrome::new(&session, "policies"),
                lines: numbered(&text, &problems),
                text,
                version,
                updated_at,
                problems,
                saved: false,
                test: form.test,
                verdict: None,
                test_error: None,
            };
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn test_form(
    State(state): State<AppState>,
    session: Session,
    PostForm(form): PostForm<PolicyForm>,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    let text = unix_lines(&form.policies);
    let fields = &form.test;
    let parameters = match fields.parameters.trim() {
        "" => Ok(None),
        p => serde_json::from_str::<Value>(p).map(Some).map_err(|e| {
            format!("Parameters must be a JSON object, like {{\"Bucket\": \"prod-logs\"}}: {e}")
        }),
    };
    let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let outcome = match parameters {
        Err(message) => Err(ApiError::invalid(message)),
        Ok(parameters) => {
            let body = TestBody {
                action_type: fields.action_type.trim().to_string(),
                parameters,
                agent_id: nonempty(&fields.agent_id),
                region: nonempty(&fields.region),
                policies: Some(text.clone()),
            };
            test_call(&state, &session.who, body).await
        }
    };
    let (_, version, updated_at) = stored(&state, &session.who.org_id).await?;
    let (verdict, problems, test_error, status) = match outcome {
        Ok(v) => (Some(verdict(&v)), Vec::new(), None, StatusCode::OK),
        Err(e) if e.code == "POLICY_INVALID" => {
            (None, problems(&e), None, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => (None, Vec::new(), Some(e.detail), e.status),
    };
    let page = PoliciesPage {
        chrome: Chrome::new(&session, "policies"),
        lines: if problems.is_empty() {
            Vec::new()
        } else {
            numbered(&text, &problems)
        },
        text,
        version,
        updated_at,
        problems,
        saved: false,
        test: form.test,
        verdict,
        test_error,
    };
    Ok(render(status, &page))
}

fn verdict(v: &Value) -> Verdict {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let list = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ids = list("policy_ids");
    Verdict {
        operation: text("operation"),
        verdict: text("verdict").replace('_', " "),
        risk_level: text("risk_level"),
        risk_score: v["risk_score"].as_i64().unwrap_or_default(),
        reason: text("reason"),
        reasons: list("reasons"),
        policy_ids: if ids.is_empty() {
            "(none)".into()
        } else {
            ids.join(", ")
        },
    }
}
