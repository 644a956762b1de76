//! Authentication (token → record, by keyed digest, with the source-IP allowlist, per-token rate
//! limit and brute-force lockout of addresses that present malformed or unknown tokens) and
//! authorization of each request against the token's ACL.
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use keyward_core::{Authentication, Capability};
use keyward_crypto::Token;

use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::guard::ClientIp;

/// The authenticated caller of a route.
#[derive(Debug)]
pub struct Caller {
    /// The token record and its ACL.
    pub inner: std::sync::Arc<keyward_core::Caller>,
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

/// Why a request did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No token was presented.
    Missing,
    /// Something was presented that is not a keyward token, or no token has its digest: what a
    /// scan or a guess looks like. Only these count towards the lockout.
    MalformedOrUnknown,
    /// A token keyward issued that is expired or revoked.
    NotLive,
}

/// The refusal of a request that did not authenticate: 429 from a locked-out address or over
/// the per-IP limit (a request without a valid token counts towards it), else 401 — after
/// counting a malformed or unknown token towards the address's lockout.
async fn failed(state: &AppState, ip: IpAddr, audit: &AuditCtx, presented: Option<&str>, why: Failure) -> ApiError {
    // Whatever was asked for, the request's entry is a failed authentication.
    audit.rename("auth.failed");
    if let Some(raw) = presented {
        // Correlatable without being stored: a keyed HMAC of what was presented.
        if let Ok(h) = state.kw.audit_correlate(raw.as_bytes()).await {
            audit.detail("presented_token_hmac", h);
        }
    }
    if why == Failure::Missing {
        // The front door has limited this request by its address already.
        return ApiError::unauthenticated();
    }
    if let Some(wait) = state.guards.lockout.locked(ip) {
        return ApiError::too_many("too many failed authentication attempts from this address; try again later", wait);
    }
    if why == Failure::MalformedOrUnknown {
        if let Some(lock) = state.guards.lockout.record_failure(ip, &state.guards.config) {
            state.audit.counters.lockouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            audit.detail("lockout_secs", lock.as_secs());
            tracing::warn!(target: "security", client_ip = %ip, lockout_secs = lock.as_secs(), "client locked out after repeated malformed or unknown tokens");
        }
    }
    if let Err(wait) = state.guards.check_ip(ip) {
        tracing::warn!(target: "security", client_ip = %ip, "rate limit hit (client IP)");
        return ApiError::too_many("rate limit exceeded for this address", wait);
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
        let presented = parts.headers.contains_key("x-vault-token") || parts.headers.contains_key(AUTHORIZATION);
        let raw = raw_token(parts).map(str::to_owned);
        Caller::authenticate(parts, state, presented_token(parts), raw.as_deref(), presented).await
    }
}

impl Caller {
    /// Authenticates `token` (parsed from `raw`, which was `presented` in a header or the UI's
    /// session cookie): the address's lockout and rate limit, the token's allowed addresses, its
    /// rate limit and its uses.
    pub(crate) async fn authenticate(
        parts: &Parts,
        state: &AppState,
        token: Option<Token>,
        raw: Option<&str>,
        presented: bool,
    ) -> ApiResult<Self> {
        let ip = client_ip(parts);
        let audit = parts.extensions.get::<AuditCtx>().cloned().unwrap_or_default();
        let outcome = match token {
            Some(token) => state.kw.authenticate(&token).await?,
            None => Authentication::Unknown,
        };
        let inner = match outcome {
            Authentication::Live(c) => c,
            Authentication::NotLive => return Err(failed(state, ip, &audit, raw, Failure::NotLive).await),
            Authentication::Unknown => {
                let why = if presented { Failure::MalformedOrUnknown } else { Failure::Missing };
                return Err(failed(state, ip, &audit, raw, why).await);
            }
        };
        audit.set_accessor(&inner.token.accessor);
        if !inner.token.allows_ip(ip) {
            tracing::warn!(target: "security", client_ip = %ip, accessor = %inner.token.accessor, "token used from outside its allowed addresses");
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "permission denied: this token may not be used from this address",
            ));
        }
        let own_rate = inner.token.rate_limit.as_deref().and_then(|r| r.parse::<keyward_core::Rate>().ok());
        if let Err(wait) = state.guards.check_token(&inner.token.accessor, own_rate) {
            tracing::warn!(target: "security", accessor = %inner.token.accessor, "rate limit hit (token)");
            return Err(ApiError::too_many("rate limit exceeded for this token", wait));
        }
        // A use-limited token spends one use per request that gets this far, exactly: a request
        // that finds none left is refused as a revoked token is.
        let Some(inner) = state.kw.spend_use(inner).await? else {
            return Err(failed(state, ip, &audit, raw, Failure::NotLive).await);
        };
        Ok(Self { inner })
    }

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
