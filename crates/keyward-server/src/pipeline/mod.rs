//! The one pipeline every request goes through (DESIGN §8).
//!
//! Every route of the server — native (`/api/v1`) and Vault-compatible (`/v1`) — is a row of
//! [`operations`]: its audit name, how a caller proves who it is ([`AuthClass`]), the capability
//! it needs ([`Need`]), what it does to state ([`Effect`], which decides when its audit entry
//! commits) and its handler. The native router and the Vault dispatcher are generated from the
//! table, so a route cannot exist outside it. For each request the pipeline names the operation
//! in the request's audit entry, authenticates by the class, authorises by the need — before the
//! handler decodes anything — and only then calls the handler, which decodes, calls one core
//! operation and encodes. A change commits with its audit entry in one transaction
//! (`Ctx::change`); a read's entry commits before the answer leaves (the front door); a proxied
//! call puts `proxy.use` on record before the credential leaves.
mod table;
mod vault_paths;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use keyward_core::{Capability, CoreError};

use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::vault::VaultReq;

pub(crate) use vault_paths::capabilities;
pub use vault_paths::VaultOp;

/// How a request proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthClass {
    /// A keyward token (`Authorization: Bearer` or `X-Vault-Token`).
    Token,
    /// Nothing: health, seal status, initialisation, the API documents.
    None,
    /// A login: the credentials are the request (a role ID and secret ID …); no token.
    Login,
    /// A response-wrapping token, or any token with one in the body: the only class a wrapping
    /// token is accepted for (`sys/wrapping/{unwrap,lookup,rewrap}`).
    Wrapping,
    /// A web UI session: a `ui-session` token in the session cookie (the only class it is
    /// accepted for), with a CSRF token on every change (`/ui` pages).
    Session,
}

impl AuthClass {
    /// Whether a token must be presented (and is authenticated before anything runs).
    pub fn needs_token(self) -> bool {
        matches!(self, AuthClass::Token | AuthClass::Wrapping)
    }
}

/// What an operation does to state, which decides when its audit entry commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A read: its entry commits before the answer leaves.
    Read,
    /// A change: its entry commits in the change's own transaction (`Ctx::change`).
    Change,
    /// A proxied call: `proxy.use` commits before the credential leaves, `proxy.call` after.
    Proxy,
    /// Initialisation: it writes the chain's first entry itself, with the keys it makes.
    Init,
    /// A probe (health, seal and init status): not audited, as Vault.
    Probe,
}

