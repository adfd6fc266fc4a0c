//! Who is signed in: the `ascend_session` cookie (a random token; the table keeps only its
//! hash), re-checked against the key on every request so a revoked key's sessions die at
//! once, and the synchronizer CSRF token every form carries.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;

use super::page::PageError;
use crate::auth::{Principal, Role, hash_key};
use crate::error::ApiError;
use crate::routes::AppState;
use crate::util::{format_ts, now, sha256_hex};

pub const COOKIE_NAME: &str = "ascend_session";
/// The login form's own CSRF cookie (double submit: there is no session yet).
pub const LOGIN_COOKIE: &str = "ascend_login_csrf";
/// A sign-in lasts this long; signing in again makes a new session.
pub const SESSION_SECS: i64 = 12 * 3600;

/// A signed-in approver or admin.
#[derive(Clone, Debug)]
pub struct Session {
    pub who: Principal,
    pub csrf: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.who.role == Role::Admin
    }

    /// 403 page unless `token` is this session's CSRF token.
    pub fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        if same(token.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

pub fn csrf_refused() -> PageError {
    PageError::forbidden(
        "This form is missing its security token or it is stale (CSRF protection); nothing was \
         changed. Reload the page and submit the form again.",
    )
}

/// Compares without stopping at the first difference.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random alphanumerics.
pub fn random_token() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Set-Cookie` for `name`: HttpOnly, SameSite=Strict; `Secure` when the request came
/// through an HTTPS proxy (the server itself speaks plain HTTP).
pub fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> String {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}")
}

fn expires_in(secs: i64) -> String {
    format_ts(time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
}

/// Why a key cannot sign in, in words for the form.
#[derive(Debug)]
pub enum SignInRefused {
    BadKey,
    AgentKey,
}

/// Checks the key and makes a session; returns the cookie token.
pub async fn sign_in(
    state: &AppState,
    key: &str,
) -> Result<Result<String, SignInRefused>, ApiError> {
    let key = key.trim();
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT id, org_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_key(key))
    .fetch_optional(&state.store.pool)
    .await?;
    let Some((key_id, org_id, role)) = row else {
        return Ok(Err(SignInRefused::BadKey));
    };
    if !matches!(Role::parse(&role), Some(Role::Admin | Role::Approver)) {
        return Ok(Err(SignInRefused::AgentKey));
    }
    let token = random_token();
    let (hash, csrf, ts, expires) = (
        sha256_hex(token.as_bytes()),
        random_token(),
        now(),
        expires_in(SESSION_SECS),
    );
    state
        .store
        .write(move |conn| {
            Box::pin(async move {
                // Ended sessions are swept here, where new ones are made.
                sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
                    .bind(&ts)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO dashboard_sessions (token_hash, key_id, org_id, role, csrf_token, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&hash)
                .bind(&key_id)
                .bind(&org_id)
                .bind(&role)
                .bind(&csrf)
                .bind(&ts)
                .bind(&expires)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(Ok(token))
}

/// Ends the session behind `token` (if any).
pub async fn sign_out(state: &AppState, token: &str) -> Result<(), ApiError> {
    let hash = sha256_hex(token.as_bytes());
    state
        .store
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
}

/// The session behind the request's cookie, if it is live and its key is not revoked
/// (and still an approver or admin key).
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, COOKIE_NAME) else {
        return Ok(None);
    };
    let row: Option<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT s.csrf_token, k.id, k.name, k.org_id, k.role FROM dashboard_sessions s \
         JOIN api_keys k ON k.id = s.key_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
    )
    .bind(sha256_hex(token.as_bytes()))
    .bind(now())
    .fetch_optional(&state.store.pool)
    .await?;
    Ok(row.and_then(|(csrf, key_id, key_name, org_id, role)| {
        let role = Role::parse(&role).filter(|r| *r != Role::Agent)?;
        Some(Session {
            who: Principal {
                key_id,
                key_name,
                org_id,
                role,
            },
            csrf,
        })
    }))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(state, &parts.headers).await {
            Ok(Some(session)) => {
                state
                    .limiter
                    .check(&session.who.key_id)
                    .map_err(|e| PageError::from(e).into_response())?;
                Ok(session)
            }
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}
