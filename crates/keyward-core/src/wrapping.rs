//! Response wrapping (Vault's `X-Vault-Wrap-TTL`): a response is sealed under the KEK-wrapped
//! wrap key, with its wrapping token's accessor and creation path as AAD, into a MAC'd row —
//! never only in memory, so any replica can unwrap it — and handed out as a one-time wrapping
//! token. Unwrapping deletes the row and revokes the token in one transaction; so do expiry and
//! the shredding of the source mount.
use std::sync::Arc;

use async_trait::async_trait;
use keyward_crypto::{Aad, Key256, Token};
use zeroize::Zeroizing;

use crate::engine::command::{Command, Evict, Upkeep};
use crate::service::new_accessor;
use crate::{
    now_nanos, AuditEntry, CoreError, KeyManager, Keyward, Nanos, StoreTx, TokenKind, TokenRecord, WrappedResponse,
};

/// The longest a wrapped response is kept unless configured otherwise.
pub const DEFAULT_MAX_WRAP_TTL_SECS: u64 = 24 * 3600;
/// The path arbitrary data is wrapped at.
pub const WRAP_PATH: &str = "sys/wrapping/wrap";

/// A wrapping token as handed out (Vault's `wrap_info`).
#[derive(Debug)]
pub struct WrapInfo {
    /// The one-time token.
    pub token: Token,
    /// Its accessor.
    pub accessor: String,
    /// Its lifetime in seconds.
    pub ttl_secs: u64,
    /// When the response was wrapped.
    pub created_at: Nanos,
    /// The path whose response it holds.
    pub creation_path: String,
}

/// What `sys/wrapping/lookup` shows of a wrapping token (without consuming it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapLookup {
    /// The path whose response it holds.
    pub creation_path: String,
    /// When it was wrapped.
    pub created_at: Nanos,
    /// Its lifetime in seconds.
    pub ttl_secs: u64,
}

fn aad(accessor: &str, creation_path: &str) -> Aad {
    Aad::new("keyward/wrapped-response").part(accessor.as_bytes()).part(creation_path.as_bytes())
}

/// What a wrapping token refuses with: one answer for unknown, used, expired or tampered.
fn invalid() -> CoreError {
    CoreError::InvalidInput("wrapping token is not valid or does not exist".into())
}

/// Stores a wrapping token and its sealed response. `Debug` hides the response.
struct Wrap {
    token: TokenRecord,
    creation_path: String,
    mount_id: String,
    body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Wrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wrap")
            .field("accessor", &self.token.accessor)
            .field("creation_path", &self.creation_path)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Command for Wrap {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<(), CoreError> {
        let key = keys.wrap_key_in(tx).await?;
        let sealed = key.seal(&aad(&self.token.accessor, &self.creation_path), &self.body);
        tx.insert_token(&self.token).await?;
        let row = WrappedResponse {
            accessor: self.token.accessor.clone(),
            creation_path: self.creation_path.clone(),
            mount_id: self.mount_id.clone(),
            sealed,
            created_at: self.token.created_at,
            expires_at: self.token.expires_at.unwrap_or(self.token.created_at),
        };
        tx.insert_wrapped_response(&row).await?;
        Ok(())
    }
}

/// Takes a wrapped response for good (unwrap), or to wrap again (rewrap): the row is deleted
/// and the token revoked in the same transaction, so two unwraps never both succeed.
#[derive(Debug)]
struct Take {
    accessor: String,
    key: Arc<Key256>,
    /// A new token to hold the response (rewrap).
    rewrap: Option<TokenRecord>,
}

#[async_trait]
impl Command for Take {
    type Reply = Zeroizing<Vec<u8>>;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let live = tx.token_locked(&self.accessor).await?.is_some_and(|t| t.is_live(now_nanos()));
        let row = tx.take_wrapped_response(&self.accessor).await?;
        let row = match row {
            Some(r) if live && r.expires_at > now_nanos() => r,
            _ => return Err(invalid()),
        };
        crate::tokens::revoke_tree(tx, &self.accessor).await?;
        let body = self.key.open(&aad(&self.accessor, &row.creation_path), &row.sealed).map_err(|_| invalid())?;
        if let Some(token) = &self.rewrap {
            let sealed = self.key.seal(&aad(&token.accessor, &row.creation_path), &body);
            tx.insert_token(token).await?;
            let again = WrappedResponse {
                accessor: token.accessor.clone(),
                sealed,
                created_at: token.created_at,
                expires_at: token.expires_at.unwrap_or(token.created_at),
                ..row
            };
            tx.insert_wrapped_response(&again).await?;
        }
        Ok(body)
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }
}

/// Deletes expired wrapped responses (upkeep).
#[derive(Debug)]
pub(crate) struct PruneWrapped;

#[async_trait]
impl Command for PruneWrapped {
    type Reply = u64;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        Ok(tx.delete_expired_wrapped(now_nanos()).await?)
    }
}

