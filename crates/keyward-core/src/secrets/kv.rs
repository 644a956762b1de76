//! Vault KV v2 semantics on top of the secret store: whole-map writes, JSON merge patches,
//! soft-delete / undelete / destroy of versions, metadata writes, mount settings and listing.
use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::paths::validate_secret_path;
use super::write::{check_cas, current_map, is_live, open_version, write_map, PatchSecret};
use crate::engine::command::{Command, Evict};
use crate::mounts::kv_mount;
use crate::Keyward;
use crate::{
    now_nanos, AuditEntry, CoreError, KeyManager, KvConfig, MetadataUpdate, SecretData, SecretMeta, SecretPatch,
    SecretVersion, StoreTx, WriteSummary,
};

/// Applies a JSON merge patch (RFC 7396) to the live current version, as a new version.
#[derive(Debug)]
struct MergePatch {
    mount: String,
    path: String,
    /// `null` removes a key, objects merge recursively.
    patch: SecretData,
    cas: Option<u64>,
    /// Whether the writer may `read` (else it learns nothing about equality).
    may_read: bool,
    actor: String,
}

#[async_trait]
impl Command for MergePatch {
    type Reply = WriteSummary;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<WriteSummary, CoreError> {
        merge_patch(tx, keys, &self.mount, &self.path, &self.patch, self.cas, self.may_read, &self.actor).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secret(&self.path)
    }
}

/// Soft-deletes, undeletes or destroys versions of a secret.
#[derive(Debug)]
struct ChangeVersions {
    mount: String,
    path: String,
    action: VersionAction,
    /// The versions (empty = the current one, for a soft delete); unknown ones are ignored.
    versions: Vec<u64>,
}

#[async_trait]
impl Command for ChangeVersions {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        change_versions(tx, &self.mount, &self.path, self.action, &self.versions).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secret(&self.path)
    }
}

/// Changes a secret's metadata, creating it (with no version) if it does not exist.
#[derive(Debug)]
struct WriteMetadata {
    mount: String,
    path: String,
    update: MetadataUpdate,
}

#[async_trait]
impl Command for WriteMetadata {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        write_metadata(tx, &self.mount, &self.path, &self.update).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secret(&self.path)
    }
}

/// Changes a kv mount's engine settings.
#[derive(Debug)]
struct ConfigureKv {
    mount: String,
    config: KvConfig,
}

#[async_trait]
impl Command for ConfigureKv {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        configure(tx, &self.mount, self.config).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Secrets
    }
}

/// Custom metadata limits (as Vault): keys, key length, value length.
const MAX_CUSTOM_KEYS: usize = 64;
const MAX_CUSTOM_KEY_LEN: usize = 128;
const MAX_CUSTOM_VALUE_LEN: usize = 512;
/// Longest `delete_version_after` and most `max_versions` accepted.
const MAX_VERSIONS_LIMIT: u32 = 10_000;

/// What to do to versions of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionAction {
    /// Soft-delete: hide the version, keep its blob.
    Delete,
    /// Undo a soft delete (destroyed versions stay destroyed).
    Undelete,
    /// Overwrite the blob with NULL, for good.
    Destroy,
}

/// One version of a secret as read through the KV v2 API.
#[derive(Debug)]
pub struct KvRead {
    /// The secret's metadata.
    pub meta: SecretMeta,
    /// The version (its blob removed).
    pub version: SecretVersion,
    /// The plaintext, unless the version is soft-deleted or destroyed.
    pub data: Option<SecretData>,
}

/// RFC 7396 JSON merge patch: `null` removes, objects merge recursively, anything else replaces.
pub fn merge_patch_value(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        merge_patch_map(t, p);
    }
}

