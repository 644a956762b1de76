//! `POST /api/v1/backup` (`sudo` on `sys/backup`): an online, consistent, encrypted backup,
//! streamed as it is taken while the server keeps serving.
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keyward_core::{CoreError, Manifest};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

/// Streams a backup file: the manifest (plain, authenticated), then sealed chunks. A failure
/// after the first bytes aborts the response, so the client never mistakes a cut file for one.
#[utoipa::path(post, path = "/api/v1/backup", tag = "backup",
    responses((status = 200, description = "The backup file (`keyward operator backup FILE` writes it; `keyward operator restore` reads it)",
        content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn backup(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(8);
    let kw = ctx.st.kw.clone();
    let task = tokio::spawn(async move { kw.backup(tx).await });
    let Some(preamble) = rx.recv().await else {
        return Err(match task.await {
            Ok(Err(e)) => ApiError::from(e),
            _ => ApiError::from(CoreError::Unavailable),
        });
    };
    // The manifest (after the magic and its length) names what the backup holds, for the audit.
    if let Some(manifest) = preamble.get(12..).and_then(|h| serde_json::from_slice::<Manifest>(h).ok()) {
        ctx.audit.detail("backup_id", manifest.backup_id.clone());
        ctx.audit.detail("rows", manifest.tables.iter().map(|t| t.rows).sum::<u64>());
        ctx.audit.detail("audit_seq", manifest.audit_seq);
        ctx.audit.detail("kek_tag", manifest.kek_tag.clone());
    }
    let stream = futures_util::stream::unfold((Some(preamble), rx, Some(task)), |(first, mut rx, task)| async move {
        if let Some(bytes) = first {
            return Some((Ok::<_, std::io::Error>(bytes), (None, rx, task)));
        }
        if let Some(bytes) = rx.recv().await {
            return Some((Ok(bytes), (None, rx, task)));
        }
        // The sealer is done: a failure now must cut the response, not end it cleanly.
        let task = task?;
        match task.await {
            Ok(Ok(summary)) => {
                tracing::info!(backup_id = %summary.manifest.backup_id, "backup taken");
                None
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "backup failed part-way; the response was cut");
                Some((Err(std::io::Error::other("backup failed")), (None, rx, None)))
            }
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, rx, None))),
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(stream)).into_response())
}
