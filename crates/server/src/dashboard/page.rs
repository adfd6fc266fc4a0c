//! What every page shares: the navigation chrome, rendering a template into a response
//! with the security headers, the HTML error page, and form bodies whose problems become
//! that page.

use askama::Template;
use axum::extract::{Form, FromRequest, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_FRAME_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::session::Session;
use crate::error::ApiError;

/// The header of every signed-in page: who, which area, the sign-out form's token.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub who: String,
    pub role: &'static str,
    pub csrf: String,
    pub active: &'static str,
    pub is_admin: bool,
}

impl Chrome {
    pub fn new(session: &Session, active: &'static str) -> Chrome {
        Chrome {
            who: session.who.key_name.clone(),
            role: session.who.role.as_str(),
            csrf: session.csrf.clone(),
            active,
            is_admin: session.is_admin(),
        }
    }
}

/// Renders `page` with `status`; no page may be framed, cached or run inline script.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => html_response(status, html),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be drawn.</p>".into(),
            )
        }
    }
}

pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// A failed page: its status, a title and what to do about it.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        PageError {
            status,
            title,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Not allowed", message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Cannot do that", message)
    }
    pub fn admin_only(what: &str) -> Self {
        Self::forbidden(format!(
            "Only an admin key may {what}; this session's key is an approver key. Nothing was changed."
        ))
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Already decided",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            s if s.is_client_error() => "Cannot do that",
            _ => "Something went wrong",
        };
        PageError::new(e.status, title, e.detail)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        render(
            self.status,
            &ErrorPage {
                status: self.status.as_u16(),
                title: self.title,
                message: &self.message,
            },
        )
    }
}

pub type PageResult = Result<Response, PageError>;

/// An url-encoded form; an unreadable one is a 422 page naming the problem.
#[derive(Debug)]
pub struct PostForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for PostForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        Form::<T>::from_request(req, state)
            .await
            .map(|Form(v)| PostForm(v))
            .map_err(|e| {
                PageError::invalid(format!("The form could not be read: {}", e.body_text()))
            })
    }
}

/// Escapes text for HTML outside templates (the SSE fragments are rendered templates;
/// this is for the inline SVG chart).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