/// The capability an operation needs, checked before its handler runs. Targets are templates
/// filled from the route's parameters: `{mount}/{path}` is a secret, `sys/…` a system path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing (auth class `none`).
    Nothing,
    /// The token's own `default` policy: self-service on the token itself.
    Default,
    /// This capability on the target.
    Cap(Capability, &'static str),
    /// One of these on the target; which one exactly is decided inside the write's transaction
    /// (create or update, as the secret exists or not).
    AnyOf(&'static [Capability], &'static str),
    /// `list` on the target, or `read` when the query asks for plaintext (`reveal=true`).
    ListOrReveal(&'static str),
    /// Some grant inside the route's mount: a listing, filtered row by row.
    InMount,
    /// `sudo` on the path, or some grant anywhere: a listing of mounts, filtered row by row.
    SudoOrAny(&'static str),
    /// The `default` policy, or this capability on the path: on the caller's own token, or on
    /// another's (decided once the handler knows which token it is).
    DefaultOr(Capability, &'static str),
    /// The enrolment-only token of the user the route names (`{auth}`, `{name}`), or this
    /// capability on the target.
    EnrolOr(Capability, &'static str),
    /// The capability on targets the handler resolves (described in words: a proxy route's
    /// secret, both sides of a comparison), checked by [`Ctx::authorize_on`]; before it runs, the
    /// caller must hold some grant.
    Resolved(Capability, &'static str),
    /// A wrapping token: the one presented, or one in the body (auth class `wrapping`).
    WrappingToken,
    /// Any live UI session, on itself (logout).
    OwnSession,
    /// A UI session that a password login made for enrolling its user's TOTP, on that user.
    Enrolment,
}

/// A handler of the native API: decodes the request, calls one core operation, encodes.
pub type NativeHandler = fn(Ctx, Request) -> Pin<Box<dyn Future<Output = ApiResult<Response>> + Send>>;
/// A handler of the Vault-compatible API, given the parsed request.
pub type VaultHandler = fn(Ctx, VaultReq) -> Pin<Box<dyn Future<Output = ApiResult<Response>> + Send>>;

/// A route of the native API.
#[derive(Debug, Clone)]
pub struct NativeRoute {
    /// The HTTP method (`None`: any, for the credential proxy).
    pub method: Option<Method>,
    /// The path, with axum's `{param}` and `{*rest}` captures.
    pub path: &'static str,
    /// The handler.
    pub(crate) handler: NativeHandler,
}

/// A route of the Vault-compatible API (under `/v1/`).
#[derive(Debug, Clone, Copy)]
pub struct VaultRoute {
    /// The Vault operations it answers (PUT and POST are one, as in Vault).
    pub ops: &'static [VaultOp],
    /// The path after `/v1/`: literals, `{param}`, `{*rest}`, and `{kv}`/`{transit}` for a mount
    /// of that engine.
    pub path: &'static str,
    /// The handler.
    pub(crate) handler: VaultHandler,
}

/// One operation of the table.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Its name in audit entries and in the capability table (`secrets.read`).
    pub id: &'static str,
    /// What it does, in a line.
    pub summary: &'static str,
    /// How a caller proves who it is.
    pub auth: AuthClass,
    /// The capability it needs.
    pub need: Need,
    /// When its audit entry commits.
    pub effect: Effect,
    /// Its native route, if it has one.
    pub native: Option<NativeRoute>,
    /// Its Vault-compatible route, if it has one.
    pub vault: Option<VaultRoute>,
}

/// Every operation of the server.
pub fn operations() -> &'static [Operation] {
    static OPERATIONS: LazyLock<Vec<Operation>> = LazyLock::new(table::operations);
    &OPERATIONS
}

/// The names route parameters may have (a template's `{name}`), so a request's parameters need
/// no allocation for their names.
const PARAM_NAMES: [&str; 10] =
    ["mount", "path", "name", "accessor", "id", "rest", "kind", "auth", "algorithm", "bytes"];

/// A route's parameters, by name.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// Adds a parameter; a name no template uses is ignored.
    fn push(&mut self, name: &str, value: String) {
        if let Some(n) = PARAM_NAMES.iter().find(|n| **n == name) {
            self.0.push((n, value));
        }
    }

    /// A parameter (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Takes a parameter out (empty when absent).
    pub fn take(&mut self, name: &str) -> String {
        self.0.iter_mut().find(|(k, _)| *k == name).map(|(_, v)| std::mem::take(v)).unwrap_or_default()
    }

    /// `template` with each `{name}` replaced by its parameter, in one pass.
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + self.0.iter().map(|(_, v)| v.len()).sum::<usize>());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else { break };
            out.push_str(self.get(&rest[open + 1..open + close]));
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The mount and path an audit entry names: the mount, and the secret path, name, accessor or
    /// id the route is about.
    fn located(&self) -> (&str, &str) {
        let path = ["path", "name", "accessor", "id"].iter().map(|k| self.get(k)).find(|v| !v.is_empty());
        (self.get("mount"), path.unwrap_or(""))
    }
}

/// What a handler is given: the server, the authenticated caller, the request's audit context and
/// the route's parameters.
pub struct Ctx {
    /// The operation's name (as in its audit entry).
    pub op_id: &'static str,
    /// What the operation needs (the part a handler resolves is checked by [`Ctx::authorize_on`]
    /// and [`Ctx::authorize_token`]).
    need: Need,
    /// When its audit entry commits.
    effect: Effect,
    /// The server's state.
    pub st: AppState,
    caller: Option<Caller>,
    /// The request's audit entry in the making.
    pub audit: AuditCtx,
    /// The route's parameters.
    pub params: Params,
}

impl Ctx {
    /// The context of a request for `op`, once the pipeline has authenticated and authorised it.
    fn new(op: &Operation, st: AppState, caller: Option<Caller>, audit: AuditCtx, params: Params) -> Self {
        Self { op_id: op.id, need: op.need, effect: op.effect, st, caller, audit, params }
    }

    /// The authenticated caller (every operation of class `token` has one).
    pub fn caller(&self) -> ApiResult<&Caller> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no authenticated caller for this operation"))
    }

    /// A route parameter.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }

    /// Takes a route parameter out of the context (it is needed no more there).
    pub fn take(&mut self, name: &str) -> String {
        self.params.take(name)
    }

    /// Checks the operation's [`Need::Resolved`] capability on targets only the handler can name
    /// (a proxy route's secret, both sides of a comparison): the table says which capability,
    /// the handler only where.
    pub fn authorize_on(&self, targets: &[&str]) -> ApiResult<()> {
        let caller = self.caller()?;
        match self.need {
            Need::Resolved(cap, _) => targets.iter().try_for_each(|t| caller.require(cap, t)),
            _ => Err(misdeclared(self.op_id)),
        }
    }

    /// Checks an operation of [`Need::DefaultOr`] on the token `accessor` the handler found: the
    /// caller's own token takes the `default` policy, another's the table's capability.
    pub fn authorize_token(&self, accessor: &str) -> ApiResult<()> {
        let caller = self.caller()?;
        match self.need {
            Need::DefaultOr(_, _) if accessor == caller.accessor() && caller.inner.acl.has_default() => Ok(()),
            Need::DefaultOr(cap, path) => caller.require(cap, path),
            _ => Err(misdeclared(self.op_id)),
        }
    }

    /// Puts a proxied call's use (`proxy.use`) on record before the credential leaves keyward
    /// (fail closed: 503 when it cannot be); the call's own entry (status, latency, bytes) then
    /// follows the answer, which holds no secret, instead of costing a second sync per call.
    pub async fn use_on_record(&self) -> ApiResult<()> {
        if self.effect != Effect::Proxy {
            return Err(misdeclared(self.op_id));
        }
        let entry = self.audit.entry_now("proxy.use", 0);
        if self.st.audit.enabled && !crate::audit::commit(&self.st, entry, false, "the proxied call was not made").await
        {
            return Err(ApiError::new(
                ErrorCode::AuditUnavailable,
                "the audit log cannot be written; the call was not made",
            ));
        }
        self.audit.release_before_entry();
        Ok(())
    }

    /// Runs a change that commits with this request's audit entry in one transaction: the
    /// request is on record exactly when its change is.
    pub async fn change<T, Fut>(&self, change: impl FnOnce(keyward_core::AuditEntry) -> Fut) -> ApiResult<T>
    where
        Fut: Future<Output = Result<T, CoreError>>,
    {
        Ok(self.audit.committed(change).await?)
    }
}

