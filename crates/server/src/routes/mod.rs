//! The HTTP API: one router per area, merged; shared state; the middleware that every
//! request passes (body limit, metrics, trace).

mod actions;
pub(crate) mod agents;
mod audit;
mod bundle;
mod compat;
mod health;
mod keys;
pub(crate) mod policies;
mod spec;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{KeyCache, Limiter};
use crate::config::{BODY_LIMIT, ServerConfig};
use crate::error::ApiError;
use crate::org::PolicyCache;
use crate::store::Store;

/// What every handler can reach; one `Arc`, because axum clones the state for every
/// request and each extractor.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub limiter: Limiter,
    pub policies: PolicyCache,
    pub keys: KeyCache,
    pub chain_checks: crate::audit::ChainChecks,
    pub metrics: Option<PrometheusHandle>,
    /// Turns true on shutdown: long-polls answer at once.
    pub shutdown: watch::Receiver<bool>,
    /// Wakes the expiry task when a pending action is created.
    pub new_pending: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// The state `serve` and the in-process app share.
    pub fn new(
        store: Store,
        config: ServerConfig,
        metrics: Option<PrometheusHandle>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        // Caches only where this process sees every change: one server on a SQLite file.
        let local = store.backend == crate::store::Backend::Sqlite;
        AppState(Arc::new(Shared {
            limiter: Limiter::new(config.rate_limit_per_sec),
            policies: PolicyCache::new(local),
            keys: KeyCache::new(local),
            chain_checks: Default::default(),
            metrics,
            shutdown,
            new_pending: Arc::new(tokio::sync::Notify::new()),
            config: Arc::new(config),
            store,
        }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Ascend platform API", description = "ASCEND Actions API v1 compatible governance for AWS calls."),
    components(schemas(crate::auth::Role)),
    modifiers(&ApiKeyAuth)
)]
struct ApiDoc;

struct ApiKeyAuth;

impl utoipa::Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
            );
        }
    }
}

/// Refuses a declared body over the limit before anything reads it.
async fn limit_declared(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return ApiError::too_large().into_response();
    }
    next.run(req).await
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("ascend_http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("ascend_http_request_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(actions::router())
        .merge(audit::router())
        .merge(policies::router())
        .merge(agents::router())
        .merge(keys::router())
        .merge(bundle::router())
        .merge(health::router())
        .merge(crate::webhooks::router())
        .split_for_parts();
    // After the merge: the routes' operations exist only now.
    let mut api = api;
    utoipa::Modify::modify(&spec::ErrorResponses, &mut api);
    let api = Arc::new(api);
    router
        .merge(compat::router())
        .merge(crate::dashboard::router())
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let api = api.clone();
                async move { axum::Json(api.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .route_layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(limit_declared))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
