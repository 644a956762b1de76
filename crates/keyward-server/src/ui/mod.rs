//! The web UI at `/ui`: server-rendered pages (maud) and one small script, every page a row of
//! the operation table like any request (DESIGN §8, auth class `session`).
//!
//! A session is a `ui-session` token (at most 8 hours, idle out after 15 minutes) held in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` off loopback); its stored row is the token's,
//! MAC'd and keyed by the token's keyed digest. A change needs the session's CSRF token (a
//! digest of the session token, in a form field or the `X-CSRF-Token` header) and a same-origin
//! `Origin` / `Sec-Fetch-Site`. Every response carries a strict Content-Security-Policy (no
//! inline script, no other origin) and `Cache-Control: no-store`; plaintext reaches a page only
//! through the reveal call, never in its HTML or a URL.
pub(crate) mod admin;
pub(crate) mod assets;
pub(crate) mod login;
mod page;
pub(crate) mod secrets;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyward_core::TokenKind;
use keyward_crypto::Token;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "kw_session";
/// A session unused this long is over.
pub(crate) const IDLE_SECS: i64 = 15 * 60;
/// The form field (or, for the reveal call, the header) that carries the CSRF token.
const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";

/// The page policy: nothing but this origin's own script, styles and forms; no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The CSRF token of the request's session (set by [`authenticate`]).
#[derive(Debug, Clone)]
pub(crate) struct Csrf(pub String);

/// The CSRF token of a session: a domain-separated digest of its token, so a page can carry it
/// without carrying the session, and nothing needs storing.
fn csrf_of(session: &str) -> String {
    use base64::Engine;
    let digest = Sha256::new().chain_update(b"keyward/ui/csrf\0").chain_update(session.as_bytes()).finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The session cookie's value, if the request has one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_owned))
    })
}

/// Whether a path is one of the UI's logins (limited by address like the API's).
pub(crate) fn login_route(path: &str) -> bool {
    path == login::USER_LOGIN || path == login::TOKEN_LOGIN
}

/// Authenticates a UI request by its session cookie: a live `ui-session` token used within the
/// idle limit (an idle session is revoked on the spot).
pub(crate) async fn authenticate(parts: &mut Parts, st: &AppState) -> ApiResult<Caller> {
    let raw = session_cookie(&parts.headers);
    let token = raw.as_deref().and_then(Token::parse);
    let caller = Caller::authenticate(parts, st, token, raw.as_deref(), raw.is_some()).await?;
    let record = &caller.inner.token;
    if record.kind != TokenKind::UiSession {
        // An API token pasted into the cookie is not a session.
        if let Some(audit) = parts.extensions.get::<AuditCtx>() {
            audit.rename("auth.failed");
        }
        return Err(ApiError::unauthenticated());
    }
    if idle(record, keyward_core::now_nanos()) {
        let audit = parts.extensions.get::<AuditCtx>().cloned().unwrap_or_default();
        let entry = audit.entry_now("ui.session.idle-expired", 200);
        st.kw.revoke_accessor(&record.accessor, entry).await?;
        return Err(ApiError::new(ErrorCode::Unauthenticated, "the session was idle for 15 minutes: log in again"));
    }
    parts.extensions.insert(Csrf(csrf_of(raw.as_deref().unwrap_or_default())));
    Ok(caller)
}

/// Whether a session has gone unused for longer than [`IDLE_SECS`] at `now` (its last use is
/// recorded at most once a minute, so the limit holds to within a minute).
fn idle(record: &keyward_core::TokenRecord, now: keyward_core::Nanos) -> bool {
    let last = record.last_used.unwrap_or(record.created_at).max(record.created_at);
    now.saturating_sub(last) > IDLE_SECS * 1_000_000_000
}

/// Refuses a change whose `Origin` or `Sec-Fetch-Site` says another site sent it.
pub(crate) fn same_origin(parts: &Parts) -> ApiResult<()> {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Ok(());
    }
    let refused = || ApiError::new(ErrorCode::Forbidden, "cross-site request refused");
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(refused());
        }
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let origin = origin.to_str().unwrap_or_default();
        let origin_host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        if host.is_empty() || origin_host != Some(host) {
            return Err(refused());
        }
    }
    Ok(())
}

