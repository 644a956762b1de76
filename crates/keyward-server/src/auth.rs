//! Authentication (token → record, by keyed digest) and authorization of each request.
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use keyward_core::TokenRecord;
use keyward_crypto::Token;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// The authenticated caller of a native route (`Authorization: Bearer kw_…`).
#[derive(Debug)]
pub struct Caller {
    /// The caller's live token record.
    pub token: TokenRecord,
}

/// Extracts the token text from `Authorization: Bearer` (or Vault's `X-Vault-Token`).
fn presented_token(parts: &Parts) -> Option<Token> {
    if let Some(v) = parts.headers.get("x-vault-token") {
        return Token::parse(v.to_str().ok()?.trim());
    }
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(())?;
    Token::parse(rest.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = presented_token(parts).ok_or_else(ApiError::unauthenticated)?;
        match state.kw.authenticate(&token).await? {
            Some(token) => Ok(Self { token }),
            None => Err(ApiError::unauthenticated()),
        }
    }
}

impl Caller {
    /// The caller's accessor (recorded as author of writes).
    pub fn accessor(&self) -> &str {
        &self.token.accessor
    }

    /// Deny by default: only a policy that grants `capability` on `target` lets the request
    /// through. The built-in `root` policy grants everything.
    pub fn require(&self, capability: &str, target: &str) -> ApiResult<()> {
        if self.token.policies.iter().any(|p| p == "root") {
            Ok(())
        } else {
            Err(ApiError::forbidden(capability, target))
        }
    }
}
