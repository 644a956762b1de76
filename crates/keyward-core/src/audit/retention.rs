//! Audit retention: entries older than a cutoff move into archive segments (see [`super::archive`])
//! and only then leave the database, with the archived head — a MAC'd system row — recording
//! where the database's chain now begins.
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::archive::{set_aside_unfinished, write_segment, SEGMENT_ENTRIES};
use super::{canonical, AuditEntry, AuditKeys, AuditRow, HASH_LEN};
use crate::engine::command::{details, Command};
use crate::{CoreError, JobLock, KeyManager, Keyward, SpaceReclaimed, StoreTx};

/// The system row holding the archived head, `<seq>:<hash hex>`.
const ARCHIVED_HEAD: &str = "audit/archived_head";

/// What to archive.
#[derive(Debug, Clone)]
pub struct ArchiveRequest {
    /// Entries older than this many seconds are archived; `None` archives nothing (a vacuum
    /// alone).
    pub older_than_secs: Option<u64>,
    /// Whether to switch SQLite to incremental vacuum (once) and give the space back.
    pub vacuum: bool,
    /// The archive directory.
    pub dir: PathBuf,
    /// A run of the retention schedule: when it archives nothing, it leaves no entry.
    pub scheduled: bool,
}

/// What an archive run did.
#[derive(Debug, Clone, Default)]
pub struct ArchiveOutcome {
    /// Segment files written, in order.
    pub segments: Vec<String>,
    /// Entries archived and deleted from the database.
    pub entries: u64,
    /// The archived head after the run (0: nothing archived yet).
    pub archived_seq: u64,
    /// What an interrupted earlier run had left: temporary files removed, segments past the
    /// archived head moved to `superseded/`.
    pub set_aside: Vec<String>,
    /// Space given back, when asked for or in incremental mode.
    pub space: Option<SpaceReclaimed>,
    /// Why the run stopped early, after archiving what `segments` says.
    pub error: Option<String>,
}

fn genesis() -> (u64, Vec<u8>) {
    (0, vec![0; HASH_LEN])
}

fn parse_head(value: Option<String>) -> Result<(u64, Vec<u8>), CoreError> {
    let Some(v) = value else { return Ok(genesis()) };
    let bad = || CoreError::Integrity(format!("the {ARCHIVED_HEAD} row"));
    let (seq, hash) = v.split_once(':').ok_or_else(bad)?;
    let hash = hex::decode(hash).map_err(|_| bad())?;
    if hash.len() != HASH_LEN {
        return Err(bad());
    }
    Ok((seq.parse().map_err(|_| bad())?, hash))
}

fn entry_nanos(entry: &AuditEntry) -> Option<i128> {
    time::OffsetDateTime::parse(&entry.time, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp_nanos)
}

/// Deletes one archived segment's rows and moves the archived head past them, if it is still
/// where the segment began.
#[derive(Debug)]
struct ArchiveSegment {
    from: (u64, Vec<u8>),
    to: (u64, Vec<u8>),
}

#[async_trait]
impl Command for ArchiveSegment {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        if parse_head(tx.system_value(ARCHIVED_HEAD).await?)? != self.from {
            return Err(CoreError::Conflict("the archived head moved: another archive ran meanwhile".into()));
        }
        let deleted = tx.delete_audit_rows(self.from.0, self.to.0).await?;
        if deleted != self.to.0 - self.from.0 {
            return Err(CoreError::Integrity(format!(
                "audit entries {}..{} (found {deleted} of {} rows to delete)",
                self.from.0 + 1,
                self.to.0,
                self.to.0 - self.from.0
            )));
        }
        tx.set_system_value(ARCHIVED_HEAD, &format!("{}:{}", self.to.0, hex::encode(&self.to.1))).await?;
        Ok(deleted)
    }

    fn audit_details(deleted: &u64) -> Option<Map<String, Value>> {
        details([("archived", (*deleted).into())])
    }
}

impl Keyward {
    /// The last archived entry `(seq, hash)`, or `(0, zeros)` when nothing was archived.
    pub async fn archived_head(&self) -> Result<(u64, Vec<u8>), CoreError> {
        parse_head(self.store.system_value(ARCHIVED_HEAD).await?)
    }

