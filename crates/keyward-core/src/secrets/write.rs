//! Writing a secret: one new version of its whole map, sealed under its mount's active data key
//! (read inside the write's transaction), with per-field change stamps. The commands here are
//! the native API's writes; `kv.rs` holds Vault's.
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use keyward_crypto::{blob_dek_version, open_secret_blob, seal_secret_blob, BlobContext, Key256, WrappedKeyDomain};

use super::paths::{validate_field_name, validate_secret_path};
use crate::engine::command::{Command, Evict};
use crate::mounts::kv_mount;
use crate::{
    now_nanos, CoreError, FieldStamp, KeyManager, Mount, Nanos, SecretData, SecretMeta, SecretTx, SecretVersion,
    StoreTx, WriteSummary,
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

/// Applies a patch to a secret's map as one new version.
#[derive(Debug)]
pub(crate) struct PatchSecret {
    pub mount: String,
    pub path: String,
    pub patch: SecretPatch,
    /// Accessor of the writing token.
    pub actor: String,
}

#[async_trait]
impl Command for PatchSecret {
    type Reply = WriteSummary;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<WriteSummary, CoreError> {
        patch_secret(tx, keys, &self.mount, &self.path, &self.patch, &self.actor).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secret(&self.path)
    }
}

/// Writes a new version equal to an older one.
#[derive(Debug)]
pub(crate) struct RollbackSecret {
    pub mount: String,
    pub path: String,
    /// The version to restore.
    pub version: u64,
    /// Whether the writer may `read` (else it learns nothing about equality).
    pub may_read: bool,
    pub actor: String,
}

#[async_trait]
impl Command for RollbackSecret {
    type Reply = WriteSummary;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<WriteSummary, CoreError> {
        rollback(tx, keys, &self.mount, &self.path, self.version, self.may_read, &self.actor).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secret(&self.path)
    }
}

/// Deletes a secret with all its versions.
#[derive(Debug)]
pub(crate) struct DeleteSecret {
    pub mount: String,
    pub path: String,
}

#[async_trait]
impl Command for DeleteSecret {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let m = kv_mount(tx, &self.mount).await?;
        let meta = tx
            .secret_for_update(m.id, &self.path)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("secret {}/{}", self.mount, self.path)))?;
        tx.delete_secret(meta.id).await?;
        Ok(())
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secret(&self.path)
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
) -> Result<WriteSummary, CoreError> {
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
async fn set_rotate_after(tx: &mut dyn SecretTx, mount: &Mount, path: &str, secs: u64) -> Result<(), CoreError> {
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
) -> Result<WriteSummary, CoreError> {
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
) -> Result<WriteSummary, CoreError> {
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
        return Ok(summary);
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
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

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
