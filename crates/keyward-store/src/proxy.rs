//! Credential-proxy route rows.
use async_trait::async_trait;
use keyward_core::{ProxyReads, ProxyRoute, ProxyTx, StoreError};

use crate::db::{args, db_err};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::Backend;

#[async_trait]
impl ProxyReads for SqlStore {
    async fn proxy_route(&self, name: &str) -> Result<Option<ProxyRoute>, StoreError> {
        let row: Option<String> = sqlx::query_scalar("SELECT route FROM proxy_routes WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| serde_json::from_str(&r).map_err(|_| StoreError::Corrupt("proxy route".into()))).transpose()
    }

    async fn proxy_routes(&self) -> Result<Vec<ProxyRoute>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT route FROM proxy_routes ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| serde_json::from_str(r).map_err(|_| StoreError::Corrupt("proxy route".into()))).collect()
    }
}

#[async_trait]
impl ProxyTx for SqlTx {
    async fn proxy_route(&mut self, name: &str) -> Result<Option<ProxyRoute>, StoreError> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT route FROM proxy_routes WHERE name = $1{lock}");
        let row = self.db.fetch_optional(&sql, args![name]).await?;
        row.map(|r| {
            let text: String = r.get("route")?;
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("proxy route".into()))
        })
        .transpose()
    }

    async fn put_proxy_route(&mut self, route: &ProxyRoute, replace: bool) -> Result<bool, StoreError> {
        let sql = match replace {
            true => "UPDATE proxy_routes SET route = $2 WHERE name = $1",
            false => "INSERT INTO proxy_routes (name, route) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        };
        Ok(self.db.execute(sql, args![route.name.clone(), json(route)]).await? == 1)
    }

    async fn delete_proxy_route(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.db.execute("DELETE FROM proxy_routes WHERE name = $1", args![name]).await?;
        Ok(n > 0)
    }
}
