//! Transit key rows.
use async_trait::async_trait;
use keyward_core::{StoreError, TransitKey, TransitReads, TransitTx};
use uuid::Uuid;

use crate::db::{args, db_err, Exec, Pool};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::{rows, Backend};

pub(crate) async fn transit_key(
    db: &mut dyn Exec,
    mount_id: Uuid,
    name: &str,
    lock: bool,
) -> Result<Option<TransitKey>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT id, mount_id, name, config FROM transit_keys WHERE mount_id = $1 AND name = $2{lock}");
    db.fetch_optional(&sql, args![mount_id.to_string(), name]).await?.as_ref().map(rows::transit_key).transpose()
}

#[async_trait]
impl TransitReads for SqlStore {
    async fn transit_key(&self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError> {
        transit_key(&mut Pool(&self.pool), mount_id, name, false).await
    }

    async fn transit_key_names(&self, mount_id: Uuid) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM transit_keys WHERE mount_id = $1 ORDER BY name")
            .bind(mount_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl TransitTx for SqlTx {
    async fn transit_key_for_update(&mut self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError> {
        let lock = self.backend == Backend::Postgres;
        transit_key(&mut *self.db, mount_id, name, lock).await
    }

    async fn insert_transit_key(&mut self, k: &TransitKey) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO transit_keys (id, mount_id, name, config) VALUES ($1, $2, $3, $4)",
                args![k.id.to_string(), k.mount_id.to_string(), k.name.clone(), json(&k.config)],
            )
            .await?;
        Ok(())
    }

    async fn update_transit_key(&mut self, k: &TransitKey) -> Result<(), StoreError> {
        self.db
            .execute("UPDATE transit_keys SET config = $2 WHERE id = $1", args![k.id.to_string(), json(&k.config)])
            .await?;
        Ok(())
    }

    async fn delete_transit_key(&mut self, id: Uuid) -> Result<u64, StoreError> {
        self.seen.newest.clear();
        let n = self.db.execute("DELETE FROM wrapped_keys WHERE owner = $1", args![id.to_string()]).await?;
        self.db.execute("DELETE FROM transit_keys WHERE id = $1", args![id.to_string()]).await?;
        Ok(n)
    }
}
