//! The write operations the writer applies inside its batch transaction.
use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{blob_dek_version, open_secret_blob, seal_secret_blob, BlobContext, Key256, WrappedKeyDomain};
use serde_json::Value;
use uuid::Uuid;

use crate::paths::{validate_field_name, validate_mount_path, validate_secret_path};
use crate::{
    now_nanos, CoreError, FieldStamp, KeyJob, KeyManager, Mount, MountKind, Nanos, Policy, SecretData, SecretMeta,
    SecretVersion, StoreTx, TokenRecord, WriteSummary,
};

/// A change to a secret's map: fields to set and names to remove.
#[derive(Debug, Default)]
pub struct SecretPatch {
    /// Fields to add or replace.
    pub set: SecretData,
    /// Field names to remove; each must exist.
    pub unset: Vec<String>,
    /// Check-and-set: the current version the caller expects (0 = must not exist yet).
    pub cas: Option<u64>,
    /// Whether the caller may create the secret if it does not exist (`create`).
    pub may_create: bool,
    /// Whether the caller may change it if it exists (`update` or `patch`).
    pub may_change: bool,
    /// Set this path's `rotate_after` (seconds) in its custom metadata.
    pub rotate_after: Option<u64>,
    /// Vault write semantics: `set` replaces the whole map (it may be empty) and a new version is
    /// written even when nothing changed.
    pub replace: bool,
    /// Whether the writer may `read` the secret. One that may not learns nothing about whether
    /// a value it sets equals the stored one: a new version is always written and every field it
    /// sets is reported (and stamped) as changed.
    pub may_read: bool,
}

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

