//! The router: routes, limits, request ids, tracing and JSON fallbacks.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Request};
use axum::middleware::Next;
use axum::Router;
use keyward_core::Keyward;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tracing::Instrument;

use crate::audit::AuditState;
use crate::error::{ApiError, ErrorCode};
use crate::guard::{resolve_client_ip, ClientIp, GuardConfig, Guards};

/// Largest accepted request body.
pub const MAX_BODY: usize = 1 << 20;

/// Shared state of every handler.
#[derive(Debug)]
pub struct AppContext {
    /// The domain services.
    pub kw: Keyward,
    /// Rate limits and lockout of this process.
    pub guards: Guards,
    /// Audit switches, counters and sink health.
    pub audit: Arc<AuditState>,
    /// The credential proxy's client and route limiters.
    pub proxy: crate::proxy::ProxyState,
    /// The verification keys of JWT login methods, fetched and cached.
    pub jwks: crate::jwks::JwksFetcher,
}

/// Request hardening settings.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Requests served at once; more get 503 with `Retry-After` instead of queueing.
    pub max_in_flight: usize,
    /// Longest time a request may take.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { max_in_flight: 512, request_timeout: Duration::from_secs(30) }
    }
}

/// Largest total size of request headers.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

async fn overloaded(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(ErrorCode::Timeout, "the request took too long").retry_after(Duration::from_secs(1))
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(ErrorCode::Overloaded, "the server is busy; retry shortly").retry_after(Duration::from_secs(1))
    } else {
        tracing::error!(error = %err, "middleware error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

/// Refuses a request whose headers together exceed [`MAX_HEADER_BYTES`].
fn header_limit(req: &Request<axum::body::Body>) -> Option<axum::response::Response> {
    let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    (size > MAX_HEADER_BYTES).then(|| {
        ApiError::new(ErrorCode::HeadersTooLarge, format!("request headers exceed {MAX_HEADER_BYTES} bytes"))
            .into_response()
    })
}

/// Whether a request presents a token (valid or not: the authenticator decides): in a header, or
/// a UI page's session cookie.
fn presents_token(req: &Request<axum::body::Body>) -> bool {
    req.headers().contains_key("x-vault-token")
        || req.headers().contains_key(header::AUTHORIZATION)
        || (req.uri().path().starts_with("/ui") && crate::ui::session_cookie(req.headers()).is_some())
}

/// Middleware: the audit entry around the client address, the header limit, the lockout and
/// per-IP limit, and the rest of the stack — one layer rather than several, as each layer costs
/// every request a boxed service and future. A request that presents a token is limited by the
/// authenticator instead, once it knows whether the token is valid: a valid token is never
/// refused for what others sent from its address.
async fn front_door(
    State(st): State<AppState>,
    mut req: Request<axum::body::Body>,
    next: Next,
) -> axum::response::Response {
    // The path only: never the query string or headers (tokens live there).
    let path = crate::audit::redact_path(req.uri().path());
    let span = request_span(&req, &path);
    let started = Instant::now();
    let state = &st;
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let forwarded =
        resolve_client_ip(peer, req.headers().get_all("x-forwarded-for"), &st.guards.config.trusted_proxies);
    let ip = forwarded.unwrap_or(peer);
    req.extensions_mut().insert(ClientIp(ip));
    let resp = crate::audit::audited(state, req, &path, ip, |req| async move {
        if forwarded.is_err() {
            tracing::warn!(target: "security", proxy = %peer, "malformed X-Forwarded-For from a trusted proxy");
            let msg = "malformed X-Forwarded-For header: every entry must be an IP address";
            return ApiError::bad_request(msg).for_path(req.uri().path()).into_response();
        }
        if let Some(refused) = header_limit(&req) {
            return refused;
        }
        let path = req.uri().path();
        if !presents_token(&req) || crate::pipeline::open_route(path).is_some() || crate::pipeline::login_route(path) {
            if let Some(refused) = crate::guard::refuse_without_token(state, ip, req.uri().path()) {
                return refused;
            }
        }
        next.run(req).await
    })
    .instrument(span.clone())
    .await;
    // Every request is in the audit log; the process log gets one line per request at debug
    // level (server errors at warn), so it does not cost a write per request.
    let (status, latency_ms) = (resp.status().as_u16(), started.elapsed().as_millis() as u64);
    let operation = resp.extensions().get::<crate::metrics::OperationId>().map_or("unmatched", |o| o.0);
    crate::metrics::record_request(operation, status, started.elapsed());
    span.in_scope(|| match resp.status().is_server_error() {
        true => tracing::warn!(status, latency_ms, "response"),
        false => tracing::debug!(status, latency_ms, "response"),
    });
    resp
}

/// Longest client-chosen request id kept; a longer one, or one with other characters than
/// `A-Z a-z 0-9 - _ . :`, is replaced by a fresh id (it goes into audit entries and log lines).
const MAX_REQUEST_ID: usize = 128;

/// Drops a client's `X-Request-Id` that is too long or holds other characters, so the layer
/// after it sets a fresh one.
fn sane_request_id(mut req: Request<axum::body::Body>) -> Request<axum::body::Body> {
    let ok = req.headers().get("x-request-id").is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    if !ok {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// The span of a request's log lines: its id, method and `path` (redacted).
fn request_span(req: &Request<axum::body::Body>, path: &str) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
}

/// State handle.
pub type AppState = Arc<AppContext>;

/// A route that does not exist: JSON for the APIs, a page under `/ui`.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("no such route").for_path(uri.path())
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
}

/// Builds the whole HTTP application over `kw`.
pub fn router(
    kw: Keyward,
    guard: GuardConfig,
    limits: HttpLimits,
    audit: Arc<AuditState>,
    proxy: crate::proxy::ProxyConfig,
    auth: crate::jwks::AuthConfig,
) -> Router {
    let proxy = crate::proxy::ProxyState::new(proxy);
    let jwks = crate::jwks::JwksFetcher::new(auth);
    let state = Arc::new(AppContext { kw, guards: Guards::new(guard), audit, proxy, jwks });
    // Every route is a row of the operation table: the native router and the Vault dispatcher
    // are made from it.
    let native = crate::pipeline::native_router(false);
    let ui = crate::pipeline::native_router(true);
    let vault = Router::new().fallback(crate::pipeline::vault_dispatch);
    let x_request_id = header::HeaderName::from_static("x-request-id");
    let routes = Router::new()
        .nest("/api/v1", native)
        .nest("/v1", vault)
        .merge(ui)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state.clone());
    // One stack applied once: every `Router::layer` call boxes the service again, which each
    // request pays for (clone, boxed future).
    crate::guard::spawn_pruning(Arc::downgrade(&state));
    let stack = ServiceBuilder::new()
        .map_request(sane_request_id)
        .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(axum::middleware::from_fn_with_state(state, front_door))
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(limits.max_in_flight)
        .timeout(limits.request_timeout);
    // Layers on a Router wrap each route separately; behind one fallback service they are
    // shared, so the concurrency limit counts every request of the process.
    Router::new().fallback_service(routes).layer(stack)
}
