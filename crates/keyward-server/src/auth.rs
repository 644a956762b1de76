//! Authentication (token → record, by keyed digest, with the source-IP allowlist, per-token rate
//! limit and brute-force lockout) and authorization of each request against the token's ACL.
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;
use keyward_core::Capability;
use keyward_crypto::Token;

use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::error::{ApiError, ApiResult};
use crate::guard::ClientIp;

/// The authenticated caller of a route.
#[derive(Debug)]
pub struct Caller {
    /// The token record and its ACL.
    pub inner: keyward_core::Caller,
    /// The request's audit context.
    pub audit: AuditCtx,
}

/// Extracts the token text from `Authorization: Bearer` (or Vault's `X-Vault-Token`).
pub(crate) fn presented_token(parts: &Parts) -> Option<Token> {
    if let Some(v) = parts.headers.get("x-vault-token") {
        return Token::parse(v.to_str().ok()?.trim());
    }
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(())?;
    Token::parse(rest.trim())
}

pub(crate) fn client_ip(parts: &Parts) -> IpAddr {
    parts.extensions.get::<ClientIp>().map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0)
}

async fn failed(state: &AppState, ip: IpAddr, audit: &AuditCtx, presented: Option<&str>) -> ApiError {
    if let Some(raw) = presented {
        // Correlatable without being stored: a keyed HMAC of what was presented.
        if let Ok(h) = state.kw.audit_correlate(raw.as_bytes()).await {
            audit.detail("presented_token_hmac", h);
        }
    }
    if let Some(lock) = state.guards.lockout.record_failure(ip, &state.guards.config) {
        state.audit.counters.lockouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        audit.detail("lockout_secs", lock.as_secs());
        tracing::warn!(target: "security", client_ip = %ip, lockout_secs = lock.as_secs(), "client locked out after repeated failed token checks");
    }
    ApiError::unauthenticated()
}

fn raw_token(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-vault-token") {
        return v.to_str().ok();
    }
    parts.headers.get(AUTHORIZATION)?.to_str().ok()?.split_once(' ').map(|(_, t)| t.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let ip = client_ip(parts);
        let audit = parts.extensions.get::<AuditCtx>().cloned().unwrap_or_default();
        let Some(token) = presented_token(parts) else {
            return Err(failed(state, ip, &audit, raw_token(parts)).await);
        };
        let Some(inner) = state.kw.authenticate(&token).await? else {
            return Err(failed(state, ip, &audit, Some(token.expose())).await);
        };
        audit.set_accessor(&inner.token.accessor);
        if !inner.token.allows_ip(ip) {
            tracing::warn!(target: "security", client_ip = %ip, accessor = %inner.token.accessor, "token used from outside its allowed addresses");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "permission denied: this token may not be used from this address",
            ));
        }
        if let Err(wait) = state.guards.check_token(&inner.token.accessor) {
            tracing::warn!(target: "security", accessor = %inner.token.accessor, "rate limit hit (token)");
            return Err(ApiError::too_many("rate limit exceeded for this token", wait));
        }
        Ok(Self { inner, audit })
    }
}

impl Caller {
    /// The caller's accessor (recorded as author of writes).
    pub fn accessor(&self) -> &str {
        &self.inner.token.accessor
    }

    /// Whether a capability is granted on a target (`<mount>/<path>` or a `sys/…` path).
    pub fn can(&self, capability: Capability, target: &str) -> bool {
        self.inner.acl.allows(capability, target)
    }

    /// Deny by default: 403 naming the path and the missing capability unless granted.
    pub fn require(&self, capability: Capability, target: &str) -> ApiResult<()> {
        if self.can(capability, target) {
            Ok(())
        } else {
            Err(ApiError::forbidden(capability.as_str(), target))
        }
    }
}
