//! The background work of the server holding the background lock ([`Leadership`]): key jobs,
//! the stale scan and scheduled audit retention. Every server tries to take the lock every
//! [`CHECK`]; the one holding it checks the lock is still its own just as often, so a replica
//! takes over within a few seconds of the holder's death.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_core::{ArchiveRequest, AuditEntry, CoreError, Keyward, Leadership};

use crate::audit::AuditState;
use crate::stale::StaleScan;

/// How often the trusted clock's high-water mark is stored.
const CLOCK_MARK_EVERY: Duration = Duration::from_secs(60);

/// How often the lock is tried (or checked) and the work looked for.
pub(crate) const CHECK: Duration = Duration::from_secs(2);

/// What the background work does, and how often.
#[derive(Debug, Clone)]
pub(crate) struct BackgroundWork {
    /// How often stale fields are counted.
    pub stale_scan_interval: Duration,
    /// Archive entries older than this into that directory.
    pub retention: Option<(Duration, PathBuf)>,
}

/// How often retention looks for entries past their age: a tenth of it, between a second and
/// an hour.
fn retention_check(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// The background task: stopped, and the lock released, when the server is dropped or shut
/// down — so a server started again in the same process (or another replica) can lead.
#[derive(Debug)]
pub(crate) struct BackgroundTask(Option<tokio::task::JoinHandle<()>>);

impl BackgroundTask {
    /// Stops the work and waits until the lock is released.
    pub(crate) async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Runs the background work whenever this server holds the lock (`first`: taken at start).
pub(crate) fn spawn(
    kw: Keyward,
    audit: Arc<AuditState>,
    work: BackgroundWork,
    first: Option<Leadership>,
) -> BackgroundTask {
    BackgroundTask(Some(tokio::spawn(async move {
        let mut lead = first;
        let mut stale = StaleScan::default();
        let (mut next_scan, mut next_retention) = (Instant::now(), Instant::now());
        let mut next_prune = Instant::now();
        let mut next_mark = Instant::now() + CLOCK_MARK_EVERY;
        loop {
            crate::metrics::upkeep();
            // Every server raises the trusted clock's stored mark (see keyward_core::now_nanos).
            if Instant::now() >= next_mark {
                if let Err(e) = kw.store_clock_mark().await {
                    tracing::warn!(error = %e, "cannot store the clock's high-water mark");
                }
                next_mark = Instant::now() + CLOCK_MARK_EVERY;
            }
            if lead.is_none() {
                match kw.try_lead().await {
                    Ok(Some(l)) => {
                        lead = Some(l);
                        (next_scan, next_retention) = (Instant::now(), Instant::now());
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot try the background lock"),
                }
            }
            if let Some(held) = lead.as_mut() {
                if held.still_held().await {
                    run_due(&kw, &audit, &work, &mut stale, &mut next_scan, &mut next_retention).await;
                    if Instant::now() >= next_prune {
                        prune_wrapped(&kw).await;
                        rotate_transit_keys(&kw).await;
                        next_prune = Instant::now() + PRUNE_WRAPPED_EVERY;
                    }
                } else {
                    tracing::warn!("lost the background lock (database connection gone); another server may take over");
                    lead = None;
                }
            }
            tokio::time::sleep(CHECK).await;
        }
    })))
}

async fn run_due(
    kw: &Keyward,
    audit: &AuditState,
    work: &BackgroundWork,
    stale: &mut StaleScan,
    next_scan: &mut Instant,
    next_retention: &mut Instant,
) {
    match kw.resume_jobs().await {
        Ok(_) | Err(CoreError::NotInitialized) => {}
        Err(e) => tracing::warn!(error = %e, "cannot look for key jobs to run"),
    }
    if Instant::now() >= *next_scan {
        stale.run(kw, audit).await;
        *next_scan = Instant::now() + work.stale_scan_interval;
    }
    if let Some((age, dir)) = &work.retention {
        if Instant::now() >= *next_retention {
            archive_on_schedule(kw, *age, dir).await;
            *next_retention = Instant::now() + retention_check(*age);
        }
    }
}

/// Rotates the transit keys whose `auto_rotate_period` has passed (checked with the pruning).
async fn rotate_transit_keys(kw: &Keyward) {
    match kw.rotate_due_transit_keys(keyward_core::now_nanos() / 1_000_000_000).await {
        Ok(0) | Err(CoreError::NotInitialized) => {}
        Ok(n) => tracing::info!(rotated = n, "transit keys rotated on their auto_rotate_period"),
        Err(e) => tracing::warn!(error = %e, "cannot auto-rotate transit keys"),
    }
}

/// How often expired wrapped responses are deleted and due transit keys rotated.
const PRUNE_WRAPPED_EVERY: Duration = Duration::from_secs(60);

/// Deletes expired wrapped responses (each is also refused once expired, deleted or not).
async fn prune_wrapped(kw: &Keyward) {
    match kw.prune_wrapped().await {
        Ok(0) | Err(CoreError::NotInitialized) => {}
        Ok(n) => tracing::info!(deleted = n, "expired wrapped responses deleted"),
        Err(e) => tracing::warn!(error = %e, "cannot delete expired wrapped responses"),
    }
}

async fn archive_on_schedule(kw: &Keyward, age: Duration, dir: &std::path::Path) {
    match kw.is_initialized().await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return tracing::warn!(error = %e, "scheduled audit archive skipped"),
    }
    let req =
        ArchiveRequest { older_than_secs: Some(age.as_secs()), vacuum: false, dir: dir.to_owned(), scheduled: true };
    let entry = AuditEntry {
        operation: "audit.archive".into(),
        status: 200,
        time: keyward_core::format_rfc3339(keyward_core::now_nanos()),
        details: [
            ("scheduled".to_owned(), true.into()),
            ("retention".to_owned(), keyward_core::format_duration(age.as_secs()).into()),
        ]
        .into_iter()
        .collect(),
        ..AuditEntry::default()
    };
    match kw.archive_audit(&req, entry).await {
        Ok(out) if out.error.is_some() => {
            tracing::error!(entries = out.entries, error = ?out.error, "scheduled audit archive stopped early");
        }
        Ok(out) if out.entries > 0 => {
            tracing::info!(
                entries = out.entries,
                segments = out.segments.len(),
                through = out.archived_seq,
                "scheduled audit archive"
            );
        }
        Ok(_) | Err(CoreError::Conflict(_)) => {}
        Err(e) => tracing::error!(error = %e, "scheduled audit archive failed; entries stay in the database"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_checked_a_tenth_as_often_within_bounds() {
        assert_eq!(retention_check(Duration::from_secs(30 * 86_400)), Duration::from_secs(3600));
        assert_eq!(retention_check(Duration::from_secs(600)), Duration::from_secs(60));
        assert_eq!(retention_check(Duration::from_secs(2)), Duration::from_secs(1));
    }
}
