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
use crate::error::{ApiError, ApiResult};
use crate::guard::ClientIp;

/// The authenticated caller of a route.
#[derive(Debug)]
pub struct Caller {
    /// The token record and its ACL.
    pub inner: keyward_core::Caller,
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

fn failed(state: &AppState, ip: IpAddr) -> ApiError {
    if let Some(lock) = state.guards.lockout.record_failure(ip, &state.guards.config) {
        tracing::warn!(target: "security", client_ip = %ip, lockout_secs = lock.as_secs(), "client locked out after repeated failed token checks");
    }
    ApiError::unauthenticated()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let ip = client_ip(parts);
        let token = presented_token(parts).ok_or_else(|| failed(state, ip))?;
        let inner = state.kw.authenticate(&token).await?.ok_or_else(|| failed(state, ip))?;
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
        Ok(Self { inner })
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
