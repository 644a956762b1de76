//! `ANY /api/v1/proxy/NAME[/ACCOUNT]/<path>?<query>`: one proxied call.
//!
//! The upstream URL is the route's origin plus the normalised path and query; nothing in the
//! request can change the origin. The credential is read (decrypted) only here, injected, and
//! never logged, audited or returned: an upstream that echoes it gets it masked on the way back.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use keyward_core::{Capability, CoreError, ProxyRoute, Recipe};
use keyward_crypto::mask_value;
use zeroize::Zeroizing;

use super::scrub::Scrubber;
use super::ssrf::{is_global_unicast, ForbiddenAddress};
use crate::app::MAX_BODY;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

/// Inbound headers that never reach the upstream (credentials of the caller, hop-by-hop,
/// framing, and what keyward sets itself).
const DROPPED: [&str; 18] = [
    "authorization",
    "proxy-authorization",
    "x-vault-token",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "accept-encoding",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "expect",
];

/// Upstream response headers that are not passed back (hop-by-hop, or wrong after scrubbing).
const NOT_RETURNED: [&str; 8] =
    ["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "content-length"];

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_proxy_request", msg)
}

fn upstream_error(status: StatusCode, code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(status, code, msg)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The upstream path as sent (still percent-encoded), refused when it could leave the origin's
/// path space: `.`/`..` segments, encoded dots, slashes or backslashes, `@`, `//`, NUL.
fn check_path(raw: &str) -> ApiResult<()> {
    let lower = raw.to_ascii_lowercase();
    for bad_part in ["%2e", "%2f", "%5c", "%00", "\\", "@", "//"] {
        if lower.contains(bad_part) {
            return Err(bad(format!("the upstream path may not contain {bad_part:?}")));
        }
    }
    if raw.split('/').any(|s| s == "." || s == "..") {
        return Err(bad("the upstream path may not contain '.' or '..' segments"));
    }
    Ok(())
}

fn param_name(p: &str) -> &str {
    p.split_once('=').map_or(p, |(n, _)| n)
}

/// The credential fields of a route, read from the secret (strings only).
fn credential(
    route: &ProxyRoute,
    data: &keyward_core::SecretData,
    path: &str,
) -> ApiResult<Vec<(String, Zeroizing<String>)>> {
    route
        .fields()
        .into_iter()
        .map(|f| match data.fields().get(&f) {
            Some(serde_json::Value::String(v)) => Ok((f, Zeroizing::new(v.clone()))),
            Some(_) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "credential_incomplete",
                format!("field {f:?} of {}/{path} is not a string", route.mount),
            )),
            None => Err(ApiError::new(
                StatusCode::CONFLICT,
                "credential_incomplete",
                format!(
                    "the credential at {}/{path} has no field {f:?}, which route {:?} needs",
                    route.mount, route.name
                ),
            )),
        })
        .collect()
}

fn value<'a>(cred: &'a [(String, Zeroizing<String>)], field: &str) -> &'a str {
    cred.iter().find(|(f, _)| f == field).map_or("", |(_, v)| v.as_str())
}

