//! Policy rows.
use async_trait::async_trait;
use keyward_core::{Policy, PolicyReads, PolicyTx, StoreError};

use crate::db::{args, db_err, Arg, Exec, Pool};
use crate::rows;
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};

#[async_trait]
impl PolicyReads for SqlStore {
    async fn policies(&self, names: &[String]) -> Result<Vec<Policy>, StoreError> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        // One query for all of a token's policies.
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT name, rules, hcl FROM policies WHERE name IN ({})", marks.join(", "));
        let names = names.iter().map(|n| Arg::from(n.as_str())).collect();
        Pool(&self.pool).fetch_all(&sql, names).await?.iter().map(rows::policy).collect()
    }

    async fn policy_names(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM policies ORDER BY name").fetch_all(&self.pool).await.map_err(db_err)
    }
}

#[async_trait]
impl PolicyTx for SqlTx {
    async fn put_policy(&mut self, p: &Policy) -> Result<(), StoreError> {
        let now = keyward_core::now_nanos();
        let sql = "INSERT INTO policies (name, rules, created_at, updated_at, hcl) VALUES ($1, $2, $3, $3, $4) ON \
                   CONFLICT (name) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at, hcl = \
                   excluded.hcl";
        self.db.execute(sql, args![p.name.clone(), json(&p.rules), now, p.hcl.clone()]).await?;
        Ok(())
    }

    async fn delete_policy(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.db.execute("DELETE FROM policies WHERE name = $1", args![name]).await?;
        Ok(n > 0)
    }
}
