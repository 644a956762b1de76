//! Auditing every request (fail-closed), the extra best-effort sinks, anchoring, and counters.
//!
//! The middleware records one entry per request — allowed or denied, authenticated or not —
//! except the health, seal-status and init probes. A response is released only after its entry
//! is durably committed; if the primary sink (the database) cannot take it, the client gets 503
//! and nothing that was produced is served. Secret writes commit their entry in the same
//! transaction as the new version instead. A proxied call is on record (`proxy.use`) before the
//! credential leaves; its own entry (upstream status, latency, bytes) commits after the
//! upstream's answer is released, since that answer holds no secret.
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyward_core::{format_rfc3339, now_nanos, AuditEntry, CoreError, Keyward, Readiness};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::pipeline::Effect;

/// What a handler or extractor adds to its request's audit entry.
#[derive(Debug, Default)]
struct Notes {
    base: AuditEntry,
    operation: Option<String>,
    in_transaction: bool,
    /// The entry may follow the response instead of holding it.
    after_response: bool,
}

/// A request's audit context, shared between the middleware and the handler.
#[derive(Debug, Clone, Default)]
pub struct AuditCtx(Arc<Mutex<Notes>>);

impl AuditCtx {
    fn with<R>(&self, f: impl FnOnce(&mut Notes) -> R) -> Option<R> {
        self.0.lock().ok().map(|mut n| f(&mut n))
    }

    /// Records the authenticated accessor.
    pub fn set_accessor(&self, accessor: &str) {
        self.with(|n| n.base.accessor = accessor.to_owned());
    }

    /// Renames the operation, keeping what it touched.
    pub fn rename(&self, operation: &str) {
        self.with(|n| n.operation = Some(operation.to_owned()));
    }

    /// Records a detail (never a secret value).
    pub fn detail(&self, key: &str, value: impl Into<Value>) {
        self.with(|n| {
            n.base.details.insert(key.to_owned(), value.into());
        });
    }

    /// Says what a request touched, when its route's parameters do not (a path from the body or
    /// the query); the operation keeps the name the pipeline gave it.
    pub fn locate(&self, mount: &str, path: &str) {
        self.with(|n| {
            n.base.mount = mount.to_owned();
            n.base.path = path.to_owned();
        });
    }

    /// The names of the fields a request touched (never their values).
    pub fn fields(&self, fields: Vec<String>) {
        self.with(|n| n.base.fields = fields);
    }

    /// Names the operation and what it touched (the pipeline's, before a handler runs).
    pub(crate) fn note(&self, operation: &str, mount: &str, path: &str, fields: Vec<String>) {
        self.with(|n| {
            n.operation = Some(operation.to_owned());
            n.base.mount = mount.to_owned();
            n.base.path = path.to_owned();
            n.base.fields = fields;
        });
    }

    /// The entry to commit inside a write's own transaction (status 200); the middleware then
    /// records nothing more unless the write fails.
    pub fn for_transaction(&self) -> AuditEntry {
        self.with(|n| {
            n.in_transaction = true;
            let mut e = n.base.clone();
            e.operation = n.operation.clone().unwrap_or_default();
            e.status = 200;
            e.time = format_rfc3339(now_nanos());
            e
        })
        .unwrap_or_default()
    }

    /// A copy of the entry as it stands, to commit ahead of the request's own entry (the
    /// credential proxy records each use before the credential leaves keyward).
    pub fn entry_now(&self, operation: &str, status: u16) -> AuditEntry {
        self.with(|n| {
            let mut e = n.base.clone();
            e.operation = operation.to_owned();
            e.status = status;
            e.time = format_rfc3339(now_nanos());
            e
        })
        .unwrap_or_default()
    }

    /// Lets the response go before its entry is durable: the credential proxy sets this once a
    /// call's use is on record, since the upstream's answer holds no secret and waiting would
    /// add a second sync to every call. A failure of the late entry is counted, logged and
    /// reported by health like any other.
    pub fn release_before_entry(&self) {
        self.with(|n| n.after_response = true);
    }

    /// A write whose in-transaction entry did not commit must be audited by the middleware.
    pub fn transaction_failed(&self) {
        self.with(|n| n.in_transaction = false);
    }

    /// Runs a change that commits with this request's entry in one transaction (`change` is
    /// given the entry, as it stands now): the request is then on record exactly when the change
    /// is. If the change fails, the middleware records the failure instead.
    pub async fn committed<T, Fut>(&self, change: impl FnOnce(AuditEntry) -> Fut) -> Result<T, CoreError>
    where
        Fut: Future<Output = Result<T, CoreError>>,
    {
        let entry = self.for_transaction();
        change(entry).await.inspect_err(|_| self.transaction_failed())
    }
}

