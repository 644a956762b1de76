//! Token changes: creation (its parent re-checked inside the transaction), revocation of a token
//! with its descendants, renewal, and the last-use stamp.
use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::engine::command::{details, Command, Evict, Upkeep};
use crate::{now_nanos, CoreError, KeyManager, Nanos, StoreTx, TokenRecord, TokenTx};

/// Stores a new token (its digest only).
#[derive(Debug)]
pub(crate) struct CreateToken(pub TokenRecord);

#[async_trait]
impl Command for CreateToken {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        create_token(tx, &self.0).await
    }
}

/// Revokes a token and, transitively, every token created under it; the reply is how many.
#[derive(Debug)]
pub(crate) struct RevokeToken {
    pub accessor: String,
}

#[async_trait]
impl Command for RevokeToken {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        revoke_tree(tx, &self.accessor).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        details([("revoked", (*n).into())])
    }
}

/// Moves a live token's expiry (renewal); an expired or revoked one stays dead.
#[derive(Debug)]
pub(crate) struct RenewToken {
    pub accessor: String,
    pub expires_at: Nanos,
}

#[async_trait]
impl Command for RenewToken {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let live = tx.token_locked(&self.accessor).await?.is_some_and(|t| t.is_live(now_nanos()));
        if !live {
            return Err(CoreError::InvalidInput(super::NOT_RENEWABLE.into()));
        }
        tx.set_token_expiry(&self.accessor, self.expires_at).await?;
        Ok(())
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }
}

/// Records a token's last use (upkeep: no request asked for it).
#[derive(Debug)]
pub(crate) struct TouchToken {
    pub accessor: String,
    pub at: Nanos,
}

#[async_trait]
impl Command for TouchToken {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        tx.touch_token(&self.accessor, self.at).await?;
        Ok(())
    }
}

impl Upkeep for TouchToken {}

/// Takes one request of a use-limited token; the reply is the uses left, `None` when it had none.
/// Upkeep: the request it admits is audited on its own.
#[derive(Debug)]
pub(crate) struct UseToken {
    pub accessor: String,
}

#[async_trait]
impl Command for UseToken {
    type Reply = Option<u64>;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<Option<u64>, CoreError> {
        Ok(tx.take_token_use(&self.accessor).await?)
    }

    fn evicts(&self) -> Evict<'_> {
        // Cached callers carry the uses left; every use goes through here first, so a cached
        // count is only ever shown, never trusted.
        Evict::Nothing
    }
}

impl Upkeep for UseToken {}

/// Stores a new token after checking, inside the transaction, that its parent is still live: the
/// parent's row is share-locked (PostgreSQL) so a revocation on another server either commits
/// first — and the child is refused — or waits for the child and then revokes it too.
async fn create_token(tx: &mut dyn TokenTx, record: &TokenRecord) -> Result<(), CoreError> {
    if let Some(parent) = &record.parent_accessor {
        let live = tx.token_locked(parent).await?.is_some_and(|p| p.is_live(now_nanos()));
        if !live {
            return Err(CoreError::Forbidden("the creating token was revoked or expired meanwhile".into()));
        }
    }
    tx.insert_token(record).await?;
    Ok(())
}

/// Revokes a token and all its descendants, depth first, in this one transaction. Each token is
/// marked revoked before its children are read: on PostgreSQL the mark waits for a child being
/// created under it on another server (which share-locks it), and the children read afterwards
/// include that child.
pub(crate) async fn revoke_tree(tx: &mut dyn TokenTx, accessor: &str) -> Result<u64, CoreError> {
    if tx.token_by_accessor(accessor).await?.is_none() {
        return Err(CoreError::NotFound("token".into()));
    }
    let mut queue = vec![accessor.to_owned()];
    let mut revoked = 0;
    while let Some(a) = queue.pop() {
        tx.revoke_token(&a).await?;
        queue.extend(tx.child_accessors(&a).await?);
        revoked += 1;
    }
    Ok(revoked)
}
