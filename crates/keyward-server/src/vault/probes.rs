//! Vault-shaped system endpoints that take no token: health, seal status and initialisation.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{CoreError, Readiness};

use super::VaultReq;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::pipeline::Ctx;
use crate::wire::{Health, InitResponse};

fn storage(st: &AppState) -> &'static str {
    st.kw.store().name()
}

/// Vault's health query flags: the status code to answer in each state (unknown flags are ignored).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// Code when active (default 200).
    #[param(minimum = 200, maximum = 599)]
    activecode: Option<u16>,
    /// Code when not initialised (default 501).
    #[param(minimum = 200, maximum = 599)]
    uninitcode: Option<u16>,
    /// Code when the storage is unreachable or the keys cannot be loaded, keyward's "sealed"
    /// states (default 503).
    #[param(minimum = 200, maximum = 599)]
    sealedcode: Option<u16>,
}

impl HealthQuery {
    /// The codes from a request's query (one that does not parse, or is not a status from 200 to
    /// 599, is ignored, as Vault ignores one that does not parse).
    fn of(req: &VaultReq) -> Self {
        let code = |k: &str| req.query.get(k).and_then(|v| v.parse().ok()).filter(|c| (200..=599).contains(c));
        Self { activecode: code("activecode"), uninitcode: code("uninitcode"), sealedcode: code("sealedcode") }
    }
}
// The standby flags (`standbyok`, `standbycode`, `perfstandbyok`, …) are accepted and have no
// effect: every keyward replica is active.

fn code(custom: Option<u16>, default: StatusCode) -> StatusCode {
    custom.and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(default)
}

/// The trusted clock against the wall clock: `drift_seconds` (positive: the wall clock is ahead)
/// and a warning past a minute, when expiry decisions no longer follow the wall clock.
fn clock_state() -> serde_json::Value {
    let drift = keyward_core::wall_drift_secs();
    let limit = keyward_core::MAX_AHEAD / 1_000_000_000;
    serde_json::json!({
        "trusted_time": keyward_core::format_rfc3339(keyward_core::now_nanos()),
        "drift_seconds": drift,
        "warning": (drift.abs() > limit).then(|| format!(
            "the wall clock is {}s {} keyward's trusted clock: expiry follows the trusted clock (a clock set back \
             revives nothing; one run ahead counts at most {limit}s more); fix the system clock (NTP)",
            drift.abs(), if drift > 0 { "ahead of" } else { "behind" })),
    })
}

async fn health_state(st: &AppState, q: &HealthQuery) -> (StatusCode, Health) {
    let initialized = st.kw.is_initialized().await;
    // A server that cannot load its audit or token key serves nothing: it reports itself sealed.
    let keys = match st.audit.ready.load(std::sync::atomic::Ordering::Relaxed) {
        true => Readiness::Ready,
        false => st.kw.readiness().await,
    };
    let sealed = matches!(keys, Readiness::Unavailable(_));
    let status = match initialized {
        Ok(true) if sealed => code(q.sealedcode, StatusCode::SERVICE_UNAVAILABLE),
        Ok(true) => code(q.activecode, StatusCode::OK),
        Ok(false) => code(q.uninitcode, StatusCode::NOT_IMPLEMENTED),
        Err(_) => code(q.sealedcode, StatusCode::SERVICE_UNAVAILABLE),
    };
    let health = Health {
        initialized: initialized.unwrap_or(false),
        sealed,
        standby: false,
        replication_performance_mode: "disabled".into(),
        replication_dr_mode: "disabled".into(),
        server_time_utc: time::OffsetDateTime::now_utc().unix_timestamp(),
        version: env!("CARGO_PKG_VERSION").into(),
        storage_type: storage(st).into(),
        clock: clock_state(),
        audit: serde_json::json!({
            "enabled": st.audit.enabled,
            "primary": if st.audit.primary_ok.load(std::sync::atomic::Ordering::Relaxed) { "ok" } else { "failing" },
            // Why it fails (the database's error, e.g. a full disk), until an append works again.
            "primary_error": st.audit.primary_error.lock().ok().and_then(|e| e.clone()),
            "keys": match &keys {
                Readiness::Ready => "ok".to_owned(),
                Readiness::Uninitialized => "uninitialized".to_owned(),
                Readiness::Unavailable(why) => why.clone(),
            },
            "counters": serde_json::to_value(&st.audit.counters).unwrap_or_default(),
            // Rows refused for failing their MAC since the server started: any is tampering.
            "tampered_rows": st.kw.store().tampered_rows(),
        }),
    };
    (status, health)
}

/// Health (also HEAD), unauthenticated and not audited: 200 initialised, 501 not initialised,
/// 503 when the database is unreachable or the keys cannot be loaded (Vault's conventions, each overridable by its query flag).
#[utoipa::path(get, path = "/v1/sys/health", tag = "sys", params(HealthQuery),
    responses((status = 200, body = Health), (status = 501, body = Health),
        (status = 204, description = "Asked for with a code that carries no body (e.g. uninitcode=204)"),
        (status = 304, description = "Asked for with a code that carries no body"),
        (status = "default", body = Health, description = "The status the query asked for, or 503 when the database is unreachable or the keys cannot be loaded")))]
pub async fn health(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (status, body) = health_state(&ctx.st, &HealthQuery::of(&req)).await;
    Ok((status, Json(body)).into_response())
}

/// Seal status (keyward is never sealed while it holds its master key).
#[utoipa::path(get, path = "/v1/sys/seal-status", tag = "sys", responses((status = 200)))]
pub async fn seal_status(ctx: Ctx, _req: VaultReq) -> ApiResult<Response> {
    let st = &ctx.st;
    let initialized = st.kw.is_initialized().await.map_err(|e| ApiError::from(e).vault())?;
    Ok(Json(serde_json::json!({
        "type": "keyward", "initialized": initialized, "sealed": false, "t": 0, "n": 0, "progress": 0,
        "nonce": "", "version": env!("CARGO_PKG_VERSION"), "migration": false, "recovery_seal": false,
        "storage_type": storage(st),
    }))
    .into_response())
}

/// Whether the server is initialised.
#[utoipa::path(get, path = "/v1/sys/init", tag = "sys", responses((status = 200)))]
pub async fn init_status(ctx: Ctx, _req: VaultReq) -> ApiResult<Response> {
    let initialized = ctx.st.kw.is_initialized().await.map_err(|e| ApiError::from(e).vault())?;
    Ok(Json(serde_json::json!({ "initialized": initialized })).into_response())
}

/// Initialise once (under a lock across servers); returns the root token, once.
#[utoipa::path(put, path = "/v1/sys/init", tag = "sys",
    responses((status = 200, body = InitResponse), (status = 400, description = "already initialized")))]
pub async fn init(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mut entry = req.entry.clone();
    (entry.operation, entry.status) = ("sys.init".into(), 200);
    entry.time = keyward_core::format_rfc3339(keyward_core::now_nanos());
    match ctx.st.kw.initialize(entry).await {
        Ok(token) => {
            tracing::info!("keyward initialized; root token issued");
            let out = InitResponse { keys: vec![], keys_base64: vec![], root_token: token.expose().to_owned() };
            Ok(Json(out).into_response())
        }
        Err(CoreError::AlreadyInitialized) => {
            Err(ApiError::new(ErrorCode::AlreadyInitialized, "keyward is already initialized").vault())
        }
        Err(e) => Err(ApiError::from(e).vault()),
    }
}
