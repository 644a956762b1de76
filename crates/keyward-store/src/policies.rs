//! Policy rows. Deleting a policy leaves a tombstone (`deleted = 1`, no rules), MAC'd like any
//! row, so a row simply missing is known to have been removed outside keyward.
use async_trait::async_trait;
use keyward_core::{Policy, PolicyReads, PolicyRow, PolicyTx, StoreError};

use crate::db::{args, Arg, Exec, Pool};
use crate::integrity::{Macs, POLICIES};
use crate::rows::{self, POLICY_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};

/// A policy row as written — live, or the tombstone of a deletion — with its MAC last.
fn policy_args(
    macs: &Macs,
    name: &str,
    live: Option<&Policy>,
    created_at: i64,
    updated_at: i64,
) -> Result<Vec<Arg>, StoreError> {
    let (rules, hcl, deleted) = match live {
        Some(p) => (json(&p.rules), p.hcl.clone(), 0),
        None => ("[]".to_owned(), None, 1),
    };
    let values = args![name, rules, hcl, deleted, created_at, updated_at];
    let names = ["name", "rules", "hcl", "deleted", "created_at", "updated_at"];
    let mac = macs.seal(&POLICIES, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

/// Reads the rows of `names` (checked), in one query.
async fn policy_rows(db: &mut dyn Exec, macs: &Macs, names: &[String]) -> Result<Vec<PolicyRow>, StoreError> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let sql = format!("SELECT {POLICY_COLS} FROM policies WHERE name IN ({})", marks.join(", "));
    let names = names.iter().map(|n| Arg::from(n.as_str())).collect();
    db.fetch_all(&sql, names).await?.iter().map(|r| rows::policy(macs, r)).collect()
}

#[async_trait]
impl PolicyReads for SqlStore {
    async fn policies(&self, names: &[String]) -> Result<Vec<PolicyRow>, StoreError> {
        policy_rows(&mut Pool(&self.pool), &self.macs()?, names).await
    }

    async fn policy_names(&self) -> Result<Vec<String>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {POLICY_COLS} FROM policies ORDER BY name");
        let rows = Pool(&self.pool).fetch_all(&sql, vec![]).await?;
        let mut names = Vec::with_capacity(rows.len());
        for r in &rows {
            if let PolicyRow::Live(p) = rows::policy(&macs, r)? {
                names.push(p.name);
            }
        }
        Ok(names)
    }
}

impl SqlTx {
    /// When a policy's row (live or tombstone) was created, if it has one.
    async fn policy_created_at(&mut self, name: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT created_at FROM policies WHERE name = $1";
        self.db.fetch_optional(sql, args![name]).await?.map(|r| r.get("created_at")).transpose()
    }
}

#[async_trait]
impl PolicyTx for SqlTx {
    async fn put_policy(&mut self, p: &Policy) -> Result<(), StoreError> {
        let now = keyward_core::now_nanos();
        let created = self.policy_created_at(&p.name).await?.unwrap_or(now);
        let sql = "INSERT INTO policies (name, rules, hcl, deleted, created_at, updated_at, mac) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO UPDATE SET rules = excluded.rules, \
                   hcl = excluded.hcl, deleted = excluded.deleted, created_at = excluded.created_at, \
                   updated_at = excluded.updated_at, mac = excluded.mac";
        self.db.execute(sql, policy_args(&self.macs()?, &p.name, Some(p), created, now)?).await?;
        Ok(())
    }

    async fn delete_policy(&mut self, name: &str) -> Result<bool, StoreError> {
        let macs = self.macs()?;
        let live =
            matches!(policy_rows(&mut *self.db, &macs, &[name.to_owned()]).await?.first(), Some(PolicyRow::Live(_)));
        if !live {
            return Ok(false);
        }
        let now = keyward_core::now_nanos();
        let created = self.policy_created_at(name).await?.unwrap_or(now);
        let sql = "UPDATE policies SET rules = $2, hcl = $3, deleted = $4, created_at = $5, updated_at = $6, mac = $7 \
                   WHERE name = $1";
        self.db.execute(sql, policy_args(&macs, name, None, created, now)?).await?;
        Ok(true)
    }
}
