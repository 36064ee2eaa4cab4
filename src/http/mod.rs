//! The HTTP server every replica runs: the operational routes
//! (`/healthz`, `/readyz`, `/metrics`) and the bridge routes ElevenLabs
//! and the admin clients call.

pub mod admin;
pub mod disabled;
pub mod error;
pub mod llm;
pub mod metrics;
pub mod postcall;
pub mod state;
pub mod transcripts;
pub mod turns;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What the operational routes report.
#[derive(Clone)]
pub struct Ops {
    pub registry: Arc<Registry>,
    /// True once the process has started its parts, false again when it
    /// begins to shut down (so the Service stops sending traffic first).
    pub ready: Arc<AtomicBool>,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn ops_routes(ops: Ops) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops)
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    if ops.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::controller::metrics::encode(&ops.registry),
    )
}

/// Header carrying each request's id (taken from the caller when given).
pub const REQUEST_ID: &str = "x-request-id";

/// Every ElevenLabs-facing and admin route, with request ids, a span per
/// request, body limits and a timeout.
pub fn bridge_routes(state: Arc<state::AppState>) -> Router {
    let config = &state.config;
    let post_call = Router::new()
        .route("/api/elevenlabs/post-call", post(postcall::post_call))
        .layer(DefaultBodyLimit::max(config.post_call_body_limit));
    let turns = Router::new()
        .route("/api/elevenlabs/webhook", post(webhook::webhook))
        .route(
            "/api/elevenlabs/llm/{business_id}/{location_id}/chat/completions",
            post(llm::chat_completions),
        )
        .route(
            "/api/elevenlabs/conversation-init",
            post(postcall::conversation_init),
        )
        .route(
            "/api/elevenlabs/activate/{business_id}",
            post(admin::activate),
        )
        .route(
            "/api/elevenlabs/deactivate/{business_id}",
            delete(admin::deactivate),
        )
        .route("/api/elevenlabs/status/{business_id}", get(admin::status))
        .layer(DefaultBodyLimit::max(config.body_limit));
    let header = axum::http::HeaderName::from_static(REQUEST_ID);
    turns
        .merge(post_call)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(
            |request: &axum::http::Request<axum::body::Body>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                )
            },
        ))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .with_state(state)
}

/// Serves `router` until `shutdown` resolves, then lets open requests end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