fn merge_patch_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            merge_patch_value(target.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn merge_patch(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mount_name: &str,
    path: &str,
    patch: &SecretData,
    cas: Option<u64>,
    may_read: bool,
    actor: &str,
) -> Result<WriteSummary, CoreError> {
    validate_secret_path(path)?;
    let mount = kv_mount(tx, mount_name).await?;
    let meta = tx.secret_for_update(mount.id, path).await?;
    let live = match &meta {
        Some(m) if m.current_version > 0 => {
            tx.version(m.id, m.current_version).await?.is_some_and(|v| is_live(&v, now_nanos()))
        }
        _ => false,
    };
    if !live {
        return Err(CoreError::NotFound(format!("secret {mount_name}/{path} (no live current version to patch)")));
    }
    check_cas(meta.as_ref(), cas, KvConfig::of(&mount).cas_required)?;
    let (base, base_fv) = current_map(tx, keys, &mount, meta.as_ref()).await?;
    let mut next = base.clone();
    merge_patch_map(next.fields_mut(), patch.fields());
    let touched: std::collections::BTreeSet<String> =
        patch.fields().iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.clone()).collect();
    let blind = (!may_read).then_some(&touched);
    write_map(tx, keys, &mount, meta, path, (&base, &base_fv), next, actor, true, blind).await
}

async fn change_versions(
    tx: &mut dyn StoreTx,
    mount_name: &str,
    path: &str,
    action: VersionAction,
    versions: &[u64],
) -> Result<(), CoreError> {
    validate_secret_path(path)?;
    let mount = kv_mount(tx, mount_name).await?;
    // As Vault: a path or version that does not exist is not an error.
    let Some(meta) = tx.secret_for_update(mount.id, path).await? else { return Ok(()) };
    let targets: Vec<u64> = if versions.is_empty() { vec![meta.current_version] } else { versions.to_vec() };
    let now = now_nanos();
    for v in targets.into_iter().filter(|v| (meta.oldest_version..=meta.current_version).contains(v)) {
        let Some(row) = tx.version(meta.id, v).await? else { continue };
        match action {
            VersionAction::Delete if is_live(&row, now) => tx.set_deletion_time(meta.id, v, Some(now)).await?,
            VersionAction::Undelete if !row.destroyed && row.deletion_time.is_some() => {
                tx.set_deletion_time(meta.id, v, None).await?
            }
            VersionAction::Destroy if !row.destroyed => tx.destroy_version(meta.id, v).await?,
            _ => {}
        }
    }
    Ok(())
}

fn check_custom(custom: &BTreeMap<String, String>) -> Result<(), CoreError> {
    if custom.len() > MAX_CUSTOM_KEYS {
        return Err(CoreError::InvalidInput(format!("custom_metadata may hold at most {MAX_CUSTOM_KEYS} keys")));
    }
    for (k, v) in custom {
        if k.is_empty() || k.len() > MAX_CUSTOM_KEY_LEN || k.chars().any(char::is_control) {
            return Err(CoreError::InvalidInput(format!(
                "custom_metadata keys are 1-{MAX_CUSTOM_KEY_LEN} bytes without control characters"
            )));
        }
        if v.len() > MAX_CUSTOM_VALUE_LEN {
            return Err(CoreError::InvalidInput(format!(
                "custom_metadata value of {k:?} is longer than {MAX_CUSTOM_VALUE_LEN} bytes"
            )));
        }
    }
    Ok(())
}

fn check_settings(max_versions: Option<u32>, delete_after: Option<i64>) -> Result<(), CoreError> {
    if max_versions.is_some_and(|m| m > MAX_VERSIONS_LIMIT) {
        return Err(CoreError::InvalidInput(format!("max_versions may be at most {MAX_VERSIONS_LIMIT}")));
    }
    if delete_after.is_some_and(|d| d < 0) {
        return Err(CoreError::InvalidInput("delete_version_after may not be negative".into()));
    }
    Ok(())
}

async fn write_metadata(
    tx: &mut dyn StoreTx,
    mount_name: &str,
    path: &str,
    u: &MetadataUpdate,
) -> Result<(), CoreError> {
    validate_secret_path(path)?;
    check_settings(u.max_versions, u.delete_version_after_secs)?;
    let mount = kv_mount(tx, mount_name).await?;
    let existing = tx.secret_for_update(mount.id, path).await?;
    // Decided under the row lock, so create-vs-update cannot race.
    let is_new = existing.is_none();
    match (is_new, u.may_create, u.may_change) {
        (true, false, _) => {
            return Err(CoreError::Forbidden(format!("\"create\" on \"{mount_name}/{path}\" is not granted")))
        }
        (false, _, false) => {
            return Err(CoreError::Forbidden(format!("\"update\" on \"{mount_name}/{path}\" is not granted")))
        }
        _ => {}
    }
    let now = now_nanos();
    let mut meta = existing.unwrap_or_else(|| SecretMeta::new(mount.id, path, now));
    if let Some(m) = u.max_versions {
        meta.max_versions = m;
    }
    if let Some(c) = u.cas_required {
        meta.cas_required = c;
    }
    if let Some(d) = u.delete_version_after_secs {
        meta.delete_version_after_secs = d;
    }
    if let Some(c) = &u.custom_metadata {
        meta.custom_metadata = c.clone();
    }
    if let Some(p) = &u.custom_metadata_patch {
        for (k, v) in p {
            match v {
                Some(v) => meta.custom_metadata.insert(k.clone(), v.clone()),
                None => meta.custom_metadata.remove(k),
            };
        }
    }
    check_custom(&meta.custom_metadata)?;
    meta.updated_at = now;
    if is_new {
        tx.insert_secret(&meta).await?;
    } else {
        tx.update_secret(&meta).await?;
    }
    Ok(())
}

