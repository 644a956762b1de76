//! Token rows.
use async_trait::async_trait;
use keyward_core::{Nanos, StoreError, TokenReads, TokenRecord, TokenTx, WrappedResponse};

use crate::db::{args, column, Arg, Exec, Pool};
use crate::integrity::{Macs, TOKENS, WRAPPED_RESPONSES};
use crate::rows::{to_i64, TOKEN_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::{rows, Backend};

/// Ancestors a token chain is followed through (a deeper chain reads as one missing an ancestor).
const MAX_TOKEN_DEPTH: u32 = 64;

pub(crate) async fn token_by_accessor(
    db: &mut dyn Exec,
    macs: &Macs,
    accessor: &str,
) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor = $1");
    db.fetch_optional(&sql, args![accessor]).await?.map(|r| rows::token(macs, &r)).transpose()
}

const WRAPPED_COLS: &str = "accessor, creation_path, mount_id, sealed, created_at, expires_at, mac";

fn wrapped(macs: &Macs, row: &crate::db::Row) -> Result<WrappedResponse, StoreError> {
    macs.check(&WRAPPED_RESPONSES, row)?;
    Ok(WrappedResponse {
        accessor: row.get("accessor")?,
        creation_path: row.get("creation_path")?,
        mount_id: row.get("mount_id")?,
        sealed: row.get("sealed")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
    })
}

/// The covered columns of a token row as written (`last_used` aside: it is volatile), and their
/// MAC last.
fn token_args(macs: &Macs, t: &TokenRecord) -> Result<Vec<Arg>, StoreError> {
    let values = args![
        t.accessor.clone(),
        t.digest.clone(),
        json(&t.policies),
        t.parent_accessor.clone(),
        t.display_name.clone(),
        t.created_at,
        to_i64(t.ttl_secs)?,
        t.expires_at,
        i64::from(t.revoked),
        json(&t.allowed_cidrs),
        t.rate_limit.clone(),
        t.origin.auth_mount.clone(),
        t.origin.role.clone(),
        t.origin.secret_id_accessor.clone(),
        json(&t.meta),
        to_i64(t.explicit_max_ttl_secs)?,
        t.kind.as_str(),
        to_i64(t.period_secs)?,
        to_i64(t.uses_left)?,
        i64::from(t.renewable)
    ];
    let names = [
        "accessor",
        "digest",
        "policies",
        "parent_accessor",
        "display_name",
        "created_at",
        "ttl_secs",
        "expires_at",
        "revoked",
        "allowed_cidrs",
        "rate_limit",
        "auth_mount",
        "auth_role",
        "secret_id_accessor",
        "meta",
        "explicit_max_ttl",
        "token_type",
        "period",
        "num_uses",
        "renewable",
    ];
    let mac = macs.seal(&TOKENS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

impl SqlTx {
    /// A token's row, read to be changed (row-locked on PostgreSQL).
    async fn token_for_change(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        let macs = self.macs()?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor = $1{lock}");
        self.db.fetch_optional(&sql, args![accessor]).await?.map(|r| rows::token(&macs, &r)).transpose()
    }

    /// Rewrites a token's covered columns and MAC.
    async fn rewrite_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        let sql = "UPDATE tokens SET digest = $2, policies = $3, parent_accessor = $4, display_name = $5, \
                   created_at = $6, ttl_secs = $7, expires_at = $8, revoked = $9, allowed_cidrs = $10, rate_limit = $11, \
                   auth_mount = $12, auth_role = $13, secret_id_accessor = $14, meta = $15, explicit_max_ttl = $16, \
                   token_type = $17, period = $18, num_uses = $19, renewable = $20, mac = $21 \
                   WHERE accessor = $1";
        let args = token_args(&self.macs()?, t)?;
        self.db.execute(sql, args).await?;
        Ok(())
    }
}

#[async_trait]
impl TokenReads for SqlStore {
    async fn token_chain(&self, digest: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let macs = self.macs()?;
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
        Pool(&self.pool).fetch_all(&sql, args![digest]).await?.iter().map(|r| rows::token(&macs, r)).collect()
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE digest = $1");
        Pool(&self.pool).fetch_optional(&sql, args![digest]).await?.map(|r| rows::token(&macs, &r)).transpose()
    }

    async fn token_by_accessor(&self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        token_by_accessor(&mut Pool(&self.pool), &self.macs()?, accessor).await
    }

    async fn wrapped_response(&self, accessor: &str) -> Result<Option<WrappedResponse>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {WRAPPED_COLS} FROM wrapped_responses WHERE accessor = $1");
        Pool(&self.pool).fetch_optional(&sql, args![accessor]).await?.map(|r| wrapped(&macs, &r)).transpose()
    }

    async fn list_tokens(&self, after: Option<&str>, limit: u32) -> Result<Vec<TokenRecord>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor > $1 ORDER BY accessor LIMIT $2");
        Pool(&self.pool)
            .fetch_all(&sql, args![after.unwrap_or(""), i64::from(limit)])
            .await?
            .iter()
            .map(|r| rows::token(&macs, r))
            .collect()
    }
}

