//! `ANY /api/v1/proxy/NAME[/ACCOUNT]/<path>?<query>`: one proxied call.
//!
//! The upstream URL is the route's origin plus the normalised path and query; nothing in the
//! request can change the origin. The credential is read (decrypted) only here, injected, and
//! never logged, audited or returned: an upstream that echoes it gets it masked on the way back.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use keyward_core::{CoreError, ProxyRoute, Recipe, HOP_BY_HOP};
use keyward_crypto::{hmac_sha256_hex, mask_value};
use zeroize::Zeroizing;

use super::scrub::Scrubber;
use super::ssrf::{is_global_unicast, ForbiddenAddress};
use crate::app::MAX_BODY;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::pipeline::Ctx;

/// Inbound headers that never reach the upstream besides the hop-by-hop ones: credentials of the
/// caller, framing, and what keyward sets itself.
const CALLER_ONLY: [&str; 11] = [
    "authorization",
    "proxy-authorization",
    "x-vault-token",
    "cookie",
    "host",
    "content-length",
    "accept-encoding",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "expect",
];

/// Whether an upstream response header is passed back: not hop-by-hop, and not the length,
/// which scrubbing may change.
fn returned(name: &str) -> bool {
    !HOP_BY_HOP.contains(&name) && name != "content-length"
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidProxyRequest, msg)
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
                ErrorCode::CredentialIncomplete,
                format!("field {f:?} of {}/{path} is not a string", route.mount),
            )),
            None => Err(ApiError::new(
                ErrorCode::CredentialIncomplete,
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
    let mut h = HeaderValue::from_str(v)
        .map_err(|_| ApiError::new(ErrorCode::CredentialIncomplete, "a credential field cannot be sent in a header"))?;
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

/// What a request names: the route, the path to call upstream, and the secret holding the
/// credential (the account's, for routes that have accounts).
struct Target {
    route: ProxyRoute,
    upstream_path: String,
    secret_path: String,
}

/// Proxies one call (see the module docs): resolve the route and authorise `use` on its secret,
/// put the use on record while the credential is read, build the upstream request, send it, and
/// relay the answer with any echoed credential masked.
pub async fn call(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let uri = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    if parts.method == Method::CONNECT || uri.scheme().is_some() || uri.authority().is_some() {
        return Err(bad("CONNECT and absolute-form requests are not proxied"));
    }
    let target = resolve(&ctx, &parts.method, &uri).await?;
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, "request body is larger than the 1 MiB limit"))?;
    let cred = use_credential(&ctx, &target).await?;
    let url = upstream_url(&ctx, &target, uri.query().unwrap_or_default(), &cred, &body)?;
    let headers = upstream_headers(&parts, &target.route, &cred)?;
    let scrubber = scrubber(&target.route, &cred);
    drop(cred);
    let resp = send(&ctx, &target.route, parts.method, url, headers, body).await?;
    relay(&ctx, &target.route, resp, scrubber)
}

/// Finds the route and the secret a request names, notes them in its audit entry, checks `use`
/// on the secret (the table's capability, on the target only the route knows) and the route's
/// rate limit.
async fn resolve(ctx: &Ctx, method: &Method, uri: &axum::http::Uri) -> ApiResult<Target> {
    let raw = uri.path().strip_prefix("/api/v1/proxy/").unwrap_or_default();
    let (name, rest) = raw.split_once('/').unwrap_or((raw, ""));
    let route = ctx.st.kw.proxy_route(name).await?;
    let (account, upstream_path) = match route.has_account() {
        true => rest.split_once('/').map_or((Some(rest), ""), |(a, p)| (Some(a), p)),
        false => (None, rest),
    };
    check_path(upstream_path)?;
    let secret_path = route.secret_path(account.filter(|a| !a.is_empty()))?;
    ctx.audit.locate(&route.mount, &secret_path);
    ctx.audit.fields(route.fields());
    ctx.audit.detail("route", route.name.clone());
    if let Some(a) = account {
        ctx.audit.detail("account", a);
    }
    ctx.audit.detail("upstream_method", method.as_str());
    ctx.audit.detail("upstream_path", format!("/{upstream_path}"));
    ctx.authorize_on(&[&format!("{}/{secret_path}", route.mount)])?;
    if let Some(rate) = &route.rate_limit {
        ctx.st
            .proxy
            .check_rate(&route.name, rate)
            .map_err(|wait| ApiError::too_many("rate limit exceeded for this proxy route", wait))?;
    }
    Ok(Target { route, upstream_path: upstream_path.to_owned(), secret_path })
}

