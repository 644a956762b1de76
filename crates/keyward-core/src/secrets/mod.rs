//! Secrets: KV secrets and their versions — each version the whole map, sealed under its mount's
//! data key — read, written, listed and compared; Vault's KV v2 semantics in `kv`.
mod data;
mod kv;
mod paths;
mod write;

use std::sync::Arc;

use keyward_crypto::blob_dek_version;

pub use data::SecretData;
pub use kv::{merge_patch_value, KvRead, VersionAction};
pub use paths::{validate_field_name, validate_mount_path, validate_secret_path, MAX_NAME_LEN};
pub use write::SecretPatch;
pub(crate) use write::{is_live, open_version, version_number};
use write::{DeleteSecret, PatchSecret, RollbackSecret};

use crate::{
    AuditEntry, CoreError, Keyward, Mount, SecretMeta, SecretSummary, SecretVersion, VersionInfo, WriteSummary,
};

/// A decrypted secret version with its metadata.
#[derive(Debug)]
pub struct SecretRead {
    /// The mount.
    pub mount: Mount,
    /// The secret's metadata.
    pub meta: SecretMeta,
    /// The version read (its blob removed).
    pub version: SecretVersion,
    /// The plaintext map.
    pub data: SecretData,
}

impl Keyward {
    /// Applies a patch as one new version; its audit entry commits in the same transaction.
    pub async fn patch_secret(
        &self,
        mount: &str,
        path: &str,
        patch: SecretPatch,
        actor: &str,
        audit: AuditEntry,
    ) -> Result<WriteSummary, CoreError> {
        let cmd = PatchSecret { mount: mount.to_owned(), path: path.to_owned(), patch, actor: actor.to_owned() };
        self.writer.submit(cmd, audit).await
    }

    /// Writes a new version equal to `version`, audited in the same transaction. A writer that
    /// may not `read` learns nothing about whether it equals the current one (`may_read`).
    #[allow(clippy::too_many_arguments)]
    pub async fn rollback(
        &self,
        mount: &str,
        path: &str,
        version: u64,
        may_read: bool,
        actor: &str,
        audit: AuditEntry,
    ) -> Result<WriteSummary, CoreError> {
        let version = version_number(version)?;
        self.versioned_mount(mount, "rollback").await?;
        let cmd = RollbackSecret {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
            may_read,
            actor: actor.to_owned(),
        };
        self.writer.submit(cmd, audit).await
    }

    /// Deletes a secret with all its versions, audited in the same transaction.
    pub async fn delete_secret(&self, mount: &str, path: &str, audit: AuditEntry) -> Result<(), CoreError> {
        self.writer.submit(DeleteSecret { mount: mount.to_owned(), path: path.to_owned() }, audit).await
    }

    pub(crate) async fn secret_meta(&self, mount: &Mount, path: &str) -> Result<SecretMeta, CoreError> {
        self.store
            .secret(mount.id, path)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("secret {}/{path}", mount.path)))
    }

    /// A secret and one of its versions (the current one when `version` is `None`), from memory
    /// when the read cache holds it.
    pub(crate) async fn secret_version(
        &self,
        mount: &Mount,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<(SecretMeta, Option<SecretVersion>)>, CoreError> {
        let Some(cache) = self.cache.as_ref().filter(|_| version.is_none()) else {
            return Ok(self.store.secret_version(mount.id, path, version).await?);
        };
        if let Some(hit) = cache.current(mount.id, path) {
            return Ok(Some((hit.0.clone(), Some(hit.1.clone()))));
        }
        let generation = cache.secrets_generation();
        let found = self.store.secret_version(mount.id, path, None).await?;
        if let Some((meta, Some(v))) = &found {
            // Only what opens is kept: a damaged row keeps failing until it is repaired.
            if self.opens(mount, meta, v).await {
                cache.put_current(generation, mount.id, path, Arc::new((meta.clone(), v.clone())));
            }
        }
        Ok(found)
    }

    async fn opens(&self, mount: &Mount, meta: &SecretMeta, row: &SecretVersion) -> bool {
        let Some(blob) = row.blob.as_deref() else { return true };
        let Ok(dek_version) = blob_dek_version(blob) else { return false };
        match self.keys.dek(self.store.as_ref(), mount.id, dek_version).await {
            Ok(dek) => open_version(&dek, mount, meta, row).is_ok(),
            Err(_) => false,
        }
    }

    /// Reads and decrypts a version (the current one by default).
    pub async fn read_secret(&self, mount: &str, path: &str, version: Option<u64>) -> Result<SecretRead, CoreError> {
        let version = version.map(version_number).transpose()?;
        let mount = self.kv_mount(mount).await?;
        let (meta, row) = self
            .secret_version(&mount, path, version.filter(|v| *v > 0))
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("secret {}/{path}", mount.path)))?;
        let v = version.filter(|v| *v > 0).unwrap_or(meta.current_version);
        let what = format!("version {v} of {}/{path}", mount.path);
        let mut row = row.ok_or_else(|| CoreError::NotFound(what.clone()))?;
        if row.destroyed || row.blob.is_none() {
            return Err(CoreError::NotFound(format!("{what} (destroyed)")));
        }
        if !is_live(&row, crate::now_nanos()) {
            return Err(CoreError::NotFound(format!("{what} (deleted)")));
        }
        let blob = row.blob.as_deref().unwrap_or_default();
        let dek_version = blob_dek_version(blob).map_err(|_| CoreError::Integrity(what.clone()))?;
        let dek = self.keys.dek(self.store.as_ref(), mount.id, dek_version).await?;
        let data = open_version(&dek, &mount, &meta, &row)?;
        row.blob = None;
        Ok(SecretRead { mount, meta, version: row, data })
    }

    /// Compares two secrets' current versions inside the server: only names come back.
    pub async fn diff_secrets(&self, mount: &str, a: &str, b: &str) -> Result<crate::SecretDiff, CoreError> {
        self.versioned_mount(mount, "diff").await?;
        let left = self.read_secret(mount, a, None).await?;
        let right = self.read_secret(mount, b, None).await?;
        let (l, r) = (left.data.fields(), right.data.fields());
        let mut d = crate::SecretDiff::default();
        for (k, v) in l {
            match r.get(k) {
                None => d.only_in_a.push(k.clone()),
                Some(w) if w == v => d.same.push(k.clone()),
                Some(_) => d.different.push(k.clone()),
            }
        }
        d.only_in_b = r.keys().filter(|k| !l.contains_key(*k)).cloned().collect();
        Ok(d)
    }

    /// A page of a mount's secrets (environments), without decrypting anything.
    pub async fn list_secrets(
        &self,
        mount: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretSummary>, CoreError> {
        let mount = self.kv_mount(mount).await?;
        Ok(self.store.list_secrets(mount.id, after, limit).await?)
    }

    /// The stored versions of a secret, oldest first.
    pub async fn history(&self, mount: &str, path: &str) -> Result<Vec<VersionInfo>, CoreError> {
        let mount = self.versioned_mount(mount, "history").await?;
        let meta = self.secret_meta(&mount, path).await?;
        let versions = self.store.versions(meta.id).await?;
        Ok(versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                created_at: v.created_at,
                created_by: v.created_by,
                deletion_time: v.deletion_time,
                destroyed: v.destroyed,
                fields: v.field_versions.into_keys().collect(),
            })
            .collect())
    }
}