#[async_trait]
impl TokenTx for SqlTx {
    async fn insert_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO tokens (accessor, digest, policies, parent_accessor, display_name, created_at, \
                   ttl_secs, expires_at, revoked, allowed_cidrs, rate_limit, auth_mount, auth_role, secret_id_accessor, \
                   meta, explicit_max_ttl, token_type, period, num_uses, renewable, mac, last_used) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                   $20, $21, $22)";
        let mut args = token_args(&self.macs()?, t)?;
        args.push(Arg::from(t.last_used));
        self.db.execute(sql, args).await?;
        Ok(())
    }

    async fn token_by_accessor(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        let macs = self.macs()?;
        token_by_accessor(&mut *self.db, &macs, accessor).await
    }

    async fn token_locked(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        let macs = self.macs()?;
        if self.backend == Backend::Postgres {
            let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor = $1 FOR SHARE");
            return self.db.fetch_optional(&sql, args![accessor]).await?.map(|r| rows::token(&macs, &r)).transpose();
        }
        // SQLite: the one writer holds the database's write lock already.
        token_by_accessor(&mut *self.db, &macs, accessor).await
    }

    async fn child_accessors(&mut self, accessor: &str) -> Result<Vec<String>, StoreError> {
        // Candidates only: each is read, checked, before it is revoked.
        let sql = "SELECT accessor FROM tokens WHERE parent_accessor = $1 AND revoked = 0";
        column(&mut *self.db, sql, args![accessor]).await
    }

    async fn revoke_token(&mut self, accessor: &str) -> Result<(), StoreError> {
        match self.token_for_change(accessor).await {
            Ok(Some(mut t)) if !t.revoked => {
                t.revoked = true;
                self.rewrite_token(&t).await
            }
            Ok(_) => Ok(()),
            // A row that fails its MAC is refused wherever it is read: there is nothing it could
            // still grant, and a revocation must not stop at it.
            Err(StoreError::Tampered { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn set_token_expiry(&mut self, accessor: &str, expires_at: Nanos) -> Result<(), StoreError> {
        let mut t = self.token_for_change(accessor).await?.ok_or(StoreError::Conflict)?;
        t.expires_at = Some(expires_at);
        self.rewrite_token(&t).await
    }

    async fn take_token_use(&mut self, accessor: &str) -> Result<Option<u64>, StoreError> {
        let Some(mut t) = self.token_for_change(accessor).await? else { return Ok(None) };
        if t.revoked || t.uses_left == 0 {
            return Ok(None);
        }
        t.uses_left -= 1;
        t.revoked = t.uses_left == 0;
        self.rewrite_token(&t).await?;
        Ok(Some(t.uses_left))
    }

    async fn insert_wrapped_response(&mut self, w: &WrappedResponse) -> Result<(), StoreError> {
        let values = args![w.accessor.clone(), w.creation_path.clone(), w.mount_id.clone(), w.created_at, w.expires_at];
        let names = ["accessor", "creation_path", "mount_id", "created_at", "expires_at"];
        let mac =
            self.macs()?.seal(&WRAPPED_RESPONSES, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
        let sql =
            "INSERT INTO wrapped_responses (accessor, creation_path, mount_id, created_at, expires_at, mac, sealed) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let args = values.into_iter().chain([mac, Arg::from(w.sealed.clone())]).collect();
        self.db.execute(sql, args).await?;
        Ok(())
    }

    async fn take_wrapped_response(&mut self, accessor: &str) -> Result<Option<WrappedResponse>, StoreError> {
        let macs = self.macs()?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT {WRAPPED_COLS} FROM wrapped_responses WHERE accessor = $1{lock}");
        let Some(row) = self.db.fetch_optional(&sql, args![accessor]).await? else { return Ok(None) };
        let w = wrapped(&macs, &row)?;
        self.db.execute("DELETE FROM wrapped_responses WHERE accessor = $1", args![accessor]).await?;
        Ok(Some(w))
    }

    async fn delete_expired_wrapped(&mut self, now: Nanos) -> Result<u64, StoreError> {
        self.db.execute("DELETE FROM wrapped_responses WHERE expires_at <= $1", args![now]).await
    }

    async fn touch_token(&mut self, accessor: &str, at: Nanos) -> Result<(), StoreError> {
        // `last_used` is volatile: outside the row's MAC.
        self.db
            .execute(
                "UPDATE tokens SET last_used = $2 WHERE accessor = $1 AND (last_used IS NULL OR last_used < $2)",
                args![accessor, at],
            )
            .await?;
        Ok(())
    }
}
