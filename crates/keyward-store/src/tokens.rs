//! Token rows.
use async_trait::async_trait;
use keyward_core::{Nanos, StoreError, TokenReads, TokenRecord, TokenTx};

use crate::db::{args, column, Exec, Pool};
use crate::rows::{to_i64, TOKEN_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::{rows, Backend};

/// Ancestors a token chain is followed through (a deeper chain reads as one missing an ancestor).
const MAX_TOKEN_DEPTH: u32 = 64;

pub(crate) async fn token_by_accessor(db: &mut dyn Exec, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor = $1");
    db.fetch_optional(&sql, args![accessor]).await?.as_ref().map(rows::token).transpose()
}

#[async_trait]
impl TokenReads for SqlStore {
    async fn token_chain(&self, digest: &str) -> Result<Vec<TokenRecord>, StoreError> {
        // One round trip for the token and every ancestor: a recursive walk up `parent_accessor`.
        let cols: Vec<String> = TOKEN_COLS.split(", ").map(|c| format!("t.{c}")).collect();
        let sql = format!(
            "WITH RECURSIVE chain (accessor, parent_accessor, depth) AS ( \
               SELECT accessor, parent_accessor, 0 FROM tokens WHERE digest = $1 \
               UNION ALL \
               SELECT p.accessor, p.parent_accessor, c.depth + 1 FROM tokens p \
               JOIN chain c ON p.accessor = c.parent_accessor WHERE c.depth < {MAX_TOKEN_DEPTH}) \
             SELECT {} FROM chain c JOIN tokens t ON t.accessor = c.accessor ORDER BY c.depth",
            cols.join(", ")
        );
        Pool(&self.pool).fetch_all(&sql, args![digest]).await?.iter().map(rows::token).collect()
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE digest = $1");
        Pool(&self.pool).fetch_optional(&sql, args![digest]).await?.as_ref().map(rows::token).transpose()
    }

    async fn token_by_accessor(&self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        token_by_accessor(&mut Pool(&self.pool), accessor).await
    }

    async fn list_tokens(&self, after: Option<&str>, limit: u32) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor > $1 ORDER BY accessor LIMIT $2");
        Pool(&self.pool)
            .fetch_all(&sql, args![after.unwrap_or(""), i64::from(limit)])
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }
}

#[async_trait]
impl TokenTx for SqlTx {
    async fn insert_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO tokens (accessor, digest, policies, parent_accessor, display_name, created_at, ttl_secs, \
             expires_at, last_used, revoked, allowed_cidrs, rate_limit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                args![
                    t.accessor.clone(),
                    t.digest.clone(),
                    json(&t.policies),
                    t.parent_accessor.clone(),
                    t.display_name.clone(),
                    t.created_at,
                    to_i64(t.ttl_secs)?,
                    t.expires_at,
                    t.last_used,
                    i64::from(t.revoked),
                    json(&t.allowed_cidrs),
                    t.rate_limit.clone()
                ],
            )
            .await?;
        Ok(())
    }

    async fn token_by_accessor(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        token_by_accessor(&mut *self.db, accessor).await
    }

    async fn token_locked(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        if self.backend == Backend::Postgres {
            let sql = format!("SELECT {} FROM tokens WHERE accessor = $1 FOR SHARE", rows::TOKEN_COLS);
            return self.db.fetch_optional(&sql, args![accessor]).await?.as_ref().map(rows::token).transpose();
        }
        // SQLite: the one writer holds the database's write lock already.
        token_by_accessor(&mut *self.db, accessor).await
    }

    async fn child_accessors(&mut self, accessor: &str) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT accessor FROM tokens WHERE parent_accessor = $1 AND revoked = 0";
        column(&mut *self.db, sql, args![accessor]).await
    }

    async fn revoke_token(&mut self, accessor: &str) -> Result<(), StoreError> {
        self.db.execute("UPDATE tokens SET revoked = 1 WHERE accessor = $1", args![accessor]).await?;
        Ok(())
    }

    async fn set_token_expiry(&mut self, accessor: &str, expires_at: Nanos) -> Result<(), StoreError> {
        self.db.execute("UPDATE tokens SET expires_at = $2 WHERE accessor = $1", args![accessor, expires_at]).await?;
        Ok(())
    }

    async fn touch_token(&mut self, accessor: &str, at: Nanos) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE tokens SET last_used = $2 WHERE accessor = $1 AND (last_used IS NULL OR last_used < $2)",
                args![accessor, at],
            )
            .await?;
        Ok(())
    }
}
