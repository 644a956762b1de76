//! `/api/v1/audit`: search and tail the log, verify the chain, anchor the head (`sudo` on `sys/audit`).
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{now_nanos, parse_duration, rule_matches, AuditEntry};

use crate::audit::{anchor_now, last_anchor};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::json_body;
use crate::extract::query_of;
use crate::outward;
use crate::pipeline::Ctx;
use crate::wire::{
    Anchored, ArchiveReport, ArchiveRequest, AuditEntryOut, AuditPage, AuditQuery, AuditVerifyReport, VerifyQuery,
};

const SCAN_PAGE: u32 = 1000;

fn entry_time(e: &AuditEntry) -> i128 {
    time::OffsetDateTime::parse(&e.time, &time::format_description::well_known::Rfc3339)
        .map_or(0, |t| t.unix_timestamp_nanos())
}

/// Which entries a search keeps (every condition given must hold).
#[derive(Debug, Default)]
pub(crate) struct EntryFilter<'a> {
    pub accessor: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// A policy-style glob over `<mount>/<path>`.
    pub path: Option<&'a str>,
    pub failed: bool,
    /// Entries no older than this duration (`1h`).
    pub since: Option<&'a str>,
}

impl EntryFilter<'_> {
    /// The filter as a test of entries (a bad `since` is a 400).
    pub(crate) fn matcher(&self) -> ApiResult<impl Fn(&AuditEntry) -> bool + '_> {
        let since = match self.since {
            Some(s) => Some(i128::from(now_nanos()) - i128::from(parse_duration(s)?) * 1_000_000_000),
            None => None,
        };
        Ok(move |e: &AuditEntry| {
            self.accessor.is_none_or(|a| e.accessor == a)
                && self.operation.is_none_or(|o| e.operation == o)
                && self.request_id.is_none_or(|r| e.request_id == r)
                && (!self.failed || e.status >= 400)
                && self.path.is_none_or(|g| rule_matches(g, &format!("{}/{}", e.mount, e.path)))
                && since.is_none_or(|t| entry_time(e) >= t)
        })
    }
}

/// Walks the log after `after` in order, handing each entry (with its sequence number) to `visit`
/// until it says stop; returns the last sequence number read.
pub(crate) async fn scan(
    st: &crate::app::AppState,
    after: u64,
    mut visit: impl FnMut(u64, AuditEntry) -> std::ops::ControlFlow<()>,
) -> ApiResult<u64> {
    let mut after = after;
    loop {
        let rows = st.kw.audit_rows(after, SCAN_PAGE).await?;
        let Some(last) = rows.last() else { return Ok(after) };
        let last = last.seq;
        for row in rows {
            let e: AuditEntry = serde_json::from_str(&row.entry)
                .map_err(|_| ApiError::from(keyward_core::CoreError::Integrity(format!("audit entry {}", row.seq))))?;
            if visit(row.seq, e).is_break() {
                return Ok(row.seq);
            }
        }
        after = last;
    }
}

/// Search or tail the log.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = AuditPage)))]
pub async fn search(ctx: Ctx, req: Request) -> ApiResult<Response> {
    use std::ops::ControlFlow::{Break, Continue};
    let q: AuditQuery = query_of(&req)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let filter = EntryFilter {
        accessor: q.accessor.as_deref(),
        operation: q.operation.as_deref(),
        path: q.path.as_deref(),
        failed: q.failed.unwrap_or(false),
        since: q.since.as_deref(),
        ..EntryFilter::default()
    };
    let matches = filter.matcher()?;
    let mut entries: std::collections::VecDeque<AuditEntryOut> = std::collections::VecDeque::new();
    let next = scan(&ctx.st, q.after.unwrap_or(0), |_, e| {
        if !matches(&e) {
            return Continue(());
        }
        entries.push_back(outward::audit_entry(e));
        match q.last {
            None if entries.len() >= limit => return Break(()),
            // Tailing: only the last `n` are kept.
            Some(n) if entries.len() > n.clamp(1, 1000) as usize => drop(entries.pop_front()),
            _ => {}
        }
        Continue(())
    })
    .await?;
    Ok(Json(AuditPage { entries: entries.into(), next }).into_response())
}

