//! Sign-in with an admin or approver key (agent keys and bad keys are told so on the
//! form) and sign-out.

use askama::Template;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{PageError, PageResult, PostForm, render};
use super::session::{
    self, COOKIE_NAME, LOGIN_COOKIE, SESSION_SECS, Session, SignInRefused, cookie, random_token,
    same, set_cookie,
};
use crate::routes::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: Option<&'static str>,
}

/// The form, with a fresh login CSRF token in a cookie and in the form.
fn login_form(headers: &HeaderMap, status: StatusCode, error: Option<&'static str>) -> Response {
    let csrf = random_token();
    let mut response = render(
        status,
        &LoginPage {
            csrf: csrf.clone(),
            error,
        },
    );
    if let Ok(v) = HeaderValue::from_str(&set_cookie(headers, LOGIN_COOKIE, &csrf, "/login", 3600))
    {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    if session::current(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(login_form(&headers, StatusCode::OK, None))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PostForm(form): PostForm<LoginForm>,
) -> PageResult {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(expected.as_bytes(), form.csrf.as_bytes()) {
        return Err(session::csrf_refused());
    }
    let refused = match session::sign_in(&state, &form.key).await? {
        Ok(token) => {
            let mut response = Redirect::to("/").into_response();
            let value = set_cookie(&headers, COOKIE_NAME, &token, "/", SESSION_SECS);
            let value = HeaderValue::from_str(&value)
                .map_err(|_| PageError::invalid("the session cookie could not be set"))?;
            response.headers_mut().append(SET_COOKIE, value);
            return Ok(response);
        }
        Err(refused) => refused,
    };
    let message = match refused {
        SignInRefused::BadKey => {
            "This key is not valid or has been revoked. Paste an admin or approver key (owkai_admin_… or owkai_approver_…)."
        }
        SignInRefused::AgentKey => {
            "Agent keys cannot sign in to the dashboard. Use an admin or approver key (owkai_admin_… or owkai_approver_…)."
        }
    };
    Ok(login_form(
        &headers,
        StatusCode::UNAUTHORIZED,
        Some(message),
    ))
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    PostForm(form): PostForm<LogoutForm>,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    if let Some(token) = cookie(&headers, COOKIE_NAME) {
        session::sign_out(&state, &token).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&headers, COOKIE_NAME, "", "/", 0)) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    Ok(response)
}