/// A handler asked to authorise what its operation's row does not declare (a bug the operations
/// test catches).
fn misdeclared(op: &str) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("operation {op} is not declared for this"))
}

/// Whether a query asks for plaintext (`reveal=true`).
fn reveals(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p == "reveal=true" || p == "reveal=1"))
}

/// The name of a request's operation in its audit entry: a read that asks for plaintext is a
/// reveal (or an export), even when it is refused.
fn audit_name(op: &Operation, query: Option<&str>) -> &'static str {
    match op.need {
        Need::ListOrReveal(_) if reveals(query) => {
            match query.is_some_and(|q| q.split('&').any(|p| p == "export=true" || p == "export=1")) {
                true => "secrets.export",
                false => "secrets.reveal",
            }
        }
        _ => op.id,
    }
}

/// The `default` policy, some grant, or the capability: what [`Need`] says, for `caller`.
pub(super) fn authorize(need: Need, caller: &Caller, params: &Params, query: Option<&str>) -> ApiResult<()> {
    let acl = &caller.inner.acl;
    let ok = match need {
        Need::Nothing => true,
        Need::Default => acl.has_default(),
        Need::Cap(cap, target) => return caller.require(cap, &params.fill(target)),
        Need::AnyOf(caps, target) => {
            let target = params.fill(target);
            if caps.iter().any(|c| caller.can(*c, &target)) {
                return Ok(());
            }
            return Err(ApiError::forbidden(caps[0].as_str(), &target));
        }
        Need::ListOrReveal(target) => {
            let cap = if reveals(query) { Capability::Read } else { Capability::List };
            return caller.require(cap, &params.fill(target));
        }
        Need::InMount => acl.touches_mount(params.get("mount")),
        Need::SudoOrAny(path) => caller.can(Capability::Sudo, path) || acl.grants_anything(),
        Need::DefaultOr(cap, path) => acl.has_default() || caller.can(cap, path),
        Need::Resolved(..) => acl.grants_anything(),
        // The handler finds the wrapping token: the caller's own, or the body's.
        Need::WrappingToken | Need::OwnSession => true,
        Need::Enrolment => caller.inner.token.meta.get("purpose").is_some_and(|p| p == keyward_core::ENROL_PURPOSE),
        Need::EnrolOr(cap, target) => {
            let meta = &caller.inner.token.meta;
            let own = meta.get("purpose").is_some_and(|p| p == keyward_core::ENROL_PURPOSE)
                && meta.get("auth_path").is_some_and(|p| p == params.get("auth"))
                && meta.get("username").is_some_and(|u| u == params.get("name"));
            if own {
                return Ok(());
            }
            return caller.require(cap, &params.fill(target));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "permission denied"))
    }
}

