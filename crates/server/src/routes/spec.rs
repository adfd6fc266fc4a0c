//! What `/openapi.json` says about failures, in one place: every `/api/` operation needs
//! the `X-API-Key` security scheme and can answer 401, 403 and 429; one with a body also
//! 413 and 422, one with parameters 422, one with an id in its path 404. Each of these is
//! the error body `{"detail","error_code","timestamp"}` (`ErrorBody`). schemathesis checks
//! every response of the live server against this (tests/schemathesis/run.sh).

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// Every error the API answers.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub(crate) struct ErrorBody {
    /// What went wrong, for a person.
    detail: String,
    /// What went wrong, for a program (`VALIDATION_ERROR`, `AUTH_FAILED`, …).
    error_code: String,
    /// When, RFC 3339.
    timestamp: String,
}

fn error(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build()
        .into()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

pub struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components
                .schemas
                .insert("ErrorBody".into(), ErrorBody::schema());
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let has_id = path.contains('{');
            for op in operations(item) {
                op.security = Some(vec![SecurityRequirement::new(
                    "api_key",
                    Vec::<String>::new(),
                )]);
                let has_body = op.request_body.is_some();
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                };
                add("401", "missing, invalid or revoked API key");
                add("403", "the key's role may not call this");
                add("429", "too many requests for this key (Retry-After)");
                if has_id {
                    add("404", "no such record in the key's organisation");
                }
                if has_body || has_params {
                    add("422", "invalid body or query: what is wrong, in `detail`");
                }
                if has_body {
                    add("413", "body larger than 1 MiB");
                }
            }
        }
    }
}

// Success bodies, as the handlers build them with `json!` (schemathesis checks each
// response of the live server against these; `additionalProperties` stays open so a new
// field is not a break).

/// A decision: submit and `/status` (ASCEND Actions API v1 field names).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Decision {
    id: String,
    /// The same as `id`.
    action_id: String,
    /// `approved`, `denied` or `pending_approval`.
    status: String,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    risk_score: i64,
    /// `low`, `medium`, `high` or `critical`.
    risk_level: String,
    requires_approval: bool,
    approval_request_id: Option<String>,
    alert_triggered: bool,
    alert_id: Option<String>,
    reason: String,
    summary: String,
    message: String,
    #[schema(value_type = Vec<String>)]
    policy_ids: Vec<String>,
    expires_at: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decided_via: String,
    comment: Option<String>,
    approved_by: Option<String>,
    rejected_by: Option<String>,
    granted_from: Option<String>,
}

/// A key as created: the only time `key` is shown.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreatedKey {
    id: String,
    key: String,
    role: crate::auth::Role,
    name: String,
    created_at: String,
}

/// A key as listed: never the key itself, only its prefix.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ListedKey {
    id: String,
    role: crate::auth::Role,
    name: String,
    prefix: String,
    created_at: String,
    revoked_at: Option<String>,
    revoked: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct KeyList {
    keys: Vec<ListedKey>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Revoked {
    id: String,
    revoked: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Health {
    /// `ok`.
    status: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Recorded {
    ok: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Uploaded {
    accepted: u64,
    duplicates: u64,
}