/// The credential's fields, read once the use is on record: the entry's commit and sync overlap
/// decrypting the secret, and nothing leaves keyward unless the entry committed.
async fn use_credential(ctx: &Ctx, target: &Target) -> ApiResult<Vec<(String, Zeroizing<String>)>> {
    let (route, secret_path) = (&target.route, &target.secret_path);
    let (on_record, secret) = tokio::join!(ctx.use_on_record(), ctx.st.kw.read_secret(&route.mount, secret_path, None));
    on_record?;
    let secret = match secret {
        Err(CoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!("no credential is stored at {}/{secret_path}", route.mount)))
        }
        other => other?,
    };
    credential(route, &secret.data, secret_path)
}

/// The upstream URL: the route's origin and the path, then the query — the caller's parameters
/// (minus `signature` and injected names), the injected ones, and for exchange-style signing
/// `timestamp` and the signature last. Refused unless https to a global unicast address (or the
/// route may reach insecure upstreams).
fn upstream_url(
    ctx: &Ctx,
    target: &Target,
    caller_query: &str,
    cred: &[(String, Zeroizing<String>)],
    body: &[u8],
) -> ApiResult<reqwest::Url> {
    let route = &target.route;
    let injected: Vec<&str> = route
        .inject
        .iter()
        .filter_map(|r| match r {
            Recipe::Query { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut params: Vec<String> = caller_query
        .split('&')
        .filter(|p| !p.is_empty() && param_name(p) != "signature" && !injected.contains(&param_name(p)))
        .map(str::to_owned)
        .collect();
    let mut signing_field = None;
    for r in &route.inject {
        match r {
            Recipe::Query { name, field } => params.push(format!("{name}={}", pct(value(cred, field)))),
            Recipe::HmacSha256Query { field } => signing_field = Some(field.as_str()),
            _ => {}
        }
    }
    if signing_field.is_some() && !params.iter().any(|p| param_name(p) == "timestamp") {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        params.push(format!("timestamp={ms}"));
    }
    let query = Zeroizing::new(params.join("&"));
    let mut text = Zeroizing::new(format!("{}/{}", route.upstream, target.upstream_path));
    if !query.is_empty() {
        text.push('?');
        text.push_str(&query);
    }
    let mut url = reqwest::Url::parse(&text).map_err(|_| bad("the upstream URL cannot be built from this path"))?;
    if let Some(field) = signing_field {
        let sent = Zeroizing::new(url.query().unwrap_or_default().to_owned());
        let sig = hmac_sha256_hex(value(cred, field).as_bytes(), &[sent.as_bytes(), body]);
        let signed = match sent.is_empty() {
            true => Zeroizing::new(format!("signature={}", *sig)),
            false => Zeroizing::new(format!("{}&signature={}", *sent, *sig)),
        };
        url.set_query(Some(&signed));
    }
    if !ctx.st.proxy.insecure(route) {
        let ip = url.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        if url.scheme() != "https" || ip.is_some_and(|ip| !is_global_unicast(ip)) {
            return Err(ApiError::new(
                ErrorCode::UpstreamForbidden,
                "this route's upstream is not allowed (https and global unicast addresses only)",
            ));
        }
    }
    Ok(url)
}

/// The headers sent upstream: the caller's end-to-end ones, minus its credentials, anything
/// carrying its token and names an injected header takes; then the injected credential headers.
fn upstream_headers(parts: &Parts, route: &ProxyRoute, cred: &[(String, Zeroizing<String>)]) -> ApiResult<HeaderMap> {
    let listed: Vec<String> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let injected: Vec<String> = route.inject.iter().filter_map(Recipe::header).collect();
    let presented = crate::auth::presented_token(parts);
    let carries_token = |v: &HeaderValue| {
        presented.as_ref().is_some_and(|t| v.as_bytes().windows(t.expose().len()).any(|w| w == t.expose().as_bytes()))
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        let n = k.as_str();
        if HOP_BY_HOP.contains(&n)
            || CALLER_ONLY.contains(&n)
            || listed.iter().any(|l| l == n)
            || n.starts_with("x-forwarded-")
            || injected.iter().any(|h| h == n)
            || carries_token(v)
        {
            continue;
        }
        headers.append(k.clone(), v.clone());
    }
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    for r in &route.inject {
        match r {
            Recipe::Bearer { field } => {
                headers.insert(header::AUTHORIZATION, secret_header(&format!("Bearer {}", value(cred, field)))?);
            }
            Recipe::Basic { user, pass } => {
                let b = Zeroizing::new(STANDARD.encode(format!("{}:{}", value(cred, user), value(cred, pass))));
                headers.insert(header::AUTHORIZATION, secret_header(&format!("Basic {}", *b))?);
            }
            Recipe::Header { name, template } => {
                let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid header name in route"))?;
                headers.insert(n, secret_header(&render(template, cred))?);
            }
            _ => {}
        }
    }
    Ok(headers)
}
/// Sends the request upstream (the route's timeout, no redirects); the latency, sizes and any
/// failure go into the call's audit entry.
async fn send(
    ctx: &Ctx,
    route: &ProxyRoute,
    method: Method,
    url: reqwest::Url,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<reqwest::Response> {
    let request_bytes = body.len();
    let started = Instant::now();
    let sent = ctx
        .st
        .proxy
        .client_for(route)
        .request(method, url)
        .headers(headers)
        .body(body)
        .timeout(Duration::from_secs(route.timeout_secs))
        .send()
        .await;
    ctx.audit.detail("latency_ms", started.elapsed().as_millis() as u64);
    ctx.audit.detail("request_bytes", request_bytes);
    sent.map_err(|e| {
        let forbidden_addr = std::iter::successors(std::error::Error::source(&e), |s| s.source())
            .any(|s| s.downcast_ref::<ForbiddenAddress>().is_some());
        ctx.audit.detail("upstream_error", if e.is_timeout() { "timeout" } else { "unreachable" });
        tracing::warn!(route = %route.name, timeout = e.is_timeout(), "proxied call failed");
        if forbidden_addr {
            ApiError::new(
                ErrorCode::UpstreamForbidden,
                "the upstream resolves to an address that is not global unicast",
            )
        } else if e.is_timeout() {
            ApiError::new(
                ErrorCode::UpstreamTimeout,
                format!("the upstream did not answer within {}s", route.timeout_secs),
            )
        } else {
            ApiError::new(ErrorCode::UpstreamUnreachable, "the upstream could not be reached")
        }
    })
}

/// Relays the upstream's answer: its status, its end-to-end headers and its body as it streams,
/// each with any echoed credential masked. A compressed body cannot be checked, so it is refused
/// when there is something to mask.
fn relay(ctx: &Ctx, route: &ProxyRoute, resp: reqwest::Response, mut scrubber: Scrubber) -> ApiResult<Response> {
    let status = resp.status();
    ctx.audit.detail("upstream_status", status.as_u16());
    crate::metrics::record_proxy_call(&route.name, status.as_u16());
    if let Some(n) = resp.content_length() {
        ctx.audit.detail("response_bytes", n);
    }
    let encoded = resp.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes() != b"identity");
    if encoded && !scrubber.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UpstreamEncoded,
            "the upstream sent a compressed body that cannot be checked for echoed credentials",
        ));
    }
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if !returned(k.as_str()) {
            continue;
        }
        if let Ok(v) = HeaderValue::from_bytes(&scrubber.whole(v.as_bytes())) {
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
    tracing::debug!(route = %route.name, status = status.as_u16(), "proxied call");
    Ok(out
        .body(Body::from_stream(stream))
        .map_err(|_| ApiError::new(ErrorCode::UpstreamInvalid, "the upstream's response could not be relayed"))?
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