/// Authenticates a request of class `token` (the caller's accessor goes into its audit entry).
async fn authenticate(parts: &mut Parts, st: &AppState) -> ApiResult<Caller> {
    Caller::from_request_parts(parts, st).await
}

/// A wrapping token is good for the wrapping operations only (auth class `wrapping`), a UI
/// session for the UI's pages only (auth class `session`).
fn refuse_by_kind(op: &Operation, caller: &Caller) -> ApiResult<()> {
    use keyward_core::TokenKind;
    match caller.inner.token.kind {
        TokenKind::Wrapping if op.auth != AuthClass::Wrapping => {
            Err(ApiError::new(ErrorCode::Forbidden, "permission denied: a wrapping token only unwraps"))
        }
        TokenKind::UiSession if op.auth != AuthClass::Session => {
            Err(ApiError::new(ErrorCode::Forbidden, "permission denied: a UI session works only in the web UI"))
        }
        _ => Ok(()),
    }
}

/// Runs a native operation through the pipeline.
async fn run_native(st: AppState, op: &'static Operation, route: NativeRoute, req: Request) -> Response {
    let (mut parts, mut body) = req.into_parts();
    let audit = parts.extensions.get::<AuditCtx>().cloned().unwrap_or_default();
    let ui = route.path.starts_with("/ui");
    let result = async {
        let params = native_params(&mut parts, &st).await?;
        let (mount, path) = params.located();
        audit.note(audit_name(op, parts.uri.query()), mount, path, vec![]);
        if ui {
            // Every change from a browser must come from a page of this origin.
            crate::ui::same_origin(&parts)?;
        }
        let caller = match op.auth {
            AuthClass::Token | AuthClass::Wrapping => {
                let caller = authenticate(&mut parts, &st).await?;
                refuse_by_kind(op, &caller)?;
                authorize(op.need, &caller, &params, parts.uri.query())?;
                Some(caller)
            }
            AuthClass::Session => {
                let caller = crate::ui::authenticate(&mut parts, &st).await?;
                refuse_by_kind(op, &caller)?;
                // The CSRF token is checked before authorisation, as the session is.
                body = crate::ui::csrf_checked(&parts, body).await?;
                authorize(op.need, &caller, &params, parts.uri.query())?;
                Some(caller)
            }
            AuthClass::None | AuthClass::Login => None,
        };
        let ctx = Ctx::new(op, st.clone(), caller, audit.clone(), params);
        (route.handler)(ctx, Request::from_parts(parts, body)).await
    }
    .await;
    let mut resp = match (result, ui) {
        (Ok(resp), _) => resp,
        (Err(e), false) => e.into_response(),
        (Err(e), true) => crate::ui::error_response(e, route.path),
    };
    if ui {
        crate::ui::harden(&mut resp);
    }
    resp.extensions_mut().insert(crate::metrics::OperationId(op.id));
    resp
}

/// A native route's path parameters, percent-decoded.
async fn native_params(parts: &mut Parts, st: &AppState) -> ApiResult<Params> {
    match axum::extract::RawPathParams::from_request_parts(parts, st).await {
        Ok(raw) => {
            let mut params = Params::default();
            raw.iter().for_each(|(k, v)| params.push(k, v.to_owned()));
            Ok(params)
        }
        Err(_) => Err(ApiError::bad_request("invalid path: it is not valid UTF-8 once decoded")),
    }
}

