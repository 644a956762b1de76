//! `/api/v1/proxy-routes`: create, read, list and delete routes. Creating or changing a route
//! needs `sudo` on `sys/proxy` (a route decides where a credential may be sent) and `use` (or
//! `read`) on the credential it injects — on every instance of an `{account}` template — so an
//! administrator of routes cannot send a key they may not use anywhere they like. A change of
//! upstream is audited as its own operation, `proxy.routes.repoint`, naming both upstreams.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{format_duration, format_rfc3339, parse_duration, Capability, ProxyRoute, Recipe, ACCOUNT};

use super::ssrf::is_global_unicast;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::json_body;
use crate::guard::Rate;
use crate::pipeline::Ctx;
use crate::wire::{ProxyRouteList, ProxyRouteOut, ProxyRouteRequest};

fn out(r: ProxyRoute) -> ProxyRouteOut {
    ProxyRouteOut {
        secret: format!("{}/{}", r.mount, r.path),
        inject: r.inject.iter().map(ToString::to_string).collect(),
        timeout: format_duration(r.timeout_secs),
        allow_insecure: r.allow_insecure,
        created_time: format_rfc3339(r.created_at),
        updated_time: format_rfc3339(r.updated_at),
        name: r.name,
        upstream: r.upstream,
        rate_limit: r.rate_limit,
    }
}

/// The origin of an upstream URL: `https://host[:port]` (or `http://` when insecure upstreams are
/// allowed), with no user, path, query or fragment; an IP literal must be global unicast.
pub(crate) fn upstream_origin(text: &str, allow_insecure: bool) -> ApiResult<String> {
    let bad = |why: &str| Err(ApiError::bad_request(format!("upstream {text:?}: {why}")));
    let Ok(url) = reqwest::Url::parse(text.trim()) else { return bad("not a URL (e.g. https://api.example.com)") };
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => {
            return bad(
                "must be https:// (unless the route sets allow_insecure, on a server run with --proxy-allow-insecure)",
            )
        }
        _ => return bad("must be https://"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not hold credentials");
    }
    if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() || url.fragment().is_some() {
        return bad("must be an origin only (scheme, host, port), without a path or query");
    }
    let Some(host) = url.host_str() else { return bad("has no host") };
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok();
    if ip.is_some_and(|ip| !is_global_unicast(ip)) && !allow_insecure {
        return bad("is not a global unicast address (loopback, private, link-local, metadata, reserved…)");
    }
    Ok(url.origin().ascii_serialization())
}

/// List routes.
#[utoipa::path(get, path = "/api/v1/proxy-routes", tag = "proxy", responses((status = 200, body = ProxyRouteList)))]
pub async fn list(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let routes = ctx.st.kw.proxy_routes().await?.into_iter().map(out).collect();
    Ok(Json(ProxyRouteList { routes }).into_response())
}

/// Read a route.
#[utoipa::path(get, path = "/api/v1/proxy-routes/{name}", tag = "proxy", params(("name" = String, Path)),
    responses((status = 200, body = ProxyRouteOut), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn read(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    Ok(Json(out(ctx.st.kw.proxy_route(ctx.param("name")).await?)).into_response())
}

/// Create or replace a route.
#[utoipa::path(put, path = "/api/v1/proxy-routes/{name}", tag = "proxy", params(("name" = String, Path)),
    request_body = ProxyRouteRequest,
    responses((status = 200, body = ProxyRouteOut), (status = 400, body = keyward_api::ErrorBody), (status = 403, body = keyward_api::ErrorBody),
        (status = 409, description = "the route changed meanwhile", body = keyward_api::ErrorBody)))]
