//! Key lifecycle: status, data-key rotation, rewrapping under the active master key, pruning.
use crate::service::unexpected;
use crate::{CoreError, KekUsage, KeyStatus, Keyward, WriteOp, WriteReply};

impl Keyward {
    /// Master keys (configured or still in use) and data-key versions, with their users.
    pub async fn key_status(&self) -> Result<KeyStatus, CoreError> {
        let usage = self.store.kek_usage().await?;
        let keyring = self.keys.keyring();
        let active = keyring.active().tag.as_str();
        let mut tags: Vec<String> = keyring.keks().iter().map(|k| k.tag.as_str().to_owned()).collect();
        tags.extend(usage.iter().map(|(t, _)| t.clone()).filter(|t| keyring.get(t).is_none()));
        let keks = tags
            .into_iter()
            .map(|tag| {
                let wrapped_keys = usage.iter().find(|(t, _)| *t == tag).map_or(0, |(_, n)| *n);
                let configured = keyring.get(&tag).is_some();
                let is_active = tag == active;
                KekUsage {
                    retirable: configured && !is_active && wrapped_keys == 0,
                    tag,
                    configured,
                    active: is_active,
                    wrapped_keys,
                }
            })
            .collect();
        Ok(KeyStatus { keks, deks: self.store.dek_usage().await? })
    }

    /// Adds a data-key version to a mount; returns it.
    pub async fn rotate_dek(&self, mount: &str) -> Result<u32, CoreError> {
        match self.writer.submit(WriteOp::RotateDek { mount: mount.to_owned() }).await? {
            WriteReply::DekRotated(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Re-wraps every key held under an older master key with the active one; returns how many.
    pub async fn rewrap(&self) -> Result<u64, CoreError> {
        match self.writer.submit(WriteOp::Rewrap).await? {
            WriteReply::Rewrapped(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a mount's older data-key versions that no blob uses: `(deleted, kept)`.
    pub async fn prune_deks(&self, mount: &str) -> Result<(Vec<u32>, Vec<u32>), CoreError> {
        match self.writer.submit(WriteOp::PruneDeks { mount: mount.to_owned() }).await? {
            WriteReply::Pruned { deleted, kept } => Ok((deleted, kept)),
            other => Err(unexpected(&other)),
        }
    }
}