async fn configure(tx: &mut dyn StoreTx, mount_name: &str, config: KvConfig) -> Result<(), CoreError> {
    check_settings(Some(config.max_versions), Some(config.delete_version_after_secs))?;
    let mount = kv_mount(tx, mount_name).await?;
    let mut merged = match mount.config {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Value::Object(c) = serde_json::to_value(config).map_err(|e| CoreError::InvalidInput(e.to_string()))? {
        merged.extend(c);
    }
    tx.update_mount_config(mount.id, &Value::Object(merged)).await?;
    Ok(())
}

impl Keyward {
    /// Writes `data` as the whole new version (Vault `data` write); audited in the same
    /// transaction. `may_create`/`may_change` are decided under the row lock; a writer that may
    /// not `read` (`may_read`) learns nothing about equality with the stored values.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_write(
        &self,
        mount: &str,
        path: &str,
        data: SecretData,
        cas: Option<u64>,
        (may_create, may_change, may_read): (bool, bool, bool),
        actor: &str,
        audit: AuditEntry,
    ) -> Result<WriteSummary, CoreError> {
        let patch =
            SecretPatch { set: data, cas, may_create, may_change, may_read, replace: true, ..Default::default() };
        let cmd = PatchSecret { mount: mount.to_owned(), path: path.to_owned(), patch, actor: actor.to_owned() };
        self.writer.submit(cmd, audit).await
    }

    /// Applies a JSON merge patch to the live current version, as a new version (`may_read`: see
    /// [`Self::kv_write`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_merge_patch(
        &self,
        mount: &str,
        path: &str,
        patch: SecretData,
        cas: Option<u64>,
        may_read: bool,
        actor: &str,
        audit: AuditEntry,
    ) -> Result<WriteSummary, CoreError> {
        let (mount, path, actor) = (mount.to_owned(), path.to_owned(), actor.to_owned());
        self.writer.submit(MergePatch { mount, path, patch, cas, may_read, actor }, audit).await
    }

    /// Soft-deletes, undeletes or destroys versions; audited in the same transaction.
    pub async fn kv_versions(
        &self,
        mount: &str,
        path: &str,
        action: VersionAction,
        versions: Vec<u64>,
        audit: AuditEntry,
    ) -> Result<(), CoreError> {
        let cmd = ChangeVersions { mount: mount.to_owned(), path: path.to_owned(), action, versions };
        self.writer.submit(cmd, audit).await
    }

    /// Changes a secret's metadata (creating it without a version if needed).
    pub async fn kv_write_metadata(
        &self,
        mount: &str,
        path: &str,
        update: MetadataUpdate,
        audit: AuditEntry,
    ) -> Result<(), CoreError> {
        self.writer.submit(WriteMetadata { mount: mount.to_owned(), path: path.to_owned(), update }, audit).await
    }

    /// Changes a kv mount's engine settings.
    pub async fn kv_configure(&self, mount: &str, config: KvConfig, audit: AuditEntry) -> Result<(), CoreError> {
        let reply = self.writer.submit(ConfigureKv { mount: mount.to_owned(), config }, audit).await;
        self.mounts.forget(mount);
        reply
    }

    /// A kv mount's engine settings.
    pub async fn kv_config(&self, mount: &str) -> Result<KvConfig, CoreError> {
        Ok(KvConfig::of(&self.kv_mount(mount).await?))
    }

    /// A secret's metadata and all its stored versions (without blobs).
    pub async fn kv_metadata(&self, mount: &str, path: &str) -> Result<(SecretMeta, Vec<SecretVersion>), CoreError> {
        let m = self.kv_mount(mount).await?;
        let meta = self.secret_meta(&m, path).await?;
        let versions = self.store.versions(meta.id).await?;
        Ok((meta, versions))
    }

    /// A secret's metadata and one version's record (no blob, nothing decrypted), in one query.
    pub async fn kv_version_meta(
        &self,
        mount: &str,
        path: &str,
        version: u64,
    ) -> Result<(SecretMeta, SecretVersion), CoreError> {
        let version = super::write::version_number(version)?;
        let m = self.kv_mount(mount).await?;
        match self.store.secret_version(m.id, path, Some(version)).await? {
            Some((meta, Some(mut v))) => {
                v.blob = None;
                Ok((meta, v))
            }
            _ => Err(CoreError::NotFound(format!("version {version} of {mount}/{path}"))),
        }
    }

    /// Reads a version (the current one by default). A soft-deleted or destroyed version comes
    /// back without data; a version that does not exist is `NotFound`.
    pub async fn kv_read(&self, mount: &str, path: &str, version: Option<u64>) -> Result<KvRead, CoreError> {
        let version = version.map(super::write::version_number).transpose()?;
        let m = self.kv_mount(mount).await?;
        let (meta, row) = self
            .secret_version(&m, path, version.filter(|v| *v > 0))
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("secret {mount}/{path}")))?;
        let v = version.filter(|v| *v > 0).unwrap_or(meta.current_version);
        let mut row = row.ok_or_else(|| CoreError::NotFound(format!("version {v} of {mount}/{path}")))?;
        let data = if is_live(&row, now_nanos()) {
            let blob = row.blob.as_deref().unwrap_or_default();
            let what = || CoreError::Integrity(format!("{mount}/{path} version {v}"));
            let dek_version = keyward_crypto::blob_dek_version(blob).map_err(|_| what())?;
            let dek = self.keys.dek(self.store.as_ref(), m.id, dek_version).await?;
            Some(open_version(&dek, &m, &meta, &row)?)
        } else {
            None
        };
        row.blob = None;
        Ok(KvRead { meta, version: row, data })
    }

    /// Every secret path of a kv mount under `prefix` (which is empty or ends with `/`), in order.
    pub async fn kv_paths(&self, mount: &str, prefix: &str) -> Result<Vec<String>, CoreError> {
        let m = self.kv_mount(mount).await?;
        let mut out: Vec<String> = Vec::new();
        loop {
            let after = out.last().cloned().unwrap_or_default();
            let page = self.store.paths_with_prefix(m.id, prefix, &after, 1000).await?;
            let done = page.len() < 1000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1});
        merge_patch_value(&mut t, &json!({"a": "z", "c": {"f": null, "n": [1]}, "new": {"x": null, "y": 2}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e", "n": [1]}, "keep": 1, "new": {"y": 2}}));
        let mut t = json!("scalar");
        merge_patch_value(&mut t, &json!({"a": null, "b": 1}));
        assert_eq!(t, json!({"b": 1}));
    }

    #[test]
    fn effective_settings() {
        let meta = SecretMeta {
            id: Uuid::nil(),
            mount_id: Uuid::nil(),
            path: "p".into(),
            current_version: 0,
            oldest_version: 0,
            max_versions: 0,
            cas_required: false,
            custom_metadata: BTreeMap::new(),
            created_at: 0,
            updated_at: 0,
            delete_version_after_secs: 0,
        };
        let kv = KvConfig::default();
        assert_eq!(kv.effective_max_versions(&meta), 10);
        let kv = KvConfig { max_versions: 3, delete_version_after_secs: 60, cas_required: false, version: 2 };
        assert_eq!(kv.effective_max_versions(&meta), 3);
        assert_eq!(kv.effective_delete_after(&meta), 60);
        let meta = SecretMeta { max_versions: 5, delete_version_after_secs: 30, ..meta };
        assert_eq!(kv.effective_max_versions(&meta), 5);
        assert_eq!(kv.effective_delete_after(&meta), 30);
        assert_eq!(KvConfig::default().effective_delete_after(&meta), 30);
    }
}
