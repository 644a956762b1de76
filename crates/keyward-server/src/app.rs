//! The router: routes, limits, request ids, tracing and JSON fallbacks.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use keyward_core::Keyward;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::routes::{mounts, secrets, sys};

/// Largest accepted request body.
pub const MAX_BODY: usize = 1 << 20;

/// Shared state of every handler.
#[derive(Debug)]
pub struct AppContext {
    /// The domain services.
    pub kw: Keyward,
}

/// State handle.
pub type AppState = Arc<AppContext>;

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Builds the whole HTTP application over `kw`.
pub fn router(kw: Keyward) -> Router {
    let state = Arc::new(AppContext { kw });
    let native = Router::new()
        .route("/openapi.json", get(crate::openapi::serve_openapi))
        .route("/mounts", get(mounts::list).post(mounts::create))
        .route("/mounts/{mount}", axum::routing::delete(mounts::delete))
        .route("/mounts/{mount}/secrets", get(secrets::list))
        .route(
            "/mounts/{mount}/secrets/{*path}",
            get(secrets::read)
                .patch(secrets::write)
                .delete(secrets::delete),
        )
        .route("/mounts/{mount}/history/{*path}", get(secrets::history))
        .route("/mounts/{mount}/rollback/{*path}", post(secrets::rollback));
    let vault = Router::new()
        .route("/sys/health", get(sys::health).head(sys::health_head))
        .route("/sys/seal-status", get(sys::seal_status))
        .route(
            "/sys/init",
            get(sys::init_status).put(sys::init).post(sys::init),
        );
    let x_request_id = header::HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/api/v1", native)
        .nest("/v1", vault)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    // The path only: never the query string or headers (tokens live there).
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(|res: &axum::response::Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "response");
                }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}
