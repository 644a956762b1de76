//! Mounts: a kv mount is a project (tenant) with its own data keys; a transit mount holds named
//! transit keys. Deleting a mount crypto-shreds it: its wrapped data keys go in the same
//! transaction.
use async_trait::async_trait;
use keyward_crypto::{Key256, WrappedKeyDomain};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::command::{details, Command, Evict};
use crate::secrets::validate_mount_path;
use crate::{now_nanos, AuditEntry, CoreError, KeyManager, Keyward, Mount, MountKind, MountTx, StoreTx};

/// Creates a mount (and, for kv, its first data key).
#[derive(Debug)]
pub(crate) struct CreateMount {
    pub path: String,
    pub kind: MountKind,
    /// Default age (seconds) after which its fields are reported stale.
    pub rotate_after: Option<u64>,
    /// A kv mount that speaks KV version 1 on the Vault API.
    pub kv_v1: bool,
}

#[async_trait]
impl Command for CreateMount {
    type Reply = Mount;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<Mount, CoreError> {
        let mut config = serde_json::Map::new();
        if let Some(secs) = self.rotate_after {
            config.insert("rotate_after_secs".into(), secs.into());
        }
        if self.kv_v1 {
            // Unversioned: one version is kept, so tuning to version 2 is a change of settings.
            config.insert("version".into(), 1.into());
            config.insert("max_versions".into(), 1.into());
        }
        create_mount(tx, keys, &self.path, self.kind, Value::Object(config)).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Everything
    }
}

/// A deleted mount: its id, and how many wrapped keys went with it.
#[derive(Debug)]
pub(crate) struct DeletedMount {
    pub id: Uuid,
    pub keys_shredded: u64,
}

/// Deletes a mount and crypto-shreds it (its wrapped data keys go in the same transaction).
#[derive(Debug)]
pub(crate) struct DeleteMount {
    pub path: String,
}

#[async_trait]
impl Command for DeleteMount {
    type Reply = DeletedMount;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<DeletedMount, CoreError> {
        let path = &self.path;
        let m = tx.mount(path).await?.ok_or_else(|| CoreError::NotFound(format!("mount {path:?}")))?;
        let keys_shredded = tx.delete_mount(m.id).await?;
        Ok(DeletedMount { id: m.id, keys_shredded })
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Everything
    }

    fn audit_details(reply: &DeletedMount) -> Option<serde_json::Map<String, Value>> {
        details([("keys_shredded", reply.keys_shredded.into())])
    }

    fn committed(reply: &DeletedMount, keys: &KeyManager) {
        keys.evict_mount(reply.id);
    }
}

async fn create_mount(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    path: &str,
    kind: MountKind,
    config: Value,
) -> Result<Mount, CoreError> {
    validate_mount_path(path)?;
    if tx.mount(path).await?.is_some() {
        return Err(CoreError::Conflict(format!("mount {path:?} already exists")));
    }
    let mount = Mount { id: Uuid::new_v4(), path: path.to_owned(), kind, created_at: now_nanos(), config };
    tx.insert_mount(&mount).await?;
    if kind == MountKind::Kv {
        let dek = Key256::generate();
        let wrapped = keys.wrap(WrappedKeyDomain::Dek, mount.id, 1, &dek);
        tx.insert_wrapped_key(WrappedKeyDomain::Dek.label(), mount.id, 1, &wrapped).await?;
    }
    Ok(mount)
}

/// What tuning a mount changes (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountTuning {
    /// A description.
    pub description: Option<String>,
    /// Vault's `default_lease_ttl`, in seconds (shown; keyward's reads carry no leases).
    pub default_lease_ttl: Option<u64>,
    /// Vault's `max_lease_ttl`, in seconds.
    pub max_lease_ttl: Option<u64>,
    /// A kv mount's KV version (1 to 2 only).
    pub kv_version: Option<u8>,
}

/// Tunes a mount's settings in its (MAC'd) config.
#[derive(Debug)]
struct TuneMount {
    path: String,
    tuning: MountTuning,
}

#[async_trait]
impl Command for TuneMount {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let path = &self.path;
        let m = tx.mount(path).await?.ok_or_else(|| CoreError::NotFound(format!("mount {path:?}")))?;
        let mut config = match m.config.clone() {
            Value::Object(c) => c,
            _ => serde_json::Map::new(),
        };
        let t = &self.tuning;
        if let Some(d) = &t.description {
            config.insert("description".into(), d.clone().into());
        }
        for (key, v) in [("default_lease_ttl", t.default_lease_ttl), ("max_lease_ttl", t.max_lease_ttl)] {
            if let Some(v) = v {
                config.insert(key.into(), v.into());
            }
        }
        if let Some(version) = t.kv_version {
            if m.kind != MountKind::Kv {
                return Err(CoreError::InvalidInput("options.version applies to kv mounts only".into()));
            }
            let v1 = crate::KvConfig::of(&m).is_v1();
            match (version, v1) {
                (2, true) => {
                    config.insert("version".into(), 2.into());
                    // Version 1 kept one version; version 2 keeps the default history.
                    config.insert("max_versions".into(), 0.into());
                }
                (2, false) | (1, true) => {}
                (1, false) => {
                    return Err(CoreError::InvalidInput("a KV version 2 mount cannot go back to version 1".into()))
                }
                (other, _) => return Err(CoreError::InvalidInput(format!("options.version {other}: expected 1 or 2"))),
            }
        }
        tx.update_mount_config(m.id, &Value::Object(config)).await?;
        Ok(())
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Everything
    }
}