/// Counters for health and monitoring (per process).
#[derive(Debug, Default, Serialize)]
pub struct Counters {
    /// Failed token checks.
    pub auth_failures: AtomicU64,
    /// Requests refused with 403.
    pub denials: AtomicU64,
    /// IPs locked out.
    pub lockouts: AtomicU64,
    /// Requests refused with 429.
    pub rate_limited: AtomicU64,
    /// Plaintext reveals (reads and exports).
    pub reveals: AtomicU64,
    /// Audit entries the primary sink could not take (those requests got 503).
    pub audit_primary_failures: AtomicU64,
    /// Entries an extra sink (file, stdout) could not write.
    pub audit_sink_failures: AtomicU64,
    /// Fields past their rotation limit at the last scan.
    pub stale_fields: AtomicU64,
}

/// The audit state of a server process.
#[derive(Debug)]
pub struct AuditState {
    /// Whether requests are audited (only benchmarks turn it off).
    pub enabled: bool,
    /// Whether the last append to the primary sink worked.
    pub primary_ok: AtomicBool,
    /// Why the last append to the primary sink failed (a database error: no request data),
    /// until one works again — health shows it.
    pub primary_error: std::sync::Mutex<Option<String>>,
    /// Counters.
    pub counters: Counters,
    /// The external append-only file the chain head is anchored to.
    pub anchor_file: Option<PathBuf>,
    /// Where archived entries go.
    pub archive_dir: Option<PathBuf>,
    pub(crate) ready: AtomicBool,
    /// Entries committing after their response went (see [`AuditCtx::release_before_entry`]).
    late: AtomicU64,
    late_done: tokio::sync::Notify,
}

impl AuditState {
    /// Auditing on or off, with an optional anchor file.
    pub fn new(enabled: bool, anchor_file: Option<PathBuf>) -> Self {
        Self {
            enabled,
            primary_ok: AtomicBool::new(true),
            primary_error: std::sync::Mutex::new(None),
            counters: Counters::default(),
            anchor_file,
            archive_dir: None,
            ready: AtomicBool::new(false),
            late: AtomicU64::new(0),
            late_done: tokio::sync::Notify::new(),
        }
    }