/// The native API's router (`ui` false) or the web UI's (`ui` true), generated from the table.
pub(crate) fn native_router(ui: bool) -> Router<AppState> {
    let mut by_path: HashMap<&'static str, MethodRouter<AppState>> = HashMap::new();
    for op in operations() {
        let Some(route) = op.native.clone() else { continue };
        if route.path.starts_with("/ui") != ui {
            continue;
        }
        let filter = match &route.method {
            None => MethodFilter::GET
                .or(MethodFilter::POST)
                .or(MethodFilter::PUT)
                .or(MethodFilter::PATCH)
                .or(MethodFilter::DELETE)
                .or(MethodFilter::HEAD)
                .or(MethodFilter::OPTIONS),
            Some(m) => MethodFilter::try_from(m.clone()).unwrap_or(MethodFilter::GET),
        };
        let path = route.path.strip_prefix("/api/v1").unwrap_or(route.path);
        let handler = move |State(st): State<AppState>, req: Request| run_native(st, op, route.clone(), req);
        let entry = by_path.remove(path).unwrap_or_default();
        by_path.insert(path, entry.merge(on(filter, handler)));
    }
    by_path.into_iter().fold(Router::new(), |r, (path, m)| r.route(path, m))
}

/// Every `/v1/…` request: matched against the table's Vault routes, then through the pipeline.
pub(crate) async fn vault_dispatch(State(st): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let audit = parts.extensions.get::<AuditCtx>().cloned().unwrap_or_default();
    let mut answered = "vault.unmatched";
    let result = async {
        let (vop, path) = vault_paths::parse(&parts)?;
        let found = vault_paths::find(&st, &mut parts, &audit, vop, &path).await?;
        let (op, route, params, caller) = (found.op, found.route, found.params, found.caller);
        answered = op.id;
        let (mount, p) = params.located();
        audit.note(op.id, mount, p, vec![]);
        if let Some(caller) = &caller {
            let checked =
                refuse_by_kind(op, caller).and_then(|()| authorize(op.need, caller, &params, parts.uri.query()));
            checked.map_err(|e| match e.status() {
                StatusCode::FORBIDDEN => crate::vault::denied(),
                _ => e,
            })?;
        }
        // Response wrapping is asked for up front: a bad TTL runs nothing.
        let wrap_ttl = crate::vault::wrapping::requested_ttl(&parts, &st)?;
        if wrap_ttl.is_none() && op.id == "sys.wrapping.wrap" {
            return Err(ApiError::bad_request("sys/wrapping/wrap needs the X-Vault-Wrap-TTL header"));
        }
        let req = crate::vault::parse(&parts, body, vop, path).await?;
        let creation_path = req.path.clone();
        let mount = params.located().0.to_owned();
        let ctx = Ctx::new(op, st.clone(), caller, audit.clone(), params);
        let resp = (route.handler)(ctx, req).await?;
        match wrap_ttl {
            // Wrapping operations hand out wrapping tokens already; their answers are not wrapped.
            Some(ttl) if op.auth != AuthClass::Wrapping => {
                crate::vault::wrapping::wrap_response(&st, &audit, resp, &creation_path, &mount, ttl).await
            }
            _ => Ok(resp),
        }
    }
    .await;
    let mut resp = result.unwrap_or_else(|e| e.vault().into_response());
    resp.extensions_mut().insert(crate::metrics::OperationId(answered));
    resp
}

/// Whether a request path is one of the operations of class `none`, which take no token: the
/// front door limits them by address, and audits them unless they are probes or initialisation.
pub(crate) fn open_route(path: &str) -> Option<Effect> {
    static OPEN: LazyLock<Vec<(String, Effect)>> = LazyLock::new(|| {
        let mut out = Vec::new();
        for op in operations().iter().filter(|op| op.auth == AuthClass::None) {
            if let Some(r) = &op.native {
                out.push((r.path.to_owned(), op.effect));
            }
            if let Some(r) = op.vault {
                out.push((format!("/v1/{}", r.path), op.effect));
            }
        }
        out
    });
    OPEN.iter().find(|(p, _)| p == path).map(|(_, e)| *e)
}

/// Whether a request path is a login (`/v1/auth/<mount>/login`, the token method aside): it is
/// limited by address and refused while the address is locked out, token header or not — a
/// client that sends a stale token along with its credentials is limited like any other.
pub(crate) fn login_route(path: &str) -> bool {
    crate::ui::login_route(path)
        || path
            .strip_prefix("/v1/auth/")
            .and_then(|p| p.trim_end_matches('/').strip_suffix("/login"))
            .is_some_and(|mount| !mount.is_empty() && !mount.contains('/') && mount != "token")
}

