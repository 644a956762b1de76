//! Changes as typed commands: each is a struct that applies itself inside the writer's batch
//! transaction and gives a reply of its own type, so a caller gets exactly what its change
//! produces — no shared reply enum to match at run time.
use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::{CoreError, KeyManager, StoreTx};

/// What a committed change may have made stale in the read cache of a single-process server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Evict<'a> {
    /// Nothing cached depends on it.
    Nothing,
    /// One secret path (in whatever mount).
    Secret(&'a str),
    /// Every cached secret.
    Secrets,
    /// Every cached caller (token and policy changes).
    Callers,
    /// Everything.
    Everything,
}

/// A change the writer applies atomically inside a group-committed batch.
#[async_trait]
pub(crate) trait Command: std::fmt::Debug + Send + Sync + 'static {
    /// What the change gives back.
    type Reply: Send + 'static;

    /// Whether [`Command::audit_details`] adds anything (the writer then keeps the entry as
    /// given, to add the details once the change is applied).
    const ADDS_DETAILS: bool = false;

    /// Applies the change inside the batch's transaction (under a savepoint of its own).
    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<Self::Reply, CoreError>;

    /// What the read cache must drop once the batch is over.
    fn evicts(&self) -> Evict<'_> {
        Evict::Nothing
    }

    /// Whether its commit must be durable before it is answered: everything but a re-encryption
    /// batch on its own, which is redone from its job's cursor if a crash loses it.
    fn durable(&self) -> bool {
        true
    }

    /// Facts only the change knows, joined to its audit entry in the same transaction (keys
    /// shredded, tokens revoked, a new key version…); never a value.
    fn audit_details(_reply: &Self::Reply) -> Option<Map<String, Value>> {
        None
    }

    /// Runs once the batch has committed, before the reply is sent (e.g. forgetting the keys of
    /// a shredded mount).
    fn committed(_reply: &Self::Reply, _keys: &KeyManager) {}
}

/// Upkeep no request asked for — a token's last-use stamp, a batch of a re-encryption job — the
/// only commands the writer takes without an audit entry.
pub(crate) trait Upkeep: Command {}

/// `details` as an audit entry's `details` map.
pub(crate) fn details<const N: usize>(pairs: [(&str, Value); N]) -> Option<Map<String, Value>> {
    Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
