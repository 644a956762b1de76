//! Vault-shaped system endpoints: health, seal status, init.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{Backend, CoreError};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{Health, InitResponse};

fn storage(st: &AppState) -> &'static str {
    match st.kw.store().backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

async fn health_state(st: &AppState) -> (StatusCode, Health) {
    let initialized = st.kw.is_initialized().await;
    let status = match initialized {
        Ok(true) => StatusCode::OK,
        Ok(false) => StatusCode::NOT_IMPLEMENTED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let health = Health {
        initialized: initialized.unwrap_or(false),
        sealed: false,
        standby: false,
        replication_performance_mode: "disabled".into(),
        replication_dr_mode: "disabled".into(),
        server_time_utc: time::OffsetDateTime::now_utc().unix_timestamp(),
        version: env!("CARGO_PKG_VERSION").into(),
        storage_type: storage(st).into(),
        audit: serde_json::json!({
            "enabled": st.audit.enabled,
            "primary": if st.audit.primary_ok.load(std::sync::atomic::Ordering::Relaxed) { "ok" } else { "failing" },
            "counters": serde_json::to_value(&st.audit.counters).unwrap_or_default(),
        }),
    };
    (status, health)
}

/// Health, unauthenticated and not audited: 200 initialised, 501 not initialised, 503 when
/// the database is unreachable (Vault's conventions).
#[utoipa::path(get, path = "/v1/sys/health", tag = "sys", responses((status = 200, body = Health), (status = 501, body = Health)))]
pub async fn health(State(st): State<AppState>) -> Response {
    let (status, body) = health_state(&st).await;
    (status, Json(body)).into_response()
}

/// HEAD form of health (hvac's default).
pub async fn health_head(State(st): State<AppState>) -> StatusCode {
    health_state(&st).await.0
}

/// Seal status (keyward is never sealed while it holds its master key).
#[utoipa::path(get, path = "/v1/sys/seal-status", tag = "sys", responses((status = 200)))]
pub async fn seal_status(State(st): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let initialized = st.kw.is_initialized().await.map_err(|e| ApiError::from(e).vault())?;
    Ok(Json(serde_json::json!({
        "type": "keyward", "initialized": initialized, "sealed": false, "t": 0, "n": 0, "progress": 0,
        "nonce": "", "version": env!("CARGO_PKG_VERSION"), "migration": false, "recovery_seal": false,
        "storage_type": storage(&st),
    })))
}

/// Whether the server is initialised.
#[utoipa::path(get, path = "/v1/sys/init", tag = "sys", responses((status = 200)))]
pub async fn init_status(State(st): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let initialized = st.kw.is_initialized().await.map_err(|e| ApiError::from(e).vault())?;
    Ok(Json(serde_json::json!({ "initialized": initialized })))
}

/// Initialise once (under a lock across servers); returns the root token, once.
#[utoipa::path(put, path = "/v1/sys/init", tag = "sys",
    responses((status = 200, body = InitResponse), (status = 400, description = "already initialized")))]
pub async fn init(State(st): State<AppState>) -> ApiResult<Json<InitResponse>> {
    match st.kw.initialize().await {
        Ok(token) => {
            tracing::info!("keyward initialized; root token issued");
            Ok(Json(InitResponse { keys: vec![], keys_base64: vec![], root_token: token.expose().to_owned() }))
        }
        Err(CoreError::AlreadyInitialized) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "already_initialized", "keyward is already initialized").vault())
        }
        Err(e) => Err(ApiError::from(e).vault()),
    }
}