pub async fn put(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: ProxyRouteRequest = json_body(req).await?;
    let (st, caller, name) = (&ctx.st, ctx.caller()?, ctx.param("name").to_owned());
    if req.allow_insecure && !st.proxy.config.allow_insecure {
        return Err(ApiError::bad_request("allow_insecure needs a server started with --proxy-allow-insecure"));
    }
    let upstream = upstream_origin(&req.upstream, req.allow_insecure)?;
    let (mount, path) = req.secret.split_once('/').ok_or_else(|| {
        ApiError::bad_request("secret must be MOUNT/PATH (e.g. secret/stripe or secret/users/{account}/binance)")
    })?;
    if let Some(rate) = &req.rate_limit {
        rate.parse::<Rate>()?;
    }
    let inject = req.inject.iter().map(|r| Recipe::parse(r)).collect::<Result<Vec<_>, _>>()?;
    let timeout_secs = req.timeout.as_deref().map(parse_duration).transpose()?.unwrap_or(10);
    let route = ProxyRoute {
        name: name.clone(),
        upstream,
        mount: mount.to_owned(),
        path: path.to_owned(),
        inject,
        rate_limit: req.rate_limit,
        timeout_secs,
        allow_insecure: req.allow_insecure,
        created_at: 0,
        updated_at: 0,
    };
    // Whoever points a route somewhere must be allowed to use what it sends there.
    let secret = format!("{mount}/{path}");
    let may_use = match route.has_account() {
        true => caller.inner.acl.covers_template(&[Capability::Use, Capability::Read], &secret, ACCOUNT),
        false => caller.can(Capability::Use, &secret) || caller.can(Capability::Read, &secret),
    };
    if !may_use {
        return Err(ApiError::new(ErrorCode::Forbidden,
            format!(
                "permission denied: a route may only inject a credential its writer may \"use\" (or \"read\"): {secret:?}{}",
                if route.has_account() { " for every account (a rule with + or * there, and no deny on any)" } else { "" }
            ),
        ));
    }
    let previous = st.kw.stored_proxy_route(&name).await?.map(|r| r.upstream);
    let operation = match &previous {
        None => "proxy.routes.create",
        Some(p) if *p != route.upstream => "proxy.routes.repoint",
        Some(_) => "proxy.routes.update",
    };
    ctx.audit.rename(operation);
    ctx.audit.detail("secret", secret);
    ctx.audit.detail("upstream", route.upstream.clone());
    if let Some(p) = previous.as_ref().filter(|p| **p != route.upstream) {
        ctx.audit.detail("previous_upstream", p.clone());
        tracing::warn!(target: "security", accessor = %caller.accessor(), route = %name, from = %p, to = %route.upstream, "proxy route repointed");
    }
    let saved = ctx.change(|e| st.kw.put_proxy_route(route, previous, e)).await?;
    tracing::info!(accessor = %caller.accessor(), route = %name, upstream = %saved.upstream, "proxy route written");
    Ok(Json(out(saved)).into_response())
}

/// Delete a route.
#[utoipa::path(delete, path = "/api/v1/proxy-routes/{name}", tag = "proxy", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn delete(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let name = ctx.param("name").to_owned();
    ctx.change(|e| ctx.st.kw.delete_proxy_route(&name, e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), route = %name, "proxy route deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_origins_on_https() {
        assert_eq!(upstream_origin("https://api.example.com/", false).unwrap(), "https://api.example.com");
        assert_eq!(upstream_origin("https://api.example.com:8443", false).unwrap(), "https://api.example.com:8443");
        assert_eq!(upstream_origin("http://127.0.0.1:9000", true).unwrap(), "http://127.0.0.1:9000");
        for bad in [
            "http://api.example.com",
            "ftp://x",
            "https://u:p@api.example.com",
            "https://api.example.com/v1",
            "https://api.example.com?x=1",
            "https://127.0.0.1",
            "https://169.254.169.254",
            "https://[::1]",
            "https://10.0.0.8:443",
            "https://198.18.0.1",
            "https://[2002:a9fe:a9fe::1]",
            "https://[::169.254.169.254]",
            "https://[fec0::1]",
            "not a url",
        ] {
            assert!(upstream_origin(bad, false).is_err(), "{bad}");
        }
    }
}
