//! Mount rows.
use async_trait::async_trait;
use keyward_core::{Mount, MountReads, MountTx, StoreError};
use uuid::Uuid;

use crate::db::{args, Arg, Exec, Pool};
use crate::integrity::{Macs, MOUNTS};
use crate::rows::{self, MOUNT_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::{Seen, SqlTx};

pub(crate) async fn mount(db: &mut dyn Exec, macs: &Macs, path: &str) -> Result<Option<Mount>, StoreError> {
    let sql = format!("SELECT {MOUNT_COLS} FROM mounts WHERE path = $1");
    db.fetch_optional(&sql, args![path]).await?.map(|r| rows::mount(macs, &r)).transpose()
}

/// A mount's row as written: its values by column, with their MAC.
fn mount_args(macs: &Macs, m: &Mount) -> Result<Vec<Arg>, StoreError> {
    let values = args![m.id.to_string(), m.path.clone(), m.kind.as_str(), m.created_at, m.config.to_string()];
    let names = ["id", "path", "kind", "created_at", "config"];
    let mac = macs.seal(&MOUNTS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

#[async_trait]
impl MountReads for SqlStore {
    async fn list_mounts(&self) -> Result<Vec<Mount>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {MOUNT_COLS} FROM mounts ORDER BY path");
        Pool(&self.pool).fetch_all(&sql, vec![]).await?.iter().map(|r| rows::mount(&macs, r)).collect()
    }

    async fn mount(&self, path: &str) -> Result<Option<Mount>, StoreError> {
        mount(&mut Pool(&self.pool), &self.macs()?, path).await
    }
}

#[async_trait]
impl MountTx for SqlTx {
    async fn mount(&mut self, path: &str) -> Result<Option<Mount>, StoreError> {
        if let Some(m) = self.seen.mounts.get(path) {
            return Ok(m.clone());
        }
        let macs = self.macs()?;
        let m = mount(&mut *self.db, &macs, path).await?;
        self.seen.mounts.insert(path.to_owned(), m.clone());
        Ok(m)
    }

    async fn insert_mount(&mut self, m: &Mount) -> Result<(), StoreError> {
        self.seen.mounts.clear();
        let sql = "INSERT INTO mounts (id, path, kind, created_at, config, mac) VALUES ($1, $2, $3, $4, $5, $6)";
        self.db.execute(sql, mount_args(&self.macs()?, m)?).await?;
        Ok(())
    }

    async fn delete_mount(&mut self, mount_id: Uuid) -> Result<u64, StoreError> {
        self.seen = Seen::default();
        let id = mount_id.to_string();
        self.db
            .execute(
                "DELETE FROM secret_versions WHERE secret_id IN (SELECT id FROM secrets WHERE mount_id = $1)",
                args![id.clone()],
            )
            .await?;
        self.db.execute("DELETE FROM secrets WHERE mount_id = $1", args![id.clone()]).await?;
        // Responses wrapped from the mount go with it: a hand-over must not outlive the data.
        self.db.execute("DELETE FROM wrapped_responses WHERE mount_id = $1", args![id.clone()]).await?;
        let mut shredded = self.db.execute("DELETE FROM wrapped_keys WHERE owner = $1", args![id.clone()]).await?;
        shredded += self
            .db
            .execute(
                "DELETE FROM wrapped_keys WHERE owner IN (SELECT id FROM transit_keys WHERE mount_id = $1)",
                args![id.clone()],
            )
            .await?;
        self.db.execute("DELETE FROM transit_keys WHERE mount_id = $1", args![id.clone()]).await?;
        self.db.execute("DELETE FROM mounts WHERE id = $1", args![id]).await?;
        Ok(shredded)
    }

    async fn update_mount_config(&mut self, mount_id: Uuid, config: &serde_json::Value) -> Result<(), StoreError> {
        self.seen.mounts.clear();
        let macs = self.macs()?;
        let sql = format!("SELECT {MOUNT_COLS} FROM mounts WHERE id = $1");
        let row = self.db.fetch_optional(&sql, args![mount_id.to_string()]).await?;
        let mut m = row.map(|r| rows::mount(&macs, &r)).transpose()?.ok_or(StoreError::Conflict)?;
        m.config = config.clone();
        let sql = "UPDATE mounts SET path = $2, kind = $3, created_at = $4, config = $5, mac = $6 WHERE id = $1";
        self.db.execute(sql, mount_args(&macs, &m)?).await?;
        Ok(())
    }
}