fn render(template: &str, cred: &[(String, Zeroizing<String>)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(template.to_owned());
    for (f, v) in cred {
        *out = out.replace(&format!("{{{f}}}"), v);
    }
    out
}

fn secret_header(v: &str) -> ApiResult<HeaderValue> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        ApiError::new(StatusCode::CONFLICT, "credential_incomplete", "a credential field cannot be sent in a header")
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// What must not come back from the upstream: each value (in any echoed form, see `scrub`) and
/// the basic authentication string.
fn scrubber(route: &ProxyRoute, cred: &[(String, Zeroizing<String>)]) -> Scrubber {
    let values: Vec<(&str, String)> = cred.iter().map(|(_, v)| (v.as_str(), mask_value(v))).collect();
    let basics: Vec<Zeroizing<String>> = route
        .inject
        .iter()
        .filter_map(|r| match r {
            Recipe::Basic { user, pass } => {
                Some(Zeroizing::new(STANDARD.encode(format!("{}:{}", value(cred, user), value(cred, pass)))))
            }
            _ => None,
        })
        .collect();
    let exact: Vec<&[u8]> = basics.iter().map(|b| b.as_bytes()).collect();
    Scrubber::new(&values, &exact)
}

/// Proxies one call (see the module docs).
pub async fn call(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (st, caller) = (&ctx.st, ctx.caller()?);
    let (parts, body) = req.into_parts();
    let uri = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    if parts.method == Method::CONNECT || uri.scheme().is_some() || uri.authority().is_some() {
        return Err(bad("CONNECT and absolute-form requests are not proxied"));
    }
    let raw = uri.path().strip_prefix("/api/v1/proxy/").unwrap_or_default();
    let (name, rest) = raw.split_once('/').unwrap_or((raw, ""));
    let route = st.kw.proxy_route(name).await?;
    let (account, upstream_path) = if route.has_account() {
        match rest.split_once('/') {
            Some((a, p)) => (Some(a), p),
            None => (Some(rest), ""),
        }
    } else {
        (None, rest)
    };
    check_path(upstream_path)?;
    let secret_path = route.secret_path(account.filter(|a| !a.is_empty()))?;
    caller.audit.note("proxy.call", &route.mount, &secret_path, route.fields());
    caller.audit.detail("route", route.name.clone());
    if let Some(a) = account {
        caller.audit.detail("account", a);
    }
    caller.audit.detail("upstream_method", parts.method.as_str());
    caller.audit.detail("upstream_path", format!("/{upstream_path}"));
    caller.require(Capability::Use, &format!("{}/{secret_path}", route.mount))?;
    if let Some(rate) = &route.rate_limit {
        st.proxy
            .check_rate(&route.name, rate)
            .map_err(|wait| ApiError::too_many("rate limit exceeded for this proxy route", wait))?;
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "request body is larger than the 1 MiB limit")
    })?;
    // Each use is on record before the credential leaves keyward (fail-closed); the entry's
    // commit and sync overlap fetching the credential.
    let on_record = async {
        !st.audit.enabled
            || crate::audit::commit(st, caller.audit.entry_now("proxy.use", 0), false, "the proxied call was not made")
                .await
    };
    let (on_record, secret) = tokio::join!(on_record, st.kw.read_secret(&route.mount, &secret_path, None));
    if !on_record {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit log cannot be written; the call was not made",
        ));
    }
    // The call's own entry (status, latency, bytes) follows the answer.
    caller.audit.release_before_entry();
    let secret = match secret {
        Err(CoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!("no credential is stored at {}/{secret_path}", route.mount)))
        }
        other => other?,
    };
    let cred = credential(&route, &secret.data, &secret_path)?;
    drop(secret);

    // The query: the caller's parameters (minus `signature` and injected names), injected ones,
    // then `timestamp` and the signature for exchange-style signing.
    let injected: Vec<&str> = route
        .inject
        .iter()
        .filter_map(|r| match r {
            Recipe::Query { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut params: Vec<String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && param_name(p) != "signature" && !injected.contains(&param_name(p)))
        .map(str::to_owned)
        .collect();
    let mut signing_field = None;
    for r in &route.inject {
        match r {
            Recipe::Query { name, field } => params.push(format!("{name}={}", pct(value(&cred, field)))),
            Recipe::HmacSha256Query { field } => signing_field = Some(field.as_str()),
            _ => {}
        }
    }
    if signing_field.is_some() && !params.iter().any(|p| param_name(p) == "timestamp") {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        params.push(format!("timestamp={ms}"));
    }
    let query = Zeroizing::new(params.join("&"));
    let mut target = Zeroizing::new(format!("{}/{upstream_path}", route.upstream));
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query);
    }
    let mut url = reqwest::Url::parse(&target).map_err(|_| bad("the upstream URL cannot be built from this path"))?;
    if let Some(field) = signing_field {
        let sent = Zeroizing::new(url.query().unwrap_or_default().to_owned());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, value(&cred, field).as_bytes());
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(sent.as_bytes());
        ctx.update(&body);
        let sig = hex::encode(ctx.sign().as_ref());
        let signed = if sent.is_empty() { format!("signature={sig}") } else { format!("{}&signature={sig}", *sent) };
        url.set_query(Some(&signed));
    }
    if !st.proxy.insecure(&route) {
        let ip = url.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        if url.scheme() != "https" || ip.is_some_and(|ip| !is_global_unicast(ip)) {
            return Err(upstream_error(
                StatusCode::BAD_GATEWAY,
                "upstream_forbidden",
                "this route's upstream is not allowed (https and global unicast addresses only)",
            ));
        }
    }

    // Headers: end-to-end ones from the caller, minus credentials and collisions, plus injected.
    let listed: Vec<String> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let injected_headers: Vec<String> = route.inject.iter().filter_map(Recipe::header).collect();
    let presented = crate::auth::presented_token(&parts);
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        let n = k.as_str();
        let carries_token = presented
            .as_ref()
            .is_some_and(|t| v.as_bytes().windows(t.expose().len()).any(|w| w == t.expose().as_bytes()));
        if DROPPED.contains(&n)
            || listed.iter().any(|l| l == n)
            || n.starts_with("x-forwarded-")
            || injected_headers.iter().any(|h| h == n)
            || carries_token
        {
            continue;
        }
        headers.append(k.clone(), v.clone());
    }
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    for r in &route.inject {
        match r {
            Recipe::Bearer { field } => {
                headers.insert(header::AUTHORIZATION, secret_header(&format!("Bearer {}", value(&cred, field)))?);
            }
            Recipe::Basic { user, pass } => {
                let b = Zeroizing::new(STANDARD.encode(format!("{}:{}", value(&cred, user), value(&cred, pass))));
                headers.insert(header::AUTHORIZATION, secret_header(&format!("Basic {}", *b))?);
            }
            Recipe::Header { name, template } => {
                let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid header name in route"))?;
                headers.insert(n, secret_header(&render(template, &cred))?);
            }
            _ => {}
        }
    }
    let mut scrubber = scrubber(&route, &cred);
    drop(cred);

    let request_bytes = body.len();
    let started = Instant::now();
    let sent = st
        .proxy
        .client_for(&route)
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(body)
        .timeout(Duration::from_secs(route.timeout_secs))
        .send()
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    caller.audit.detail("latency_ms", latency_ms);
    caller.audit.detail("request_bytes", request_bytes);
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let forbidden_addr = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                .any(|s| s.downcast_ref::<ForbiddenAddress>().is_some());
            caller.audit.detail("upstream_error", if e.is_timeout() { "timeout" } else { "unreachable" });
            tracing::warn!(route = %route.name, timeout = e.is_timeout(), "proxied call failed");
            return Err(if forbidden_addr {
                upstream_error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_forbidden",
                    "the upstream resolves to an address that is not global unicast",
                )
            } else if e.is_timeout() {
                upstream_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!("the upstream did not answer within {}s", route.timeout_secs),
                )
            } else {
                upstream_error(StatusCode::BAD_GATEWAY, "upstream_unreachable", "the upstream could not be reached")
            });
        }
    };
    let status = resp.status();
    caller.audit.detail("upstream_status", status.as_u16());
    if let Some(n) = resp.content_length() {
        caller.audit.detail("response_bytes", n);
    }
    let encoded = resp.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes() != b"identity");
    if encoded && !scrubber.is_empty() {
        return Err(upstream_error(
            StatusCode::BAD_GATEWAY,
            "upstream_encoded",
            "the upstream sent a compressed body that cannot be checked for echoed credentials",
        ));
    }
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if NOT_RETURNED.contains(&k.as_str()) {
            continue;
        }
        let clean = scrubber.whole(v.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&clean) {
            out = out.header(k, v);
        }
    }
    // The body streams after the handler has returned: a break is logged in the request's span.
    let state = (resp.bytes_stream(), scrubber, false, tracing::Span::current());
    let stream = futures_util::stream::unfold(state, |(mut s, mut scrub, done, span)| async move {
        if done {
            return None;
        }
        match s.next().await {
            Some(Ok(chunk)) => {
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(scrub.push(&chunk))), (s, scrub, false, span)))
            }
            Some(Err(e)) => {
                // Without the URL: a `query:` recipe puts the credential in it.
                let e = e.without_url();
                span.in_scope(|| tracing::warn!(error = %e, "the upstream's answer broke off mid-stream"));
                Some((Err(std::io::Error::other(e)), (s, scrub, true, span)))
            }
            None => Some((Ok(axum::body::Bytes::from(scrub.finish())), (s, scrub, true, span))),
        }
    });
    // Every call is in the audit log; the process log gets one line per call at debug level, like
    // every other request (a failed call is a warning above), so it does not cost a write per call.
    tracing::debug!(route = %route.name, status = status.as_u16(), latency_ms, "proxied call");
    Ok(out
        .body(Body::from_stream(stream))
        .map_err(|_| {
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_invalid", "the upstream's response could not be relayed")
        })?
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused() {
        for bad in ["../x", "a/../b", "a/%2e%2e/b", "a/%2E%2e", "a%2fb", "a\\b", "user@evil", "a//b", "./a", "a/%00"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for ok in ["", "api/v3/order", "v1/charges/ch_1", "a.b/c-d_e~f", "a%20b"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        assert_eq!(pct("a+b/c d=é"), "a%2Bb%2Fc%20d%3D%C3%A9");
    }
}
