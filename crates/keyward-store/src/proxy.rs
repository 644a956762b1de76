//! Credential-proxy route rows.
use async_trait::async_trait;
use keyward_core::{ProxyReads, ProxyRoute, ProxyTx, StoreError};

use crate::db::{args, Arg, Exec, Pool};
use crate::integrity::{Macs, PROXY_ROUTES};
use crate::rows::{self, ROUTE_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::Backend;

/// A route's row as written, with its MAC last.
fn route_args(macs: &Macs, route: &ProxyRoute) -> Result<Vec<Arg>, StoreError> {
    let values = args![route.name.clone(), json(route)];
    let mac = macs.seal(&PROXY_ROUTES, &[("name", &values[0]), ("route", &values[1])])?;
    Ok(values.into_iter().chain([mac]).collect())
}

async fn proxy_route(db: &mut dyn Exec, macs: &Macs, name: &str, lock: &str) -> Result<Option<ProxyRoute>, StoreError> {
    let sql = format!("SELECT {ROUTE_COLS} FROM proxy_routes WHERE name = $1{lock}");
    db.fetch_optional(&sql, args![name]).await?.map(|r| rows::proxy_route(macs, &r)).transpose()
}

#[async_trait]
impl ProxyReads for SqlStore {
    async fn proxy_route(&self, name: &str) -> Result<Option<ProxyRoute>, StoreError> {
        proxy_route(&mut Pool(&self.pool), &self.macs()?, name, "").await
    }

    async fn proxy_routes(&self) -> Result<Vec<ProxyRoute>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {ROUTE_COLS} FROM proxy_routes ORDER BY name");
        Pool(&self.pool).fetch_all(&sql, vec![]).await?.iter().map(|r| rows::proxy_route(&macs, r)).collect()
    }
}

#[async_trait]
impl ProxyTx for SqlTx {
    async fn proxy_route(&mut self, name: &str) -> Result<Option<ProxyRoute>, StoreError> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let macs = self.macs()?;
        proxy_route(&mut *self.db, &macs, name, lock).await
    }

    async fn put_proxy_route(&mut self, route: &ProxyRoute, replace: bool) -> Result<bool, StoreError> {
        let sql = match replace {
            true => "UPDATE proxy_routes SET route = $2, mac = $3 WHERE name = $1",
            false => "INSERT INTO proxy_routes (name, route, mac) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        };
        Ok(self.db.execute(sql, route_args(&self.macs()?, route)?).await? == 1)
    }

    async fn delete_proxy_route(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.db.execute("DELETE FROM proxy_routes WHERE name = $1", args![name]).await?;
        Ok(n > 0)
    }
}
