//! Matching a `/v1/…` request against the table's Vault routes. Vault routes by mount — the
//! engine behind `secret/` is known only once the mount is looked up — and uses a `LIST` method,
//! so its routes are matched here rather than by axum. The caller is authenticated before any
//! mount is looked up: whether a mount exists is not told to a caller without a valid token.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use keyward_core::{AuthKind, Capability, KvConfig, MountKind};

use super::{operations, AuthClass, Need, Operation, Params, VaultRoute};
use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::vault::{denied, not_found};

/// A Vault operation: PUT and POST are one (`Write`), and `LIST` is a method of its own or
/// `GET …?list=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultOp {
    /// GET (or HEAD).
    Read,
    /// LIST, or GET with `list=true`.
    List,
    /// POST or PUT.
    Write,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// The operation and the path after `/v1/` (without a trailing `/`).
pub(super) fn parse(parts: &Parts) -> ApiResult<(VaultOp, String)> {
    let list = parts.uri.query().is_some_and(|q| q.split('&').any(|p| p == "list=true" || p == "list=1"));
    let op = match parts.method.as_str() {
        "GET" | "HEAD" if list => VaultOp::List,
        "GET" | "HEAD" => VaultOp::Read,
        "LIST" => VaultOp::List,
        "POST" | "PUT" => VaultOp::Write,
        "PATCH" => VaultOp::Patch,
        "DELETE" => VaultOp::Delete,
        _ => return Err(ApiError::new(ErrorCode::MethodNotAllowed, "unsupported HTTP method")),
    };
    // Inside the `/v1` nest the URI has lost its prefix; the original one has it.
    let uri = parts.extensions.get::<axum::extract::OriginalUri>().map_or(&parts.uri, |o| &o.0);
    let path = uri.path().strip_prefix("/v1/").unwrap_or_default().trim_end_matches('/').to_owned();
    Ok((op, path))
}

/// A template's match: its parameters, and the engine its `{kv}`/`{kv1}`/`{transit}` mount must
/// be (`{kv}` a KV version 2 mount, `{kv1}` a version 1 one).
struct Matched {
    params: Params,
    kind: Option<(MountKind, Option<bool>)>,
    /// The kind the `{approle}` auth mount must be.
    auth: Option<AuthKind>,
}

/// Matches `segs` against a template: literals, `{name}` (one segment), `{kv}`/`{transit}` (a
/// mount of that engine, as `mount`) and a final `{*name}` (the rest, possibly empty).
fn matches(template: &str, segs: &[&str]) -> Option<Matched> {
    let t: Vec<&str> = template.split('/').collect();
    let mut params = Params::default();
    let (mut kind, mut auth) = (None, None);
    for (i, ts) in t.iter().enumerate() {
        if let Some(name) = ts.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
            let rest = segs.get(i..).map(|r| r.join("/")).unwrap_or_default();
            params.push(name, rest);
            return Some(Matched { params, kind, auth });
        }
        let s = *segs.get(i)?;
        match *ts {
            "{approle}" | "{userpass}" | "{jwt}" if !s.is_empty() => {
                auth = Some(match *ts {
                    "{approle}" => AuthKind::AppRole,
                    "{userpass}" => AuthKind::Userpass,
                    _ => AuthKind::Jwt,
                });
                params.push("auth", s.to_owned());
            }
            // Vault's reserved prefixes are never mounts.
            "{kv}" | "{kv1}" | "{transit}" if s.is_empty() || matches!(s, "sys" | "auth") => return None,
            "{kv}" | "{kv1}" | "{transit}" => {
                kind = Some(match *ts {
                    "{kv}" => (MountKind::Kv, Some(false)),
                    "{kv1}" => (MountKind::Kv, Some(true)),
                    _ => (MountKind::Transit, None),
                });
                params.push("mount", s.to_owned());
            }
            p if p.starts_with('{') && !s.is_empty() => {
                params.push(p.trim_start_matches('{').trim_end_matches('}'), s.to_owned());
            }
            lit if lit == s => {}
            _ => return None,
        }
    }
    (segs.len() == t.len()).then_some(Matched { params, kind, auth })
}

/// The operation a Vault request names, with its route, parameters and authenticated caller.
pub(super) struct Found {
    pub op: &'static Operation,
    pub route: VaultRoute,
    pub params: Params,
    pub caller: Option<Caller>,
}

