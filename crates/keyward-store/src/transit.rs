//! Transit key rows (the key versions themselves are wrapped keys).
use async_trait::async_trait;
use keyward_core::{StoreError, TransitKey, TransitReads, TransitTx};
use uuid::Uuid;

use crate::db::{args, Arg, Exec, Pool};
use crate::integrity::{Macs, TRANSIT_KEYS};
use crate::rows::{self, TRANSIT_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::Backend;

pub(crate) async fn transit_key(
    db: &mut dyn Exec,
    macs: &Macs,
    mount_id: Uuid,
    name: &str,
    lock: bool,
) -> Result<Option<TransitKey>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {TRANSIT_COLS} FROM transit_keys WHERE mount_id = $1 AND name = $2{lock}");
    db.fetch_optional(&sql, args![mount_id.to_string(), name]).await?.map(|r| rows::transit_key(macs, &r)).transpose()
}

/// A transit key's row as written, with its MAC last.
fn transit_args(macs: &Macs, k: &TransitKey) -> Result<Vec<Arg>, StoreError> {
    let values = args![k.id.to_string(), k.mount_id.to_string(), k.name.clone(), json(&k.config)];
    let names = ["id", "mount_id", "name", "config"];
    let mac = macs.seal(&TRANSIT_KEYS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

#[async_trait]
impl TransitReads for SqlStore {
    async fn transit_key(&self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError> {
        transit_key(&mut Pool(&self.pool), &self.macs()?, mount_id, name, false).await
    }

    async fn transit_key_names(&self, mount_id: Uuid) -> Result<Vec<String>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {TRANSIT_COLS} FROM transit_keys WHERE mount_id = $1 ORDER BY name");
        let rows = Pool(&self.pool).fetch_all(&sql, args![mount_id.to_string()]).await?;
        rows.iter().map(|r| rows::transit_key(&macs, r).map(|k| k.name)).collect()
    }
}

#[async_trait]
impl TransitTx for SqlTx {
    async fn transit_key_for_update(&mut self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError> {
        let lock = self.backend == Backend::Postgres;
        let macs = self.macs()?;
        transit_key(&mut *self.db, &macs, mount_id, name, lock).await
    }

    async fn insert_transit_key(&mut self, k: &TransitKey) -> Result<(), StoreError> {
        let sql = "INSERT INTO transit_keys (id, mount_id, name, config, mac) VALUES ($1, $2, $3, $4, $5)";
        self.db.execute(sql, transit_args(&self.macs()?, k)?).await?;
        Ok(())
    }

    async fn update_transit_key(&mut self, k: &TransitKey) -> Result<(), StoreError> {
        let sql = "UPDATE transit_keys SET mount_id = $2, name = $3, config = $4, mac = $5 WHERE id = $1";
        self.db.execute(sql, transit_args(&self.macs()?, k)?).await?;
        Ok(())
    }

    async fn delete_transit_key(&mut self, id: Uuid) -> Result<u64, StoreError> {
        self.seen.newest.clear();
        let n = self.db.execute("DELETE FROM wrapped_keys WHERE owner = $1", args![id.to_string()]).await?;
        self.db.execute("DELETE FROM transit_keys WHERE id = $1", args![id.to_string()]).await?;
        Ok(n)
    }
}