    /// Waits until every entry that was left to commit after its response has committed (or
    /// failed), so a shutdown loses none.
    pub async fn late_entries_committed(&self) {
        loop {
            let done = self.late_done.notified();
            if self.late.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }
}

/// Audit settings of a server.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Audit every request (the default; only benchmarks turn it off).
    pub enabled: bool,
    /// Extra best-effort sinks.
    pub sinks: AuditSinks,
    /// Append the chain head here every `anchor_interval`.
    pub anchor_file: Option<PathBuf>,
    /// How often the head is anchored (log and file).
    pub anchor_interval: Duration,
    /// Where archived entries go (`audit archive`, `retention`); none: archiving is refused.
    pub archive_dir: Option<PathBuf>,
    /// Archive entries older than this on a schedule (needs `archive_dir`); none: never.
    pub retention: Option<Duration>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            sinks: AuditSinks::default(),
            anchor_file: None,
            anchor_interval: Duration::from_secs(60),
            archive_dir: None,
            retention: None,
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A request path safe to log: any segment that looks like a token (`kw_…`, or a Vault-style
/// `hvs.`/`s.` token a client put in the URL) is replaced, so a token sent in a path never
/// reaches a log line or an audit entry.
pub fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let tokenish = keyward_crypto::Token::parse(seg).is_some()
                || seg.starts_with(keyward_crypto::TOKEN_PREFIX)
                || ((seg.starts_with("hvs.") || seg.starts_with("s.")) && seg.len() > 20);
            if tokenish {
                "[token]"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The parts of an entry that come from the request itself: its id, the client's address and
/// user agent (at most 256 characters).
pub(crate) fn request_entry(headers: &axum::http::HeaderMap, ip: IpAddr) -> AuditEntry {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    AuditEntry {
        request_id: header("x-request-id").to_owned(),
        user_agent: header("user-agent").chars().take(256).collect(),
        remote_addr: ip.to_string(),
        ..AuditEntry::default()
    }
}

/// Requests the middleware does not audit: the probes, and initialisation, which commits its own
/// entry (the chain's first) with the keys it makes.
fn exempt(path: &str) -> bool {
    matches!(crate::pipeline::open_route(path), Some(Effect::Probe | Effect::Init))
}

/// Mount and path from a native URL, for entries that no handler annotated.
fn locate(path: &str) -> (String, String) {
    let rest = path.strip_prefix("/api/v1/mounts/").unwrap_or_default();
    let mut parts = rest.splitn(3, '/');
    let mount = parts.next().unwrap_or_default().to_owned();
    let path = match parts.next() {
        Some("secrets" | "history" | "rollback") => parts.next().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    (mount, path)
}

/// Audits a request around `serve` (the rest of its handling), releasing the response only once
/// its entry is committed. `uri_path` is the request's path as [`redact_path`] gives it; `ip` the
/// client's address.
pub async fn audited<F, Fut>(st: &AppState, mut req: Request, uri_path: &str, ip: IpAddr, serve: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if !st.audit.enabled || exempt(req.uri().path()) {
        return serve(req).await;
    }
    if !st.audit.ready.load(Ordering::Relaxed) {
        match st.kw.readiness().await {
            Readiness::Ready => st.audit.ready.store(true, Ordering::Relaxed),
            // Before `operator init` there is no audit key and nothing to protect yet.
            Readiness::Uninitialized => return serve(req).await,
            // Fail closed: an initialised server that cannot audit serves nothing.
            Readiness::Unavailable(why) => {
                bump(&st.audit.counters.audit_primary_failures);
                tracing::error!(error = %why, "not serving: the audit or token key cannot be loaded");
                return ApiError::new(
                    ErrorCode::AuditUnavailable,
                    "the server cannot load its audit or token key; nothing is served until it can (see its log)",
                )
                .retry_after(Duration::from_secs(5))
                .for_path(uri_path)
                .into_response();
            }
        }
    }
    let ctx = AuditCtx::default();
    let method = req.method().as_str().to_owned();
    ctx.with(|n| n.base = request_entry(req.headers(), ip));
    req.extensions_mut().insert(ctx.clone());

    let resp = serve(req).await;
    let status = resp.status();
    let Some(notes) = ctx.with(std::mem::take) else { return resp };
    // A change on record with its transaction is done, whether it answers 2xx or, as the UI's
    // forms do, a 303 to the next page.
    if notes.in_transaction && (status.is_success() || status.is_redirection()) {
        return resp;
    }
    let error = resp.extensions().get::<ErrorCode>().map(|c| c.as_str()).unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED => bump(&st.audit.counters.auth_failures),
        StatusCode::FORBIDDEN => bump(&st.audit.counters.denials),
        StatusCode::TOO_MANY_REQUESTS => bump(&st.audit.counters.rate_limited),
        _ => {}
    }
    let mut entry = notes.base;
    entry.operation = notes.operation.unwrap_or_else(|| match status {
        StatusCode::UNAUTHORIZED => "auth.failed".into(),
        StatusCode::TOO_MANY_REQUESTS => "rate_limited".into(),
        _ => format!("{method} {uri_path}"),
    });
    if entry.mount.is_empty() && entry.path.is_empty() {
        (entry.mount, entry.path) = locate(uri_path);
    }
    entry.status = status.as_u16();
    entry.error = error.to_owned();
    entry.time = format_rfc3339(now_nanos());
    if notes.after_response {
        st.audit.late.fetch_add(1, Ordering::AcqRel);
        let st = st.clone();
        tokio::spawn(async move {
            commit(&st, entry, true, "it was due after a proxied call's answer").await;
            if st.audit.late.fetch_sub(1, Ordering::AcqRel) == 1 {
                st.audit.late_done.notify_waiters();
            }
        });
        return resp;
    }
    match commit(st, entry, false, "the response was withheld").await {
        true => resp,
        false => {
            ApiError::new(ErrorCode::AuditUnavailable, "the audit log cannot be written; the request was not served")
                .retry_after(Duration::from_secs(5))
                .for_path(uri_path)
                .into_response()
        }
    }
}

/// Commits an entry to the primary sink (one no response waits for, `later`), keeping the
/// sink's health and failure count; `false` when it could not be written (`then` says what
/// followed, for the log).
pub(crate) async fn commit(st: &AppState, entry: AuditEntry, later: bool, then: &str) -> bool {
    let committed = match later {
        true => st.kw.audit_later(entry).await,
        false => st.kw.audit(entry).await,
    };
    match committed {
        Ok(()) => {
            if !st.audit.primary_ok.swap(true, Ordering::Relaxed) {
                *st.audit.primary_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                tracing::info!("the audit log is written again");
            }
            true
        }
        Err(e) => {
            st.audit.primary_ok.store(false, Ordering::Relaxed);
            *st.audit.primary_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
            bump(&st.audit.counters.audit_primary_failures);
            tracing::error!(error = %e, "audit entry not written: {then}");
            false
        }
    }
}

/// Where committed entries are copied, best-effort.
#[derive(Debug, Clone, Default)]
pub struct AuditSinks {
    /// A JSON-lines file, appended to.
    pub file: Option<PathBuf>,
    /// Also print entries on stdout.
    pub stdout: bool,
}

/// Starts the sink task; returns the queue the writer offers committed entries to.
pub fn spawn_sinks(sinks: AuditSinks, state: Arc<AuditState>) -> Option<mpsc::Sender<String>> {
    if sinks.file.is_none() && !sinks.stdout {
        return None;
    }
    let (tx, mut rx) = mpsc::channel::<String>(16_384);
    tokio::spawn(async move {
        let mut file = None;
        while let Some(line) = rx.recv().await {
            if let Some(path) = &sinks.file {
                if file.is_none() {
                    match open_private_append(path).await {
                        Ok(f) => file = Some(f),
                        Err(e) => tracing::warn!(error = %e, path = %path.display(), "cannot open the audit file"),
                    }
                }
                let ok = match file.as_mut() {
                    Some(f) => f.write_all(format!("{line}\n").as_bytes()).await.is_ok() && f.flush().await.is_ok(),
                    None => false,
                };
                if !ok {
                    file = None;
                    bump(&state.counters.audit_sink_failures);
                    tracing::warn!(path = %path.display(), "audit file sink failed to write an entry");
                }
            }
            if sinks.stdout {
                println!("{line}");
            }
        }
    });
    Some(tx)
}

/// Opens a file of keyward's for appending, readable and writable by this user only (0600):
/// created so, or tightened if it exists with a wider mode.
async fn open_private_append(path: &std::path::Path) -> std::io::Result<tokio::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    let f = tokio::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).await?;
    if f.metadata().await?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600)).await?;
    }
    Ok(f)
}