/// One write, applied atomically inside a group-committed batch.
#[derive(Debug)]
pub enum WriteOp {
    /// Patch a secret's map into a new version.
    Patch {
        /// Mount name.
        mount: String,
        /// Secret path.
        path: String,
        /// The change.
        patch: SecretPatch,
        /// Accessor of the writing token.
        actor: String,
    },
    /// Write a new version equal to an older one.
    Rollback {
        /// Mount name.
        mount: String,
        /// Secret path.
        path: String,
        /// The version to restore.
        version: u64,
        /// Whether the writer may `read` (else it learns nothing about equality).
        may_read: bool,
        /// Accessor of the writing token.
        actor: String,
    },
    /// Delete a secret with all its versions.
    DeleteSecret {
        /// Mount name.
        mount: String,
        /// Secret path.
        path: String,
    },
    /// Create a mount (and, for kv, its first data key).
    CreateMount {
        /// Mount name.
        path: String,
        /// Engine.
        kind: MountKind,
        /// Default age (seconds) after which its fields are reported stale.
        rotate_after: Option<u64>,
    },
    /// Delete a mount and crypto-shred it (its wrapped data keys go in the same transaction).
    DeleteMount {
        /// Mount name.
        path: String,
    },
    /// Store a new token (its digest only).
    CreateToken(TokenRecord),
    /// Revoke a token and, transitively, every token created under it.
    RevokeToken {
        /// The token's accessor.
        accessor: String,
    },
    /// Move a live token's expiry (renewal).
    RenewToken {
        /// The token's accessor.
        accessor: String,
        /// The new expiry.
        expires_at: Nanos,
    },
    /// Record a token's last use.
    TouchToken {
        /// The token's accessor.
        accessor: String,
        /// When it was used.
        at: Nanos,
    },
    /// Create or replace a policy.
    PutPolicy(Policy),
    /// Delete a policy.
    DeletePolicy {
        /// Its name.
        name: String,
    },
    /// Add a data-key version to a mount; new writes use it at once.
    RotateDek {
        /// Mount name.
        mount: String,
    },
    /// Re-wrap every key held under an older KEK with the active one (no blob is touched).
    Rewrap,
    /// Delete a mount's older data-key versions that no blob uses.
    PruneDeks {
        /// Mount name.
        mount: String,
        /// The mount's id when the versions were counted (a mount re-created since is refused).
        mount_id: Uuid,
        /// Versions that sealed no blob when counted, while a newer version existed.
        unused: Vec<u32>,
    },
    /// Start a re-encryption job (one mount, or every kv mount) unless one is running.
    StartMigration {
        /// Mount name, or `None` for all.
        mount: Option<String>,
        /// The server instance starting it.
        owner: String,
        /// The rows to re-encrypt, counted before the write lock, if they were.
        counted: Option<UnmigratedCount>,
    },
    /// Apply a JSON merge patch (RFC 7396) to the live current version, as a new version.
    MergePatch {
        /// Mount name.
        mount: String,
        /// Secret path.
        path: String,
        /// The patch: `null` removes a key, objects merge recursively.
        patch: SecretData,
        /// Check-and-set: the current version the caller expects.
        cas: Option<u64>,
        /// Whether the writer may `read` (else it learns nothing about equality).
        may_read: bool,
        /// Accessor of the writing token.
        actor: String,
    },
    /// Soft-delete, undelete or destroy versions of a secret.
    Versions {
        /// Mount name.
        mount: String,
        /// Secret path.
        path: String,
        /// What to do.
        action: crate::kv::VersionAction,
        /// The versions (empty = the current one, for a soft delete); unknown ones are ignored.
        versions: Vec<u64>,
    },
    /// Change a secret's metadata, creating it (with no version) if it does not exist.
    WriteMetadata {
        /// Mount name.
        mount: String,
        /// Secret path.
        path: String,
        /// The change.
        update: crate::MetadataUpdate,
    },
    /// Change a kv mount's engine settings.
    ConfigureKv {
        /// Mount name.
        mount: String,
        /// The new settings.
        config: crate::KvConfig,
    },
    /// Create or replace a credential-proxy route.
    PutProxyRoute {
        /// The route.
        route: crate::ProxyRoute,
        /// The upstream it replaces, as the writer saw it (`None`: a new route); checked inside
        /// the transaction.
        previous_upstream: Option<String>,
    },
    /// Delete a credential-proxy route.
    DeleteProxyRoute {
        /// Its name.
        name: String,
    },
    /// Create, rotate, reconfigure or delete a transit key.
    Transit(crate::transit::TransitOp),
    /// Store a batch of a re-encryption job, re-sealed outside the write lock, and the job's
    /// progress with it.
    MigrateBatch(ResealedBatch),
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

/// The result of a [`WriteOp`].
#[derive(Debug)]
pub enum WriteReply {
    /// A secret write: what changed.
    Written(WriteSummary),
    /// A secret was deleted.
    SecretDeleted,
    /// A mount was created.
    MountCreated(Mount),
    /// A mount was deleted; `keys_shredded` wrapped keys went with it.
    MountDeleted {
        /// The deleted mount's id.
        id: Uuid,
        /// How many wrapped keys were deleted.
        keys_shredded: u64,
    },
    /// Tokens were revoked (the token and its descendants).
    TokensRevoked(u64),
    /// A new data-key version.
    DekRotated(u32),
    /// Keys rewrapped under the active KEK.
    Rewrapped(u64),
    /// A key job's state.
    Job(KeyJob),
    /// Data-key versions deleted, and older ones kept because blobs still use them.
    Pruned {
        /// Deleted versions.
        deleted: Vec<u32>,
        /// Versions still in use.
        kept: Vec<u32>,
    },
    /// A transit key's state after a change.
    TransitKey(crate::TransitKey),
    /// Done, nothing to report (token created or touched, policy written or deleted).
    Done,
}

impl WriteOp {
    /// Whether its reply adds facts to its audit entry (see [`WriteReply::audit_details`]).
    pub(crate) fn reports_details(&self) -> bool {
        matches!(
            self,
            WriteOp::DeleteMount { .. }
                | WriteOp::RevokeToken { .. }
                | WriteOp::RotateDek { .. }
                | WriteOp::Rewrap
                | WriteOp::PruneDeks { .. }
                | WriteOp::StartMigration { .. }
        )
    }
}

impl WriteReply {
    /// Facts only the change itself knows, for its audit entry (never a value).
    pub(crate) fn audit_details(&self) -> Option<serde_json::Map<String, Value>> {
        let pairs: Vec<(&str, Value)> = match self {
            WriteReply::MountDeleted { keys_shredded, .. } => vec![("keys_shredded", (*keys_shredded).into())],
            WriteReply::TokensRevoked(n) => vec![("revoked", (*n).into())],
            WriteReply::DekRotated(v) => vec![("dek_version", (*v).into())],
            WriteReply::Rewrapped(n) => vec![("rewrapped", (*n).into())],
            WriteReply::Pruned { deleted, .. } => vec![("deleted", deleted.clone().into())],
            WriteReply::Job(job) => vec![("job", job.id.to_string().into()), ("total", job.total.into())],
            _ => return None,
        };
        Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

pub(crate) async fn apply(tx: &mut dyn StoreTx, keys: &KeyManager, op: &WriteOp) -> Result<WriteReply, CoreError> {
    match op {
        WriteOp::Patch { mount, path, patch, actor } => patch_secret(tx, keys, mount, path, patch, actor).await,
        WriteOp::Rollback { mount, path, version, may_read, actor } => {
            rollback(tx, keys, mount, path, *version, *may_read, actor).await
        }
        WriteOp::DeleteSecret { mount, path } => {
            let m = kv_mount(tx, mount).await?;
            let meta = tx
                .secret_for_update(m.id, path)
                .await?
                .ok_or_else(|| CoreError::NotFound(format!("secret {mount}/{path}")))?;
            tx.delete_secret(meta.id).await?;
            Ok(WriteReply::SecretDeleted)
        }
        WriteOp::CreateMount { path, kind, rotate_after } => create_mount(tx, keys, path, *kind, *rotate_after).await,
        WriteOp::CreateToken(record) => create_token(tx, record).await,
        WriteOp::RevokeToken { accessor } => revoke_tree(tx, accessor).await,
        WriteOp::RenewToken { accessor, expires_at } => {
            let live = tx.token_locked(accessor).await?.is_some_and(|t| t.is_live(now_nanos()));
            if !live {
                return Err(CoreError::InvalidInput(crate::token_service::NOT_RENEWABLE.into()));
            }
            tx.set_token_expiry(accessor, *expires_at).await?;
            Ok(WriteReply::Done)
        }
        WriteOp::TouchToken { accessor, at } => {
            tx.touch_token(accessor, *at).await?;
            Ok(WriteReply::Done)
        }
        WriteOp::PutPolicy(policy) => {
            tx.put_policy(policy).await?;
            Ok(WriteReply::Done)
        }
        WriteOp::RotateDek { mount } => {
            let m = kv_mount(tx, mount).await?;
            let label = WrappedKeyDomain::Dek.label();
            let next = tx.latest_key_version(label, m.id).await?.unwrap_or(0) + 1;
            let dek = Key256::generate();
            tx.insert_wrapped_key(label, m.id, next, &keys.wrap(WrappedKeyDomain::Dek, m.id, next, &dek)).await?;
            Ok(WriteReply::DekRotated(next))
        }
        WriteOp::Rewrap => {
            let active = keys.keyring().active().tag.as_str().to_owned();
            let mut n = 0;
            for (domain, owner, version, wrapped) in tx.wrapped_keys().await? {
                if wrapped.kek_tag != active {
                    let rewrapped = keys.rewrap(&domain, owner, version, &wrapped)?;
                    tx.update_wrapped_key(&domain, owner, version, &rewrapped).await?;
                    n += 1;
                }
            }
            Ok(WriteReply::Rewrapped(n))
        }
        WriteOp::PruneDeks { mount, mount_id, unused } => {
            let m = kv_mount(tx, mount).await?;
            if m.id != *mount_id {
                return Err(CoreError::Conflict(format!("mount {mount} was re-created meanwhile; prune again")));
            }
            let label = WrappedKeyDomain::Dek.label();
            let versions = tx.key_versions(label, m.id).await?;
            // The newest version is active and never pruned. An older one that sealed no blob
            // when counted never will: writes and re-encryption seal under the newest version,
            // read inside their write transaction, and the newest only moves up — except for a
            // write on another server that read it before it was superseded and has not committed
            // yet (PostgreSQL), which `unused_data_keys` accounts for.
            let older: Vec<u32> = versions.iter().copied().filter(|v| Some(v) != versions.last()).collect();
            let candidates: Vec<u32> = older.iter().copied().filter(|v| unused.contains(v)).collect();
            let unused = tx.unused_data_keys(m.id, &candidates).await?;
            let (deleted, kept): (Vec<u32>, Vec<u32>) = older.into_iter().partition(|v| unused.contains(v));
            for v in &deleted {
                tx.delete_wrapped_key(label, m.id, *v).await?;
            }
            Ok(WriteReply::Pruned { deleted, kept })
        }
        WriteOp::MergePatch { mount, path, patch, cas, may_read, actor } => {
            crate::kv::merge_patch(tx, keys, mount, path, patch, *cas, *may_read, actor).await
        }
        WriteOp::Versions { mount, path, action, versions } => {
            crate::kv::change_versions(tx, mount, path, *action, versions).await
        }
        WriteOp::WriteMetadata { mount, path, update } => crate::kv::write_metadata(tx, mount, path, update).await,
        WriteOp::ConfigureKv { mount, config } => crate::kv::configure(tx, mount, *config).await,
        WriteOp::Transit(op) => crate::transit::apply(tx, keys, op).await,
        WriteOp::PutProxyRoute { route, previous_upstream } => {
            let changed = || CoreError::Conflict(format!("proxy route {:?} changed meanwhile; try again", route.name));
            let stored = tx.proxy_route(&route.name).await?.map(|r| r.upstream);
            if stored != *previous_upstream || !tx.put_proxy_route(route, stored.is_some()).await? {
                return Err(changed());
            }
            Ok(WriteReply::Done)
        }
        WriteOp::DeleteProxyRoute { name } => {
            if tx.delete_proxy_route(name).await? {
                Ok(WriteReply::Done)
            } else {
                Err(CoreError::NotFound(format!("proxy route {name:?}")))
            }
        }
        WriteOp::StartMigration { mount, owner, counted } => {
            start_migration(tx, mount.as_deref(), owner, counted.as_ref()).await
        }
        WriteOp::MigrateBatch(batch) => migrate_batch(tx, batch).await,
        WriteOp::DeletePolicy { name } => {
            if tx.delete_policy(name).await? {
                Ok(WriteReply::Done)
            } else {
                Err(CoreError::NotFound(format!("policy {name:?}")))
            }
        }
        WriteOp::DeleteMount { path } => {
            let m = tx.mount(path).await?.ok_or_else(|| CoreError::NotFound(format!("mount {path:?}")))?;
            let keys_shredded = tx.delete_mount(m.id).await?;
            Ok(WriteReply::MountDeleted { id: m.id, keys_shredded })
        }
    }
}

async fn start_migration(
    tx: &mut dyn StoreTx,
    mount: Option<&str>,
    owner: &str,
    counted: Option<&UnmigratedCount>,
) -> Result<WriteReply, CoreError> {
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
    Ok(WriteReply::Job(job))
}

/// Stores one re-sealed batch and the job's progress in the same transaction, so a crash at any
/// point leaves each blob either old-and-valid or new-and-valid, and the job resumes where it
/// was. A batch read before another one committed, or sealed under a key that is no longer its
/// mount's newest (a rotation since; the share lock taken here on PostgreSQL keeps it so until
/// commit), changes nothing.
pub(crate) async fn migrate_batch(tx: &mut dyn StoreTx, batch: &ResealedBatch) -> Result<WriteReply, CoreError> {
    let id = batch.job;
    let mut job = tx.key_job_for_update(id).await?.ok_or_else(|| CoreError::NotFound(format!("key job {id}")))?;
    if job.status != "running" || job.cursor != batch.from {
        return Ok(WriteReply::Job(job));
    }
    let label = WrappedKeyDomain::Dek.label();
    for (mount, version) in &batch.sealed_under {
        if tx.latest_key_version(label, *mount).await? != Some(*version) {
            return Ok(WriteReply::Job(job));
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
    Ok(WriteReply::Job(job))
}

/// Stores a new token after checking, inside the transaction, that its parent is still live: the
/// parent's row is share-locked (PostgreSQL) so a revocation on another server either commits
/// first — and the child is refused — or waits for the child and then revokes it too.
async fn create_token(tx: &mut dyn StoreTx, record: &TokenRecord) -> Result<WriteReply, CoreError> {
    if let Some(parent) = &record.parent_accessor {
        let live = tx.token_locked(parent).await?.is_some_and(|p| p.is_live(now_nanos()));
        if !live {
            return Err(CoreError::Forbidden("the creating token was revoked or expired meanwhile".into()));
        }
    }
    tx.insert_token(record).await?;
    Ok(WriteReply::Done)
}

/// Revokes a token and all its descendants, depth first, in this one transaction. Each token is
/// marked revoked before its children are read: on PostgreSQL the mark waits for a child being
/// created under it on another server (which share-locks it), and the children read afterwards
/// include that child.
async fn revoke_tree(tx: &mut dyn StoreTx, accessor: &str) -> Result<WriteReply, CoreError> {
    if tx.token_by_accessor(accessor).await?.is_none() {
        return Err(CoreError::NotFound("token".into()));
    }
    let mut queue = vec![accessor.to_owned()];
    let mut revoked = 0;
    while let Some(a) = queue.pop() {
        tx.revoke_token(&a).await?;
        queue.extend(tx.child_accessors(&a).await?);
        revoked += 1;
    }
    Ok(WriteReply::TokensRevoked(revoked))
}

async fn create_mount(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    path: &str,
    kind: MountKind,
    rotate_after: Option<u64>,
) -> Result<WriteReply, CoreError> {
    validate_mount_path(path)?;
    if tx.mount(path).await?.is_some() {
        return Err(CoreError::Conflict(format!("mount {path:?} already exists")));
    }
    let mount = Mount {
        id: Uuid::new_v4(),
        path: path.to_owned(),
        kind,
        created_at: now_nanos(),
        config: match rotate_after {
            Some(secs) => serde_json::json!({ "rotate_after_secs": secs }),
            None => Value::Object(Default::default()),
        },
    };
    tx.insert_mount(&mount).await?;
    if kind == MountKind::Kv {
        let dek = Key256::generate();
        let wrapped = keys.wrap(WrappedKeyDomain::Dek, mount.id, 1, &dek);
        tx.insert_wrapped_key(WrappedKeyDomain::Dek.label(), mount.id, 1, &wrapped).await?;
    }
    Ok(WriteReply::MountCreated(mount))
}

pub(crate) async fn kv_mount(tx: &mut dyn StoreTx, name: &str) -> Result<Mount, CoreError> {
    match tx.mount(name).await? {
        Some(m) if m.kind == MountKind::Kv => Ok(m),
        Some(_) => Err(CoreError::InvalidInput(format!("mount {name:?} is not a kv mount"))),
        None => Err(CoreError::NotFound(format!("mount {name:?}"))),
    }
}

/// Opens one stored version (used by reads and by writes that build on the current map).
pub(crate) fn open_version(
    dek: &Key256,
    mount: &Mount,
    meta: &SecretMeta,
    v: &SecretVersion,
) -> Result<SecretData, CoreError> {
    let blob = v.blob.as_deref().ok_or_else(|| CoreError::NotFound(format!("version {} (destroyed)", v.version)))?;
    let ctx = BlobContext { mount: *mount.id.as_bytes(), secret: *meta.id.as_bytes(), version: v.version };
    let plain = open_secret_blob(dek, &ctx, blob)
        .map_err(|_| CoreError::Integrity(format!("{}/{} version {}", mount.path, meta.path, v.version)))?;
    SecretData::from_plaintext(&plain)
}

async fn decrypt_in_tx(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mount: &Mount,
    meta: &SecretMeta,
    v: &SecretVersion,
) -> Result<SecretData, CoreError> {
    let blob = v.blob.as_deref().ok_or_else(|| CoreError::NotFound(format!("version {} (destroyed)", v.version)))?;
    let dek_version = blob_dek_version(blob)
        .map_err(|_| CoreError::Integrity(format!("{}/{} version {}", mount.path, meta.path, v.version)))?;
    let dek = keys.dek_in_tx(tx, mount.id, dek_version).await?;
    open_version(&dek, mount, meta, v)
}

/// The live current map of a secret and its field versions (empty when new, deleted or destroyed).
pub(crate) async fn current_map(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mount: &Mount,
    meta: Option<&SecretMeta>,
) -> Result<(SecretData, BTreeMap<String, FieldStamp>), CoreError> {
    let Some(meta) = meta else {
        return Ok(Default::default());
    };
    match tx.version(meta.id, meta.current_version).await? {
        Some(v) if is_live(&v, now_nanos()) => {
            let data = decrypt_in_tx(tx, keys, mount, meta, &v).await?;
            Ok((data, v.field_versions))
        }
        _ => Ok(Default::default()),
    }
}

/// A version number given by a caller: versions are stored as signed 64-bit integers, so a
/// larger one cannot exist and is refused as input (not looked up).
pub(crate) fn version_number(v: u64) -> Result<u64, CoreError> {
    if i64::try_from(v).is_err() {
        return Err(CoreError::InvalidInput(format!("version {v} is out of range (at most {})", i64::MAX)));
    }
    Ok(v)
}

/// Whether a version can be read: not destroyed, and not soft-deleted as of `now` (a deletion
/// time in the future comes from `delete_version_after`).
pub(crate) fn is_live(v: &SecretVersion, now: Nanos) -> bool {
    !v.destroyed && v.blob.is_some() && v.deletion_time.is_none_or(|t| t > now)
}

pub(crate) fn check_cas(meta: Option<&SecretMeta>, cas: Option<u64>, mount_requires: bool) -> Result<(), CoreError> {
    let current = meta.map_or(0, |m| m.current_version);
    match cas {
        Some(expected) if expected != current => {
            Err(CoreError::Conflict("check-and-set parameter did not match the current version".into()))
        }
        None if mount_requires || meta.is_some_and(|m| m.cas_required) => {
            Err(CoreError::InvalidInput("check-and-set parameter required for this call".into()))
        }
        _ => Ok(()),
    }
}

async fn patch_secret(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mount_name: &str,
    path: &str,
    patch: &SecretPatch,
    actor: &str,
) -> Result<WriteReply, CoreError> {
    validate_secret_path(path)?;
    for name in patch.set.fields().keys().chain(patch.unset.iter()) {
        validate_field_name(name)?;
    }
    if !patch.replace && patch.set.fields().is_empty() && patch.unset.is_empty() {
        return Err(CoreError::InvalidInput("nothing to change: give at least one field to set or unset".into()));
    }
    let mount = kv_mount(tx, mount_name).await?;
    let meta = tx.secret_for_update(mount.id, path).await?;
    // Decided under the row lock, so create-vs-update cannot race.
    match (&meta, patch.may_create, patch.may_change) {
        (None, false, _) => {
            return Err(CoreError::Forbidden(format!("\"create\" on \"{mount_name}/{path}\" is not granted")))
        }
        (Some(_), _, false) => {
            return Err(CoreError::Forbidden(format!("\"update\" on \"{mount_name}/{path}\" is not granted")))
        }
        _ => {}
    }
    check_cas(meta.as_ref(), patch.cas, crate::KvConfig::of(&mount).cas_required)?;
    let (base, base_fv) = current_map(tx, keys, &mount, meta.as_ref()).await?;
    let mut next = if patch.replace { SecretData::default() } else { base.clone() };
    for name in &patch.unset {
        if next.fields_mut().remove(name).is_none() {
            return Err(CoreError::NotFound(format!("field {name:?} in {mount_name}/{path}")));
        }
    }
    for (k, v) in patch.set.fields() {
        next.fields_mut().insert(k.clone(), v.clone());
    }
    let touched: BTreeSet<String> = patch.set.fields().keys().cloned().collect();
    let blind = (!patch.may_read).then_some(&touched);
    let reply = write_map(tx, keys, &mount, meta, path, (&base, &base_fv), next, actor, patch.replace, blind).await?;
    if let Some(secs) = patch.rotate_after {
        set_rotate_after(tx, &mount, path, secs).await?;
    }
    Ok(reply)
}

/// Records a path's `rotate_after` in its custom metadata (no value is touched).
async fn set_rotate_after(tx: &mut dyn StoreTx, mount: &Mount, path: &str, secs: u64) -> Result<(), CoreError> {
    let mut meta = tx
        .secret_for_update(mount.id, path)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("secret {}/{path}", mount.path)))?;
    meta.custom_metadata.insert("rotate_after".into(), crate::format_duration(secs));
    tx.update_secret(&meta).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn rollback(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mount_name: &str,
    path: &str,
    version: u64,
    may_read: bool,
    actor: &str,
) -> Result<WriteReply, CoreError> {
    let mount = kv_mount(tx, mount_name).await?;
    let meta = tx
        .secret_for_update(mount.id, path)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("secret {mount_name}/{path}")))?;
    let target = tx
        .version(meta.id, version)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("version {version} of {mount_name}/{path}")))?;
    if target.destroyed {
        return Err(CoreError::Conflict(format!("version {version} of {mount_name}/{path} was destroyed")));
    }
    let restored = decrypt_in_tx(tx, keys, &mount, &meta, &target).await?;
    let (base, base_fv) = current_map(tx, keys, &mount, Some(&meta)).await?;
    let touched: BTreeSet<String> = restored.fields().keys().cloned().collect();
    let blind = (!may_read).then_some(&touched);
    write_map(tx, keys, &mount, Some(meta), path, (&base, &base_fv), restored, actor, false, blind).await
}