pub(crate) async fn kv_mount(tx: &mut dyn MountTx, name: &str) -> Result<Mount, CoreError> {
    match tx.mount(name).await? {
        Some(m) if m.kind == MountKind::Kv => Ok(m),
        Some(_) => Err(CoreError::InvalidInput(format!("mount {name:?} is not a kv mount"))),
        None => Err(CoreError::NotFound(format!("mount {name:?}"))),
    }
}

impl Keyward {
    /// All mounts.
    pub async fn list_mounts(&self) -> Result<Vec<Mount>, CoreError> {
        Ok(self.store.list_mounts().await?)
    }

    /// Creates a mount, with its audit entry; `rotate_after` (seconds) is its default age after
    /// which fields are reported stale.
    pub async fn create_mount(
        &self,
        path: &str,
        kind: MountKind,
        rotate_after: Option<u64>,
        audit: AuditEntry,
    ) -> Result<Mount, CoreError> {
        self.mounts.forget(path);
        self.writer.submit(CreateMount { path: path.to_owned(), kind, rotate_after, kv_v1: false }, audit).await
    }

    /// Creates a kv mount that speaks KV version 1 on the Vault API (Vault's `{"type": "kv"}`
    /// without a version): `<mount>/<path>`, unversioned, one version kept.
    pub async fn create_kv_v1_mount(&self, path: &str, audit: AuditEntry) -> Result<Mount, CoreError> {
        self.mounts.forget(path);
        let cmd = CreateMount { path: path.to_owned(), kind: MountKind::Kv, rotate_after: None, kv_v1: true };
        self.writer.submit(cmd, audit).await
    }

    /// Tunes a mount (`sys/mounts/<path>/tune`): description, lease TTLs, and a kv mount's KV
    /// version from 1 to 2 (never back).
    pub async fn tune_mount(&self, path: &str, tuning: MountTuning, audit: AuditEntry) -> Result<(), CoreError> {
        if let Some(d) = &tuning.description {
            if d.len() > 256 || d.chars().any(char::is_control) {
                return Err(CoreError::InvalidInput("description: at most 256 bytes, no control characters".into()));
            }
        }
        let reply = self.writer.submit(TuneMount { path: path.to_owned(), tuning }, audit).await;
        self.mounts.forget(path);
        reply
    }

    /// A kv mount whose history is kept (KV version 2): `what` is refused on a version 1 mount.
    pub(crate) async fn versioned_mount(&self, name: &str, what: &str) -> Result<Mount, CoreError> {
        let m = self.kv_mount(name).await?;
        if crate::KvConfig::of(&m).is_v1() {
            return Err(CoreError::InvalidInput(format!(
                "{what} is not available on mount {name:?}: it is a KV version 1 mount, which keeps no history \
                 (tune it to version 2: sys/mounts/{name}/tune with options.version 2)"
            )));
        }
        Ok(m)
    }

    /// Deletes a mount and crypto-shreds its data, with its audit entry in the same transaction;
    /// returns how many wrapped keys were deleted.
    pub async fn delete_mount(&self, path: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.mounts.forget(path);
        let deleted = self.writer.submit(DeleteMount { path: path.to_owned() }, audit).await;
        self.mounts.forget(path);
        Ok(deleted?.keys_shredded)
    }

    /// A mount that must be of `kind`. Read paths use a copy at most a second old (mounts change
    /// rarely; a write re-reads its mount inside its transaction, and a secret of a deleted
    /// mount is gone from the database at once, so a stale copy can only answer 404).
    pub(crate) async fn mount_of(&self, name: &str, kind: MountKind) -> Result<Mount, CoreError> {
        match self.find_mount(name).await? {
            Some(m) if m.kind == kind => Ok(m),
            Some(_) => Err(CoreError::InvalidInput(format!("mount {name:?} is not a {} mount", kind.as_str()))),
            None => Err(CoreError::NotFound(format!("mount {name:?}"))),
        }
    }

    /// A mount by name, whatever its engine (from the same short-lived cache as `mount_of`).
    pub async fn find_mount(&self, name: &str) -> Result<Option<Mount>, CoreError> {
        Ok(self.mounts.get(name, || self.store.mount(name)).await?)
    }

    pub(crate) async fn kv_mount(&self, name: &str) -> Result<Mount, CoreError> {
        self.mount_of(name, MountKind::Kv).await
    }
}