/// Writes the chain head to the log and the anchor file every `interval`, and once more on demand.
pub fn spawn_anchoring(kw: Keyward, anchor_file: Option<PathBuf>, interval: Duration) {
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            tokio::time::sleep(interval).await;
            match anchor_now(&kw, anchor_file.as_deref(), last).await {
                Ok(seq) => last = seq,
                Err(e) => tracing::warn!(error = %e, "audit anchoring failed"),
            }
        }
    });
}

/// Anchors the current head if it moved past `last`; returns the head's seq.
pub async fn anchor_now(kw: &Keyward, anchor_file: Option<&std::path::Path>, last: u64) -> Result<u64, String> {
    let Some((seq, hash)) = kw.audit_head().await.map_err(|e| e.to_string())? else { return Ok(0) };
    if seq <= last {
        return Ok(seq);
    }
    let hash = hex::encode(&hash);
    tracing::info!(target: "keyward::audit_anchor", seq, hash = %hash, "audit anchor");
    if let Some(path) = anchor_file {
        let line = serde_json::json!({ "seq": seq, "hash": hash, "time": format_rfc3339(now_nanos()) }).to_string();
        let mut f =
            open_private_append(path).await.map_err(|e| format!("cannot open anchor file {}: {e}", path.display()))?;
        f.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| e.to_string())?;
        f.sync_all().await.map_err(|e| e.to_string())?;
    }
    Ok(seq)
}

/// The last anchor `(seq, hash)` recorded in an anchor file.
pub fn last_anchor(path: &std::path::Path) -> Result<Option<(u64, Vec<u8>)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read anchor file {}: {e}", path.display())),
    };
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else { return Ok(None) };
    let v: Map<String, Value> =
        serde_json::from_str(line).map_err(|_| format!("anchor file {} is malformed", path.display()))?;
    let seq = v.get("seq").and_then(Value::as_u64).ok_or("anchor without seq")?;
    let hash = v.get("hash").and_then(Value::as_str).and_then(|h| hex::decode(h).ok()).ok_or("anchor without hash")?;
    Ok(Some((seq, hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_mount_and_path() {
        assert_eq!(locate("/api/v1/mounts/careflex/secrets/accounts/42"), ("careflex".into(), "accounts/42".into()));
        assert_eq!(locate("/api/v1/mounts/careflex"), ("careflex".into(), String::new()));
        assert_eq!(locate("/api/v1/tokens"), (String::new(), String::new()));
        assert!(exempt("/v1/sys/health") && !exempt("/api/v1/mounts"));
        let t = keyward_crypto::Token::generate();
        let p = redact_path(&format!("/v1/auth/token/lookup/{}", t.expose()));
        assert_eq!(p, "/v1/auth/token/lookup/[token]");
        assert_eq!(redact_path("/api/v1/mounts/secret/secrets/prod"), "/api/v1/mounts/secret/secrets/prod");
    }
}
