//! The key lifecycle's changes: data-key rotation, rewrapping under the active master key,
//! pruning unused data-key versions, and re-encryption jobs.
use async_trait::async_trait;
use keyward_crypto::{Key256, WrappedKeyDomain};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::command::{details, Command, Evict, Upkeep};
use crate::mounts::kv_mount;
use crate::{now_nanos, CoreError, KeyJob, KeyManager, KeyTx, StoreTx};

/// How many stored versions a migration has to re-encrypt, counted outside the write lock (a
/// scan of every version: seconds at a million, during which no write or audited request could
/// proceed). It holds while the same data-key versions exist: a write or a re-encryption seals
/// under its mount's newest key, so without a new key the rows to re-encrypt can only decrease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmigratedCount {
    /// Every data-key version when counted, as `(mount id, version)`.
    pub data_keys: Vec<(Uuid, u32)>,
    /// The rows sealed under an older key than their mount's newest.
    pub rows: u64,
}

/// A batch of a re-encryption job: versions read from committed state after `from` and re-sealed
/// under their mount's newest data key, before any write lock was taken. The write transaction
/// stores them only if the job is still at `from` and each mount's newest key is still the one
/// they were sealed under; otherwise the job comes back unchanged and the batch is redone.
#[derive(Debug, Clone)]
pub struct ResealedBatch {
    /// The job.
    pub job: Uuid,
    /// The job's cursor the batch was read from.
    pub from: (String, u64),
    /// The last position scanned (`None`: the walk reached the end).
    pub to: Option<(String, u64)>,
    /// The re-sealed versions.
    pub rows: Vec<crate::ResealedVersion>,
    /// `(mount id, data-key version)` for each mount the rows were sealed for.
    pub sealed_under: Vec<(Uuid, u32)>,
    /// Why the job stops after these rows: a version that cannot be decrypted (named, never a
    /// value).
    pub failure: Option<String>,
    /// The server instance running it.
    pub owner: String,
}

/// Adds a data-key version to a mount; new writes use it at once. Its reply is the new version.
#[derive(Debug)]
pub(crate) struct RotateDek {
    pub mount: String,
}

#[async_trait]
impl Command for RotateDek {
    type Reply = u32;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<u32, CoreError> {
        let m = kv_mount(tx, &self.mount).await?;
        let label = WrappedKeyDomain::Dek.label();
        let next = tx.latest_key_version(label, m.id).await?.unwrap_or(0) + 1;
        let dek = Key256::generate();
        tx.insert_wrapped_key(label, m.id, next, &keys.wrap(WrappedKeyDomain::Dek, m.id, next, &dek)).await?;
        Ok(next)
    }

    fn audit_details(version: &u32) -> Option<Map<String, Value>> {
        details([("dek_version", (*version).into())])
    }
}

/// Re-wraps every key held under an older KEK with the active one (no blob is touched); its
/// reply is how many.
#[derive(Debug)]
pub(crate) struct Rewrap;

#[async_trait]
impl Command for Rewrap {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<u64, CoreError> {
        let active = keys.keyring().active().tag.as_str().to_owned();
        let mut n = 0;
        for (domain, owner, version, wrapped) in tx.wrapped_keys().await? {
            if wrapped.kek_tag != active {
                let rewrapped = keys.rewrap(&domain, owner, version, &wrapped)?;
                tx.update_wrapped_key(&domain, owner, version, &rewrapped).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        details([("rewrapped", (*n).into())])
    }
}

/// Data-key versions deleted, and older ones kept because blobs still use them.
#[derive(Debug)]
pub(crate) struct Pruned {
    pub deleted: Vec<u32>,
    pub kept: Vec<u32>,
}

/// Deletes a mount's older data-key versions that no blob uses.
#[derive(Debug)]
pub(crate) struct PruneDeks {
    pub mount: String,
    /// The mount's id when the versions were counted (a mount re-created since is refused).
    pub mount_id: Uuid,
    /// Versions that sealed no blob when counted, while a newer version existed.
    pub unused: Vec<u32>,
}

#[async_trait]
impl Command for PruneDeks {
    type Reply = Pruned;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<Pruned, CoreError> {
        let m = kv_mount(tx, &self.mount).await?;
        if m.id != self.mount_id {
            return Err(CoreError::Conflict(format!("mount {} was re-created meanwhile; prune again", self.mount)));
        }
        let label = WrappedKeyDomain::Dek.label();
        let versions = tx.key_versions(label, m.id).await?;
        // The newest version is active and never pruned. An older one that sealed no blob when
        // counted never will: writes and re-encryption seal under the newest version, read inside
        // their write transaction, and the newest only moves up — except for a write on another
        // server that read it before it was superseded and has not committed yet (PostgreSQL),
        // which `unused_data_keys` accounts for.
        let older: Vec<u32> = versions.iter().copied().filter(|v| Some(v) != versions.last()).collect();
        let candidates: Vec<u32> = older.iter().copied().filter(|v| self.unused.contains(v)).collect();
        let unused = tx.unused_data_keys(m.id, &candidates).await?;
        let (deleted, kept): (Vec<u32>, Vec<u32>) = older.into_iter().partition(|v| unused.contains(v));
        for v in &deleted {
            tx.delete_wrapped_key(label, m.id, *v).await?;
        }
        Ok(Pruned { deleted, kept })
    }

