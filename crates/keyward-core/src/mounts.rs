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
}

#[async_trait]
impl Command for CreateMount {
    type Reply = Mount;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<Mount, CoreError> {
        create_mount(tx, keys, &self.path, self.kind, self.rotate_after).await
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
    rotate_after: Option<u64>,
) -> Result<Mount, CoreError> {
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
    Ok(mount)
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
        self.writer.submit(CreateMount { path: path.to_owned(), kind, rotate_after }, audit).await
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