    /// Archives the entries older than the request's cutoff into its directory, in segments of at
    /// most [`SEGMENT_ENTRIES`]: each is written, synced and checked before its rows are deleted,
    /// with the archived head moved and an `audit.archive` entry (`entry`, with the segment's
    /// facts) in the same transaction. One run at a time across every server on the database.
    /// The chain is checked as it is read: a broken one is never archived.
    pub async fn archive_audit(&self, req: &ArchiveRequest, entry: AuditEntry) -> Result<ArchiveOutcome, CoreError> {
        let _held = self.store.try_lock(JobLock::AuditArchive).await?.ok_or_else(|| {
            CoreError::Conflict("an audit archive is already running (on this server or another)".into())
        })?;
        let keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let cluster = self.cluster_id().await?.ok_or(CoreError::NotInitialized)?;
        let mut head = self.archived_head().await?;
        let mut out = ArchiveOutcome {
            set_aside: set_aside_unfinished(&req.dir, head.0)?,
            archived_seq: head.0,
            ..ArchiveOutcome::default()
        };
        if !out.set_aside.is_empty() {
            tracing::warn!(files = ?out.set_aside, "set aside what an interrupted audit archive left");
        }
        let mut first_entry = Some(entry.clone());
        if let Some(age) = req.older_than_secs {
            let cutoff = i128::from(crate::now_nanos()) - i128::from(age) * 1_000_000_000;
            loop {
                let (rows, more) = self.rows_to_archive(&keys, &head, cutoff).await?;
                let Some(last) = rows.last() else { break };
                let to = (last.seq, last.hash.clone());
                let (dir, k, c, from) = (req.dir.clone(), keys.clone(), cluster.clone(), head.clone());
                let written =
                    tokio::task::spawn_blocking(move || write_segment(&dir, &k, &c, &from, &rows).map(|(h, _)| h))
                        .await
                        .map_err(|e| CoreError::Archive(format!("the segment writer stopped: {e}")))?;
                let header = match written {
                    Ok(h) => h,
                    Err(e) if out.segments.is_empty() => return Err(e),
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                };
                let file = super::archive::segment_name(header.first_seq, header.last_seq);
                let mut e = first_entry.take().unwrap_or_else(|| entry.clone());
                for (k, v) in [
                    ("file", Value::from(file.clone())),
                    ("first_seq", header.first_seq.into()),
                    ("last_seq", header.last_seq.into()),
                ] {
                    e.details.insert(k.into(), v);
                }
                let cmd = ArchiveSegment { from: head.clone(), to: to.clone() };
                match self.writer.submit(cmd, e).await {
                    Ok(n) => out.entries += n,
                    Err(e) if out.segments.is_empty() => return Err(e),
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                }
                tracing::info!(file = %file, first = header.first_seq, last = header.last_seq, "audit entries archived");
                out.segments.push(file);
                head = to;
                out.archived_seq = head.0;
                if !more {
                    break;
                }
            }
        }
        if req.vacuum || !out.segments.is_empty() {
            match self.store.reclaim_space(req.vacuum).await {
                Ok(space) => out.space = Some(space),
                // What was archived stays archived (and on record): say why the space was not.
                Err(e) if !out.segments.is_empty() => {
                    out.error.get_or_insert(format!("the space was not given back: {e}"));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(mut e) = first_entry.filter(|_| !req.scheduled || req.vacuum) {
            // Nothing was archived: the request is on record by itself.
            e.details.insert("archived".into(), 0.into());
            self.audit(e).await?;
        }
        Ok(out)
    }

    /// The next segment's rows: consecutive entries after `head`, older than `cutoff`, each
    /// checked against the chain; and whether more may follow.
    async fn rows_to_archive(
        &self,
        keys: &AuditKeys,
        head: &(u64, Vec<u8>),
        cutoff: i128,
    ) -> Result<(Vec<AuditRow>, bool), CoreError> {
        let (mut rows, mut prev, mut after) = (Vec::new(), head.1.clone(), head.0);
        while rows.len() < SEGMENT_ENTRIES {
            let want = (SEGMENT_ENTRIES - rows.len()).min(1000) as u32;
            let page = self.store.audit_rows(after, want).await?;
            if page.is_empty() {
                return Ok((rows, false));
            }
            for row in page {
                let broken = || {
                    CoreError::Integrity(format!(
                        "audit entry {} (the chain does not verify there; nothing past it is archived — run \
                         `keyward audit verify`)",
                        after + 1
                    ))
                };
                if row.seq != after + 1 {
                    return Err(broken());
                }
                let entry: AuditEntry = serde_json::from_str(&row.entry).map_err(|_| broken())?;
                if entry_nanos(&entry).is_none_or(|t| t >= cutoff) {
                    return Ok((rows, false));
                }
                let hash = keys.chain(&prev, &canonical(&entry).map_err(|_| broken())?);
                if !bool::from(subtle::ConstantTimeEq::ct_eq(&hash[..], &row.hash[..])) {
                    return Err(broken());
                }
                prev = hash.to_vec();
                after = row.seq;
                rows.push(row);
            }
        }
        Ok((rows, true))
    }

    /// Checks the archive directory `dir` against the database's archived head.
    pub async fn check_archive(&self, dir: &Path) -> Result<super::archive::ArchiveCheck, CoreError> {
        let keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let cluster = self.cluster_id().await?.ok_or(CoreError::NotInitialized)?;
        let head = self.archived_head().await?;
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || super::archive::check_archive(&dir, &keys, &cluster, &head))
            .await
            .map_err(|e| CoreError::Archive(format!("the archive check stopped: {e}")))?
    }
}