/// Walk the whole chain and report the first break (modified, deleted, reordered, inserted,
/// truncated), against the stored head and the last anchor (given, or from the anchor file).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", params(VerifyQuery),
    responses((status = 200, body = AuditVerifyReport)))]
pub async fn verify(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: VerifyQuery = query_of(&req)?;
    let st = &ctx.st;
    let anchor = match (q.anchor_seq, q.anchor_hash) {
        (Some(seq), Some(hash)) => {
            Some((seq, hex::decode(hash.trim()).map_err(|_| ApiError::bad_request("anchor_hash must be hex"))?))
        }
        (None, None) => match &st.audit.anchor_file {
            Some(path) => last_anchor(path).map_err(ApiError::bad_request)?,
            None => None,
        },
        _ => return Err(ApiError::bad_request("give both anchor_seq and anchor_hash")),
    };
    let archive_dir = match (q.archive_dir.as_deref(), q.archive.unwrap_or(false)) {
        (Some(dir), _) if !dir.is_empty() => {
            let dir = std::path::PathBuf::from(dir);
            if !dir.is_absolute() || !dir.is_dir() {
                return Err(ApiError::bad_request(
                    "archive_dir must be the absolute path of a directory the server can read",
                ));
            }
            Some(dir)
        }
        (_, true) | (Some(_), false) => Some(configured_archive_dir(&ctx)?),
        (None, false) => None,
    };
    let report = st.kw.verify_audit(anchor).await?;
    let mut out = outward::verify_report(report);
    if let Some(dir) = archive_dir {
        let check = st.kw.check_archive(&dir).await?;
        out.ok &= check.ok;
        out.archive = Some(outward::archive_check(check));
    }
    if !out.ok {
        let why = out.reason.as_deref().or(out.archive.as_ref().and_then(|a| a.reason.as_deref()));
        tracing::error!(target: "security", broken_seq = ?out.broken_seq, reason = ?why, "audit chain verification failed");
    }
    Ok(Json(out).into_response())
}

fn configured_archive_dir(ctx: &Ctx) -> ApiResult<std::path::PathBuf> {
    ctx.st.audit.archive_dir.clone().ok_or_else(|| {
        ApiError::bad_request("this server has no audit archive directory: start it with --audit-archive-dir DIR")
    })
}

/// Archive the entries older than `before` into the server's archive directory: each segment
/// is written, synced and verified before its rows are deleted (with the archived head moved
/// and its entry in the same transaction). One run at a time across every replica.
#[utoipa::path(post, path = "/api/v1/audit/archive", tag = "audit", request_body = ArchiveRequest,
    responses((status = 200, body = ArchiveReport),
        (status = 409, description = "another archive is running", body = keyward_api::ErrorBody),
        (status = 503, description = "the archive directory cannot be written", body = keyward_api::ErrorBody)))]
pub async fn archive(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let body: ArchiveRequest = json_body(req).await?;
    let older_than_secs = body.before.as_deref().map(parse_duration).transpose()?;
    if older_than_secs.is_none() && !body.vacuum {
        return Err(ApiError::bad_request("give before (e.g. \"30d\"), vacuum, or both"));
    }
    let dir = configured_archive_dir(&ctx)?;
    let req = keyward_core::ArchiveRequest { older_than_secs, vacuum: body.vacuum, dir, scheduled: false };
    // Run apart from the request: a client that goes away does not stop a segment midway.
    let kw = ctx.st.kw.clone();
    let outcome = ctx
        .change(|entry| async move {
            tokio::spawn(async move { kw.archive_audit(&req, entry).await })
                .await
                .map_err(|e| keyward_core::CoreError::Archive(format!("the archive run stopped: {e}")))?
        })
        .await?;
    Ok(Json(outward::archive_report(outcome)).into_response())
}

/// Anchor the current head now (log line and anchor file).
#[utoipa::path(post, path = "/api/v1/audit/anchor", tag = "audit", responses((status = 200, body = Anchored)))]
pub async fn anchor(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let st = &ctx.st;
    let seq = anchor_now(&st.kw, st.audit.anchor_file.as_deref(), 0)
        .await
        .map_err(|e| ApiError::new(ErrorCode::AnchorFailed, e))?;
    Ok(Json(Anchored { seq }).into_response())
}