impl Upkeep for PruneWrapped {}

impl Keyward {
    /// A new wrapping token's record: an orphan with no policy, good for `ttl_secs`.
    async fn wrapping_token(&self, ttl_secs: u64) -> Result<(Token, TokenRecord), CoreError> {
        let max = self.config.max_wrap_ttl_secs;
        if ttl_secs == 0 || ttl_secs > max {
            return Err(CoreError::InvalidInput(format!(
                "wrap TTL must be between 1s and the maximum of {}",
                crate::format_duration(max)
            )));
        }
        let key = self.keys.token_key(self.store.as_ref()).await?;
        let token = Token::generate();
        let now = now_nanos();
        let record = TokenRecord {
            explicit_max_ttl_secs: ttl_secs,
            kind: TokenKind::Wrapping,
            renewable: false,
            ..TokenRecord::issued((new_accessor(), key.digest(&token).0), vec![], "wrapping".into(), now, ttl_secs)
        };
        Ok((token, record))
    }

    /// Wraps `body` (the response of `creation_path`, from `mount` if a mount answered it) for
    /// `ttl_secs`, with its audit entry; returns the wrapping token.
    pub async fn wrap(
        &self,
        creation_path: &str,
        mount: Option<&str>,
        body: Zeroizing<Vec<u8>>,
        ttl_secs: u64,
        audit: AuditEntry,
    ) -> Result<WrapInfo, CoreError> {
        let (token, record) = self.wrapping_token(ttl_secs).await?;
        let mount_id = match mount {
            Some(m) => self.find_mount(m).await?.map(|m| m.id.to_string()).unwrap_or_default(),
            None => String::new(),
        };
        let mut audit = audit;
        audit.details.insert("wrapping_accessor".into(), record.accessor.clone().into());
        audit.details.insert("creation_path".into(), creation_path.into());
        let info = WrapInfo {
            token,
            accessor: record.accessor.clone(),
            ttl_secs,
            created_at: record.created_at,
            creation_path: creation_path.to_owned(),
        };
        let cmd = Wrap { token: record, creation_path: creation_path.to_owned(), mount_id, body };
        self.writer.submit(cmd, audit).await?;
        Ok(info)
    }

    /// The wrapping token's record, if `token` is a live one.
    async fn wrapping_record(&self, token: &Token) -> Result<TokenRecord, CoreError> {
        let record = self.lookup_token(token).await.map_err(|_| invalid())?;
        if record.kind != TokenKind::Wrapping || !record.is_live(now_nanos()) {
            return Err(invalid());
        }
        Ok(record)
    }

    /// Unwraps: the wrapped response, once (the token is revoked and the row deleted).
    pub async fn unwrap_response(&self, token: &Token, audit: AuditEntry) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let record = self.wrapping_record(token).await?;
        let key = self.keys.wrap_key(self.store.as_ref()).await?;
        let mut audit = audit;
        audit.details.insert("wrapping_accessor".into(), record.accessor.clone().into());
        self.writer.submit(Take { accessor: record.accessor, key, rewrap: None }, audit).await
    }

    /// What a wrapping token holds, without consuming it.
    pub async fn wrap_lookup(&self, token: &Token) -> Result<WrapLookup, CoreError> {
        let record = self.wrapping_record(token).await?;
        let row = self.store.wrapped_response(&record.accessor).await?.ok_or_else(invalid)?;
        Ok(WrapLookup { creation_path: row.creation_path, created_at: row.created_at, ttl_secs: record.ttl_secs })
    }

    /// Moves a wrapped response to a new wrapping token of the same TTL; the old one dies.
    pub async fn rewrap_response(&self, token: &Token, audit: AuditEntry) -> Result<WrapInfo, CoreError> {
        let record = self.wrapping_record(token).await?;
        let row = self.store.wrapped_response(&record.accessor).await?.ok_or_else(invalid)?;
        let key = self.keys.wrap_key(self.store.as_ref()).await?;
        let (new_token, new_record) = self.wrapping_token(record.ttl_secs).await?;
        let mut audit = audit;
        audit.details.insert("wrapping_accessor".into(), record.accessor.clone().into());
        audit.details.insert("new_wrapping_accessor".into(), new_record.accessor.clone().into());
        let info = WrapInfo {
            token: new_token,
            accessor: new_record.accessor.clone(),
            ttl_secs: record.ttl_secs,
            created_at: new_record.created_at,
            creation_path: row.creation_path,
        };
        self.writer.submit(Take { accessor: record.accessor, key, rewrap: Some(new_record) }, audit).await?;
        Ok(info)
    }

    /// Deletes expired wrapped responses (the background loop's upkeep); returns how many.
    pub async fn prune_wrapped(&self) -> Result<u64, CoreError> {
        self.writer.maintain(PruneWrapped).await
    }
}