/// Compares `next` with `base`, and unless nothing changed (and `always` is off), seals `next` as
/// a new version under the mount's active data key (read inside this transaction) and updates
/// the metadata, keeping the mount's or secret's `max_versions` and `delete_version_after`.
/// `blind` holds the fields a writer without `read` set: each counts as changed whatever its
/// value, and a new version is always written, so the reply and the fields' stamps say nothing
/// about equality with the stored values.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_map(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mount: &Mount,
    meta: Option<SecretMeta>,
    path: &str,
    (base, base_fv): (&SecretData, &BTreeMap<String, FieldStamp>),
    next: SecretData,
    actor: &str,
    always: bool,
    blind: Option<&BTreeSet<String>>,
) -> Result<WriteReply, CoreError> {
    let always = always || blind.is_some();
    let current = meta.as_ref().map_or(0, |m| m.current_version);
    let new_version = current + 1;
    let now = now_nanos();
    let stamp = FieldStamp { version: new_version, changed_at: now };
    let mut summary = WriteSummary::default();
    let mut field_versions = BTreeMap::new();
    for (k, v) in next.fields() {
        match base.fields().get(k) {
            None => {
                summary.added.push(k.clone());
                field_versions.insert(k.clone(), stamp);
            }
            Some(old) if old != v || blind.is_some_and(|b| b.contains(k)) => {
                summary.changed.push(k.clone());
                field_versions.insert(k.clone(), stamp);
            }
            Some(_) => {
                summary.unchanged.push(k.clone());
                field_versions.insert(k.clone(), base_fv.get(k).copied().unwrap_or(stamp));
            }
        }
    }
    summary.removed = base.fields().keys().filter(|k| !next.fields().contains_key(*k)).cloned().collect();
    let unchanged = summary.added.is_empty() && summary.changed.is_empty() && summary.removed.is_empty();
    if !always && meta.as_ref().is_some_and(|m| m.current_version > 0) && unchanged {
        summary.version = current;
        return Ok(WriteReply::Written(summary));
    }
    summary.version = new_version;

    let is_new = meta.is_none();
    let mut meta = meta.unwrap_or_else(|| SecretMeta::new(mount.id, path, now));
    let dek_version = tx
        .latest_key_version(WrappedKeyDomain::Dek.label(), mount.id)
        .await?
        .ok_or_else(|| CoreError::Integrity(format!("mount {} has no data key", mount.path)))?;
    let dek = keys.dek_in_tx(tx, mount.id, dek_version).await?;
    let ctx = BlobContext { mount: *mount.id.as_bytes(), secret: *meta.id.as_bytes(), version: new_version };
    let blob = seal_secret_blob(&dek, dek_version, &ctx, &next.to_plaintext());

    let kv = crate::KvConfig::of(mount);
    let delete_after = kv.effective_delete_after(&meta);
    meta.current_version = new_version;
    meta.updated_at = now;
    let keep = u64::from(kv.effective_max_versions(&meta).max(1));
    let oldest_kept = new_version.saturating_sub(keep - 1).max(1);
    meta.oldest_version = meta.oldest_version.max(oldest_kept);
    if is_new {
        tx.insert_secret(&meta).await?;
    } else {
        tx.update_secret(&meta).await?;
    }
    let version = SecretVersion {
        version: new_version,
        blob: Some(blob),
        dek_version: Some(dek_version),
        created_at: now,
        deletion_time: (delete_after > 0).then(|| now.saturating_add(delete_after.saturating_mul(1_000_000_000))),
        destroyed: false,
        created_by: actor.to_owned(),
        field_versions,
    };
    tx.insert_version(meta.id, &version).await?;
    tx.delete_versions_below(meta.id, meta.oldest_version).await?;
    Ok(WriteReply::Written(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(current: u64, cas_required: bool) -> SecretMeta {
        SecretMeta {
            id: Uuid::nil(),
            mount_id: Uuid::nil(),
            path: "p".into(),
            current_version: current,
            oldest_version: 1,
            max_versions: 10,
            cas_required,
            custom_metadata: BTreeMap::new(),
            created_at: 0,
            updated_at: 0,
            delete_version_after_secs: 0,
        }
    }

    #[test]
    fn cas_rules_follow_vault() {
        assert!(check_cas(None, None, false).is_ok());
        assert!(check_cas(None, Some(0), false).is_ok());
        assert!(check_cas(None, Some(1), false).is_err());
        assert!(check_cas(None, None, true).is_err());
        assert!(check_cas(Some(&meta(3, false)), Some(0), false).is_err());
        assert!(check_cas(Some(&meta(3, false)), Some(3), false).is_ok());
        assert!(check_cas(Some(&meta(3, true)), None, false).is_err());
        assert!(check_cas(Some(&meta(3, false)), None, true).is_err());
        assert!(check_cas(Some(&meta(3, true)), Some(3), false).is_ok());
    }
}