impl Need {
    /// What it asks of a caller, in words (for the capability table).
    fn describe(self) -> String {
        let caps = |cs: &[Capability]| cs.iter().map(|c| format!("`{}`", c.as_str())).collect::<Vec<_>>().join(" or ");
        match self {
            Need::Nothing => "nothing (no token)".into(),
            Need::Default => "the token's own `default` policy".into(),
            Need::Cap(c, t) => format!("`{}` on `{t}`", c.as_str()),
            Need::AnyOf(cs, t) => format!("{} on `{t}` (which, decided in the write's transaction)", caps(cs)),
            Need::ListOrReveal(t) => format!("`list` on `{t}`; `read` with `?reveal=true`"),
            Need::InMount => "a grant inside the mount (rows shown by `list`)".into(),
            Need::SudoOrAny(p) => format!("`sudo` on `{p}`, or any grant (rows shown by what it grants)"),
            Need::DefaultOr(c, p) => {
                format!("`default` for the caller's own token; `{}` on `{p}` for another's", c.as_str())
            }
            Need::Resolved(c, what) => format!("`{}` on {what}", c.as_str()),
            Need::EnrolOr(c, t) => format!("the user's own enrolment token, or `{}` on `{t}`", c.as_str()),
            Need::WrappingToken => "a wrapping token: presented, or in the body with any token".into(),
            Need::OwnSession => "the session itself".into(),
            Need::Enrolment => "a password login's enrolment session (its own user)".into(),
        }
    }
}

impl Effect {
    /// When the entry commits, in words (for the capability table).
    fn describe(self) -> &'static str {
        match self {
            Effect::Read => "before the answer",
            Effect::Change => "with the change",
            Effect::Proxy => "`proxy.use` before the credential leaves, `proxy.call` after",
            Effect::Init => "the chain's first entry, with the keys",
            Effect::Probe => "not audited",
        }
    }
}

/// The capability table of `docs/capabilities.md`, made from the operation table.
pub fn capability_table() -> String {
    let mut out = String::from(
        "# Capabilities by operation\n\n\
         Generated from the operation table (`crates/keyward-server/src/pipeline/table.rs`); a test keeps this file\n\
         equal to it. Every request is one of these operations: the pipeline authenticates it (a token, unless\n\
         it needs nothing), checks the capability below before the handler runs, and commits its audit entry\n\
         as the last column says. Targets are `<mount>/<path>` for secrets, Vault paths for transit keys,\n\
         `auth/<method>/…` for login-method identities (`{approle}` in a route is an AppRole auth mount,\n\
         `{auth}` in a target the same mount), and `sys/…` paths for administration. `read` implies `list`.\n\n\
         | operation | native (`/api/v1`) | Vault (`/v1`) | needs | audit entry |\n|---|---|---|---|---|\n",
    );
    for op in operations() {
        let native = op.native.as_ref().map_or("—".to_owned(), |r| {
            let method = r.method.as_ref().map_or("any", Method::as_str);
            format!("`{method} {}`", r.path.strip_prefix("/api/v1").unwrap_or(r.path))
        });
        let vault = op.vault.as_ref().map_or("—".to_owned(), |r| {
            let ops: Vec<&str> = r
                .ops
                .iter()
                .map(|o| match o {
                    VaultOp::Read => "GET",
                    VaultOp::List => "LIST",
                    VaultOp::Write => "POST",
                    VaultOp::Patch => "PATCH",
                    VaultOp::Delete => "DELETE",
                })
                .collect();
            format!("`{} {}`", ops.join("/"), r.path)
        });
        let needs = match op.auth {
            AuthClass::Login => "a login: the credentials are the request (no token); limited by address".to_owned(),
            AuthClass::Session => format!("a UI session with {}", op.need.describe()),
            _ => op.need.describe(),
        };
        let row = format!("| `{}` | {native} | {vault} | {needs} | {} |\n", op.id, op.effect.describe());
        out.push_str(&row.replace("{*", "{"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_filled_from_parameters() {
        let mut p = Params::default();
        p.push("mount", "secret".into());
        p.push("path", "a/b".into());
        p.push("unknown", "x".into());
        assert_eq!(p.fill("{mount}/{path}"), "secret/a/b");
        assert_eq!(p.fill("sys/tokens"), "sys/tokens");
        assert_eq!(p.fill("{mount}/keys/{name}/rotate"), "secret/keys//rotate");
        assert_eq!(p.get("unknown"), "");
        assert_eq!(p.located(), ("secret", "a/b"));
        assert_eq!(p.take("path"), "a/b");
        assert_eq!(p.get("path"), "");
    }
}