/// The body of a change once its CSRF token is checked (a field of a form, or the header of the
/// reveal call); a read passes untouched.
pub(crate) async fn csrf_checked(parts: &Parts, body: Body) -> ApiResult<Body> {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Ok(body);
    }
    let expected = parts.extensions.get::<Csrf>().map(|c| c.0.clone()).unwrap_or_default();
    let bytes = bytes_of(body).await?;
    let given = match parts.headers.get(CSRF_HEADER) {
        Some(h) => h.to_str().unwrap_or_default().to_owned(),
        None => form_pairs(&bytes).into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v).unwrap_or_default(),
    };
    if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ApiError::new(ErrorCode::Forbidden, "missing or wrong CSRF token: reload the page and try again"));
    }
    Ok(Body::from(bytes))
}

/// A body's bytes, within the server's body limit.
async fn bytes_of(body: Body) -> ApiResult<axum::body::Bytes> {
    axum::body::to_bytes(body, crate::app::MAX_BODY)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, "request body is larger than the 1 MiB limit"))
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}

/// A form body. Its error never quotes the input (forms carry secret values).
pub(crate) async fn form<T: DeserializeOwned>(req: axum::extract::Request) -> ApiResult<T> {
    let bytes = bytes_of(req.into_body()).await?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| ApiError::bad_request("the form is missing a field or has a bad one"))
}

/// The error of a UI request as a page: a missing or expired session leads to the login page;
/// the reveal call (`/ui/api/…`) answers JSON, as a script reads it.
pub(crate) fn error_response(e: ApiError, route: &str) -> Response {
    if route.starts_with("/ui/api/") {
        return e.into_response();
    }
    let status = e.status();
    let mut resp = if status == StatusCode::UNAUTHORIZED {
        // The cookie is dropped with the redirect: a dead session is not presented again.
        let mut r = redirect(&format!("{}?expired=1", login::LOGIN_PAGE));
        r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static(cleared_cookie()));
        r
    } else {
        (status, page::error(status, e.message())).into_response()
    };
    resp.extensions_mut().insert(e.code());
    resp
}

/// The page of an error refused before the UI's pipeline runs (a locked-out address).
pub(crate) fn error_page(status: StatusCode, message: &str) -> axum::response::Html<String> {
    page::error(status, message)
}

/// A 303 to another page of the UI.
pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Puts the UI's security headers on a response.
pub(crate) fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with a
    // form, which the same-origin check must refuse; no URL of the UI holds a secret.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
}

/// The `Set-Cookie` value of a new session (`Secure` unless the browser is on this machine).
fn session_cookie_header(token: &str, parts_ip: std::net::IpAddr) -> String {
    let secure = if parts_ip.is_loopback() { "" } else { "; Secure" };
    let max_age = keyward_core::UI_SESSION_SECS;
    format!("{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that clears the session cookie.
fn cleared_cookie() -> &'static str {
    "kw_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; kw_session=kw_abc; b=2"));
        assert_eq!(session_cookie(&h).as_deref(), Some("kw_abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("kw_sessionx=1"));
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_do_not_hold_it() {
        let (a, b) = (csrf_of("kw_one"), csrf_of("kw_two"));
        assert_ne!(a, b);
        assert!(!a.contains("kw_one"));
        assert_eq!(a, csrf_of("kw_one"));
    }

    #[test]
    fn sessions_idle_out_after_fifteen_minutes_without_use() {
        let min = 60 * 1_000_000_000_i64;
        let mut r = keyward_core::TokenRecord::issued(("acc".into(), "d".into()), vec![], "ui".into(), 0, 3600);
        assert!(!idle(&r, 15 * min), "created just now");
        assert!(idle(&r, 15 * min + 1), "never used since its login");
        r.last_used = Some(10 * min);
        assert!(!idle(&r, 25 * min));
        assert!(idle(&r, 25 * min + 1));
    }

    #[test]
    fn cookies_are_secure_off_loopback() {
        let local = session_cookie_header("kw_x", std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(local.contains("HttpOnly") && local.contains("SameSite=Strict") && !local.contains("Secure"));
        let remote = session_cookie_header("kw_x", std::net::IpAddr::from([10, 0, 0, 1]));
        assert!(remote.ends_with("; Secure"));
    }
}
