//! Mount rows.
use async_trait::async_trait;
use keyward_core::{Mount, MountReads, MountTx, StoreError};
use uuid::Uuid;

use crate::db::{args, Exec, Pool};
use crate::rows;
use crate::sql_store::SqlStore;
use crate::sql_tx::{Seen, SqlTx};

pub(crate) async fn mount(db: &mut dyn Exec, path: &str) -> Result<Option<Mount>, StoreError> {
    let sql = "SELECT id, path, kind, created_at, config FROM mounts WHERE path = $1";
    db.fetch_optional(sql, args![path]).await?.as_ref().map(rows::mount).transpose()
}

#[async_trait]
impl MountReads for SqlStore {
    async fn list_mounts(&self) -> Result<Vec<Mount>, StoreError> {
        let sql = "SELECT id, path, kind, created_at, config FROM mounts ORDER BY path";
        Pool(&self.pool).fetch_all(sql, vec![]).await?.iter().map(rows::mount).collect()
    }

    async fn mount(&self, path: &str) -> Result<Option<Mount>, StoreError> {
        mount(&mut Pool(&self.pool), path).await
    }
}

#[async_trait]
impl MountTx for SqlTx {
    async fn mount(&mut self, path: &str) -> Result<Option<Mount>, StoreError> {
        if let Some(m) = self.seen.mounts.get(path) {
            return Ok(m.clone());
        }
        let m = mount(&mut *self.db, path).await?;
        self.seen.mounts.insert(path.to_owned(), m.clone());
        Ok(m)
    }

    async fn insert_mount(&mut self, m: &Mount) -> Result<(), StoreError> {
        self.seen.mounts.clear();
        self.db
            .execute(
                "INSERT INTO mounts (id, path, kind, created_at, config) VALUES ($1, $2, $3, $4, $5)",
                args![m.id.to_string(), m.path.clone(), m.kind.as_str(), m.created_at, m.config.to_string()],
            )
            .await?;
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
        self.db
            .execute("UPDATE mounts SET config = $2 WHERE id = $1", args![mount_id.to_string(), config.to_string()])
            .await?;
        Ok(())
    }
}