    fn evicts(&self) -> Evict<'_> {
        // A pruned data key must not be looked for by a cached blob.
        Evict::Secrets
    }

    fn audit_details(p: &Pruned) -> Option<Map<String, Value>> {
        details([("deleted", p.deleted.clone().into())])
    }
}

/// Starts a re-encryption job (one mount, or every kv mount) unless one is running.
#[derive(Debug)]
pub(crate) struct StartMigration {
    /// Mount name, or `None` for all.
    pub mount: Option<String>,
    /// The server instance starting it.
    pub owner: String,
    /// The rows to re-encrypt, counted before the write lock, if they were.
    pub counted: Option<UnmigratedCount>,
}

#[async_trait]
impl Command for StartMigration {
    type Reply = KeyJob;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<KeyJob, CoreError> {
        start_migration(tx, self.mount.as_deref(), &self.owner, self.counted.as_ref()).await
    }

    fn audit_details(job: &KeyJob) -> Option<Map<String, Value>> {
        details([("job", job.id.to_string().into()), ("total", job.total.into())])
    }
}

/// Stores a batch of a re-encryption job, re-sealed outside the write lock, and the job's
/// progress with it.
#[derive(Debug)]
pub(crate) struct MigrateBatch(pub ResealedBatch);

#[async_trait]
impl Command for MigrateBatch {
    type Reply = KeyJob;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<KeyJob, CoreError> {
        migrate_batch(tx, &self.0).await
    }

    fn durable(&self) -> bool {
        // Lost in a crash, it is redone from the job's cursor; the blobs it replaces stay valid.
        false
    }
}

impl Upkeep for MigrateBatch {}

async fn start_migration(
    tx: &mut dyn StoreTx,
    mount: Option<&str>,
    owner: &str,
    counted: Option<&UnmigratedCount>,
) -> Result<KeyJob, CoreError> {
    tx.lock_key_jobs().await?;
    if let Some(j) = tx.running_key_job().await? {
        return Err(CoreError::Conflict(format!(
            "key job {} ({}) is already running, held by server {} since {} ({} of {} done)",
            j.id,
            j.mount.as_deref().unwrap_or("all mounts"),
            j.owner,
            crate::format_rfc3339(j.started_at),
            j.done,
            j.total
        )));
    }
    let mount_row = match mount {
        Some(m) => Some(kv_mount(tx, m).await?),
        None => None,
    };
    let mount_id = mount_row.as_ref().map(|m| m.id);
    let total = match counted {
        Some(c) if c.data_keys == tx.data_key_versions().await? => c.rows,
        _ => tx.count_unmigrated(mount_id).await?,
    };
    let now = now_nanos();
    let job = KeyJob {
        id: Uuid::new_v4(),
        kind: "migrate".into(),
        mount_id: mount_row.as_ref().map(|m| m.id),
        mount: mount_row.map(|m| m.path),
        status: if total == 0 { "done".into() } else { "running".into() },
        total,
        done: 0,
        cursor: (String::new(), 0),
        owner: owner.to_owned(),
        started_at: now,
        updated_at: now,
        error: String::new(),
    };
    tx.insert_key_job(&job).await?;
    Ok(job)
}

/// Stores one re-sealed batch and the job's progress in the same transaction, so a crash at any
/// point leaves each blob either old-and-valid or new-and-valid, and the job resumes where it
/// was. A batch read before another one committed, or sealed under a key that is no longer its
/// mount's newest (a rotation since; the share lock taken here on PostgreSQL keeps it so until
/// commit), changes nothing.
pub(crate) async fn migrate_batch(tx: &mut dyn KeyTx, batch: &ResealedBatch) -> Result<KeyJob, CoreError> {
    let id = batch.job;
    let mut job = tx.key_job_for_update(id).await?.ok_or_else(|| CoreError::NotFound(format!("key job {id}")))?;
    if job.status != "running" || job.cursor != batch.from {
        return Ok(job);
    }
    let label = WrappedKeyDomain::Dek.label();
    for (mount, version) in &batch.sealed_under {
        if tx.latest_key_version(label, *mount).await? != Some(*version) {
            return Ok(job);
        }
    }
    tx.update_version_blobs(&batch.rows).await?;
    job.done += batch.rows.len() as u64;
    match (&batch.failure, &batch.to) {
        (Some(error), _) => {
            job.status = "failed".into();
            job.error.clone_from(error);
        }
        (None, Some(cursor)) => job.cursor = cursor.clone(),
        (None, None) => job.status = "done".into(),
    }
    job.owner.clone_from(&batch.owner);
    job.updated_at = now_nanos();
    tx.update_key_job(&job).await?;
    Ok(job)
}