/// Authenticates for the Vault API: an unknown or missing token is 403, as Vault answers.
async fn authenticate(parts: &mut Parts, st: &AppState) -> ApiResult<Caller> {
    Caller::from_request_parts(parts, st).await.map_err(|e| match e.status() {
        StatusCode::UNAUTHORIZED => denied(),
        _ => e,
    })
}

/// Whether the mounts a template's match names are of the engine (and KV version) and login
/// method it asks for.
async fn mounts_fit(st: &AppState, m: &Matched) -> ApiResult<bool> {
    if let Some((kind, v1)) = m.kind {
        match st.kw.find_mount(m.params.get("mount")).await? {
            Some(mount) if mount.kind == kind && v1.is_none_or(|v1| KvConfig::of(&mount).is_v1() == v1) => {}
            _ => return Ok(false),
        }
    }
    if let Some(kind) = m.auth {
        match st.kw.find_auth_mount(m.params.get("auth")).await? {
            Some(mount) if mount.kind == kind => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Finds the operation of a Vault request (see the module docs).
pub(super) async fn find(
    st: &AppState,
    parts: &mut Parts,
    audit: &AuditCtx,
    vop: VaultOp,
    path: &str,
) -> ApiResult<Found> {
    let segs: Vec<&str> = path.split('/').collect();
    let candidates: Vec<(&'static Operation, VaultRoute, Matched)> = operations()
        .iter()
        .filter_map(|op| {
            let route = op.vault?;
            matches(route.path, &segs).map(|m| (op, route, m))
        })
        .collect();
    let open_shape = !candidates.is_empty() && candidates.iter().all(|(op, _, _)| !op.auth.needs_token());
    // A mount's engine (and a kv mount's version) decides between `{kv}`, `{kv1}` and
    // `{transit}` routes, before anyone is authenticated: `{kv1}/{*path}` has the shape of every
    // path, and must not make `sys/health` or a login path ask for a token.
    let mut kept = Vec::new();
    for (op, route, m) in candidates {
        if mounts_fit(st, &m).await? {
            kept.push((op, route, m.params));
        }
    }
    let open = if kept.is_empty() { open_shape } else { kept.iter().all(|(op, _, _)| !op.auth.needs_token()) };
    let caller = if open { None } else { Some(authenticate(parts, st).await?) };
    if kept.is_empty() {
        return Err(no_route(st, caller.as_ref(), audit, &segs).await);
    }
    let Some(i) = kept.iter().position(|(_, route, _)| route.ops.contains(&vop)) else {
        let (op, _, params) = &kept[0];
        let (mount, p) = params.located();
        audit.note(op.id, mount, p, vec![]);
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("unsupported operation on {:?}", crate::audit::redact_path(path)),
        ));
    };
    let (op, route, params) = kept.swap_remove(i);
    Ok(Found { op, route, params, caller })
}

/// What `caller` may do on a Vault `path`, in Vault's capability names (`root` for a root token,
/// `deny` for nothing): every operation the path can name is asked the same question the
/// pipeline asks before running it — one evaluator, so the answer is what a request would get.
pub(crate) async fn capabilities(st: &AppState, caller: &Caller, path: &str) -> ApiResult<Vec<String>> {
    if caller.inner.acl.is_root() {
        return Ok(vec!["root".into()]);
    }
    let path = path.trim_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    let mut caps = std::collections::BTreeSet::new();
    for op in operations().iter().filter(|op| op.auth == AuthClass::Token) {
        let Some(route) = op.vault else { continue };
        let Some(m) = matches(route.path, &segs) else { continue };
        if !mounts_fit(st, &m).await? {
            continue;
        }
        // Handler-resolved needs depend on the request's body: not answered from a path alone.
        if matches!(op.need, Need::Resolved(..)) {
            continue;
        }
        for vop in route.ops {
            let names: Vec<&str> = match (vop, op.need) {
                (VaultOp::Write, Need::AnyOf(options, target)) => {
                    let target = m.params.fill(target);
                    options.iter().filter(|c| caller.can(**c, &target)).map(|c| c.as_str()).collect()
                }
                _ if super::authorize(op.need, caller, &m.params, None).is_err() => vec![],
                (VaultOp::Read, _) => vec!["read"],
                (VaultOp::List, _) => vec!["list"],
                (VaultOp::Write, _) => vec!["create", "update"],
                (VaultOp::Patch, _) => vec!["patch"],
                (VaultOp::Delete, _) => vec!["delete"],
            };
            caps.extend(names.into_iter().map(str::to_owned));
            if matches!(op.need, Need::Cap(Capability::Sudo, _))
                && super::authorize(op.need, caller, &m.params, None).is_ok()
            {
                caps.insert("sudo".to_owned());
            }
        }
    }
    if caps.is_empty() {
        caps.insert("deny".to_owned());
    }
    Ok(caps.into_iter().collect())
}

/// The answer for a path no operation serves. A caller may learn that a route does not exist
/// under a mount only if it may know the mount.
async fn no_route(st: &AppState, caller: Option<&Caller>, audit: &AuditCtx, segs: &[&str]) -> ApiError {
    let first = segs.first().copied().unwrap_or_default();
    let rest = segs.get(1..).map(|r| r.join("/")).unwrap_or_default();
    audit.note("vault.unknown", first, &crate::audit::redact_path(&rest), vec![]);
    match first {
        "" => not_found(),
        "sys" => {
            ApiError::not_found(format!("sys/{rest} is not available in keyward (see docs/vault-compatibility.md)"))
        }
        "auth" => ApiError::not_found(format!(
            "no handler for route {:?}: no such auth method, or no such path on it",
            crate::audit::redact_path(&segs.join("/"))
        )),
        mount => {
            let may_know = caller.is_some_and(|c| c.inner.acl.is_root() || c.inner.acl.touches_mount(mount));
            match st.kw.find_mount(mount).await {
                Ok(Some(m)) if may_know => {
                    let families = match m.kind {
                        MountKind::Kv if KvConfig::of(&m).is_v1() => "a KV version 1 mount serves <mount>/<path>",
                        MountKind::Kv => {
                            "KV v2 paths are data/, metadata/, delete/, undelete/, destroy/, subkeys/ and config"
                        }
                        MountKind::Transit => "transit paths are keys/, encrypt/, decrypt/, rewrap/ and datakey/",
                    };
                    ApiError::not_found(format!(
                        "no handler for route {:?}: {families}",
                        crate::audit::redact_path(&segs.join("/"))
                    ))
                }
                Ok(None) if may_know => ApiError::not_found(format!(
                    "no handler for route {:?}: route entry not found",
                    crate::audit::redact_path(&segs.join("/"))
                )),
                Err(e) => e.into(),
                _ => denied(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_paths_are_told_apart() {
        use super::super::login_route;
        assert!(login_route("/v1/auth/approle/login") && login_route("/v1/auth/ci-machines/login/"));
        for other in [
            "/v1/auth/token/login",
            "/v1/auth/approle/role/x",
            "/v1/auth//login",
            "/v1/auth/a/b/login",
            "/v1/secret/login",
        ] {
            assert!(!login_route(other), "{other}");
        }
    }

    #[test]
    fn templates_match_literals_params_mounts_and_rests() {
        let segs = |p: &'static str| p.split('/').collect::<Vec<_>>();
        let m = matches("{kv}/data/{*path}", &segs("secret/data/a/b")).unwrap();
        assert_eq!(
            (m.params.get("mount"), m.params.get("path"), m.kind),
            ("secret", "a/b", Some((MountKind::Kv, Some(false))))
        );
        let m = matches("{kv1}/{*path}", &segs("legacy/a/b")).unwrap();
        assert_eq!((m.params.get("path"), m.kind), ("a/b", Some((MountKind::Kv, Some(true)))));
        assert!(matches("{kv1}/{*path}", &segs("sys/health")).is_none(), "sys is never a mount");
        assert!(matches("{kv1}/{*path}", &segs("auth/approle/login")).is_none(), "nor is auth");
        let m = matches("{kv}/metadata/{*path}", &segs("secret/metadata")).unwrap();
        assert_eq!(m.params.get("path"), "", "a listing of the mount's root");
        assert!(matches("{kv}/data/{*path}", &segs("secret/meta/a")).is_none());
        let m = matches("{transit}/keys/{name}/rotate", &segs("transit/keys/k1/rotate")).unwrap();
        assert_eq!((m.params.get("name"), m.kind), ("k1", Some((MountKind::Transit, None))));
        assert!(matches("{transit}/keys/{name}", &segs("transit/keys/k1/rotate")).is_none());
        assert!(matches("sys/mounts/{mount}", &segs("sys/mounts")).is_none());
        assert!(matches("sys/mounts", &segs("sys/mounts")).is_some());
        assert!(matches("sys/mounts/{mount}", &segs("sys/mounts/")).is_none(), "an empty segment is no name");
    }
}
