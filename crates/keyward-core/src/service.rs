//! The facade the server calls: opening a database, initialising it, whether requests can be
//! served, and the audit log. The rest of the domain is in one module per concept (`secrets`,
//! `mounts`, `tokens`, `policy`, `keys`, `transit`, `proxy`), each adding its methods here.
use std::sync::Arc;

use keyward_crypto::{random_base62, Key256, MasterKeyring, Token, TokenKey, WrappedKeyDomain};

use crate::engine::cache::TtlCache;
use crate::engine::read_cache::ReadCache;
use crate::integrity::{Loaded, NewIntegrity, INITIALIZED};
use crate::keys::SYSTEM_OWNER;
use crate::{
    now_nanos, AuditEntry, AuditRow, ChainVerifier, CoreError, KeyManager, Mount, ProxyRoute, Store, TokenRecord,
    VerifyReport, Writer,
};

/// Whether a server can serve requests, each with its audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The audit and token keys are loaded.
    Ready,
    /// `operator init` has not run: nothing to protect or audit yet.
    Uninitialized,
    /// Initialised, but a key cannot be loaded or the database cannot be read: nothing may be
    /// served (fail closed). Says why, never a key.
    Unavailable(String),
}

/// Settings of the domain layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywardConfig {
    /// TTL of new tokens when none is asked for, in seconds.
    pub default_token_ttl_secs: u64,
    /// Longest TTL a token may be given, in seconds.
    pub max_token_ttl_secs: u64,
    /// Rows re-encrypted per transaction by key jobs.
    pub migrate_batch: u32,
    /// How long a key job rests after each batch, as a multiple of the time the batch took
    /// (gh-ost's "nice ratio"): 0 runs flat out; 3 gives the job a quarter of the time, leaving the
    /// disk and the write lock to requests.
    pub migrate_nice_ratio: u32,
    /// How long a field may go unchanged before it is stale, unless its path or mount says
    /// otherwise (seconds).
    pub default_rotate_after_secs: u64,
    /// Failed password or TOTP logins of one user, within `login_lockout_secs`, that lock it
    /// for that long (0 disables the per-user lock).
    pub login_lockout_attempts: u32,
    /// The per-user lockout's window and length, in seconds.
    pub login_lockout_secs: u64,
    /// The longest a response may stay wrapped, in seconds.
    pub max_wrap_ttl_secs: u64,
}

impl Default for KeywardConfig {
    fn default() -> Self {
        Self {
            default_token_ttl_secs: 32 * 86_400,
            max_token_ttl_secs: 32 * 86_400,
            migrate_batch: 500,
            migrate_nice_ratio: 3,
            default_rotate_after_secs: 90 * 86_400,
            login_lockout_attempts: 5,
            login_lockout_secs: 900,
            max_wrap_ttl_secs: crate::wrapping::DEFAULT_MAX_WRAP_TTL_SECS,
        }
    }
}

/// Keyward's domain services over one store.
#[derive(Debug, Clone)]
pub struct Keyward {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Arc<KeyManager>,
    pub(crate) writer: Writer,
    pub(crate) config: KeywardConfig,
    /// This server process's identity (names the owner of background jobs).
    pub(crate) instance: String,
    /// Mounts by name, for read paths.
    pub(crate) mounts: Arc<TtlCache<Mount>>,
    /// Credential-proxy routes by name, for proxied calls.
    pub(crate) routes: Arc<TtlCache<ProxyRoute>>,
    /// Callers and current versions in memory (single-process SQLite only).
    pub(crate) cache: Option<Arc<ReadCache>>,
    /// Whether this server runs the background work, and the key jobs it runs.
    pub(crate) background: Arc<crate::background::Background>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.name())
    }
}

impl Keyward {
    /// Checks the master keyring against the database and starts the writer.
    pub async fn open(
        store: Arc<dyn Store>,
        keyring: MasterKeyring,
        config: KeywardConfig,
        audit_sink: Option<tokio::sync::mpsc::Sender<String>>,
    ) -> Result<Self, CoreError> {
        if config.default_token_ttl_secs > config.max_token_ttl_secs {
            return Err(CoreError::InvalidInput("the default token TTL is longer than the maximum".into()));
        }
        let keys = Arc::new(KeyManager::new(keyring));
        keys.check_keyring(store.as_ref()).await?;
        // One process owns a SQLite database (the server holds its lock file), so every change
        // passes through this writer and the in-memory read path stays coherent.
        let cache = store.exclusive().then(|| Arc::new(ReadCache::new()));
        let writer = Writer::spawn(store.clone(), keys.clone(), audit_sink, cache.clone())?;
        let instance = format!("kw-{}", &*random_base62(8));
        let ttl = std::time::Duration::from_secs(1);
        let (mounts, routes) = (Arc::new(TtlCache::new(ttl)), Arc::new(TtlCache::new(ttl)));
        let background = Arc::default();
        let kw = Self { store, keys, writer, config, instance, mounts, routes, cache, background };
        // Rows are authenticated before anything is served; a database that cannot be trusted
        // stops the start here, with one line.
        kw.load_integrity().await?;
        Ok(kw)
    }

    /// The configuration.
    pub fn config(&self) -> KeywardConfig {
        self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether `operator init` has run (on this server or another sharing the database).
    pub async fn is_initialized(&self) -> Result<bool, CoreError> {
        Ok(self.load_integrity().await? == Loaded::Ready)
    }

    /// Initialises the database once, under a lock that spans every server sharing it: makes
    /// the integrity, token and audit keys and the root token, which is returned (and never
    /// stored in clear). `audit` is the first entry of the chain (seq 1), committed in the same
    /// transaction. Only an empty database is initialised.
    pub async fn initialize(&self, audit: AuditEntry) -> Result<Token, CoreError> {
        let pending = crate::audit::PendingEntry::new(audit)?;
        let mut tx = self.store.begin_write(true).await?;
        if tx.holds_rows().await? {
            drop(tx);
            // Initialised (here or by another server), or rows put there outside keyward.
            return Err(match self.load_integrity().await? {
                Loaded::Ready => CoreError::AlreadyInitialized,
                Loaded::Fresh => CoreError::Untrusted("the database changed during initialisation".into()),
            });
        }
        let integrity = NewIntegrity::generate();
        integrity.store(&self.keys, tx.as_mut()).await?;
        let key = Key256::generate();
        let wrapped = self.keys.wrap(WrappedKeyDomain::TokenKey, SYSTEM_OWNER, 1, &key);
        tx.insert_wrapped_key(WrappedKeyDomain::TokenKey.label(), SYSTEM_OWNER, 1, &wrapped).await?;
        let token_key = Arc::new(TokenKey(key));
        let audit_key = Key256::generate();
        let wrapped = self.keys.wrap(WrappedKeyDomain::AuditKey, SYSTEM_OWNER, 1, &audit_key);
        tx.insert_wrapped_key(WrappedKeyDomain::AuditKey.label(), SYSTEM_OWNER, 1, &wrapped).await?;
        let audit_keys = crate::AuditKeys::new(&audit_key);
        drop(audit_key);
        let (root, record) = new_root_token(&token_key);
        tx.insert_token(&record).await?;
        tx.set_system_value(INITIALIZED, "true").await?;
        let mut chain = crate::engine::writer::Chain::new(&audit_keys, Some(crate::engine::writer::genesis()));
        chain.next(&pending);
        tx.append_audit(&chain.rows).await?;
        tx.commit().await?;
        self.store.authenticate_rows(&integrity.key, &integrity.cluster.to_string());
        self.keys.set_token_key(token_key);
        Ok(root)
    }

    /// Appends an audit entry and waits until it is durably committed.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), CoreError> {
        self.writer.audit(entry, false).await
    }

    /// Appends an audit entry no response waits for, and waits until it is durably committed.
    /// On SQLite it rides with the next entries someone does wait for (or goes alone after a
    /// few milliseconds), instead of costing a sync of its own.
    pub async fn audit_later(&self, entry: AuditEntry) -> Result<(), CoreError> {
        self.writer.audit(entry, true).await
    }

    /// Whether requests can be served and audited: the audit and token keys load, or the
    /// database is not initialised yet (there is nothing to protect before `operator init`).
    pub async fn readiness(&self) -> Readiness {
        match self.load_integrity().await {
            Ok(Loaded::Ready) => {}
            Ok(Loaded::Fresh) => return Readiness::Uninitialized,
            Err(e) => return Readiness::Unavailable(e.to_string()),
        }
        let store = self.store.as_ref();
        let audit = self.keys.audit_keys(store).await;
        let token = self.keys.token_key(store).await;
        if audit.is_ok() && token.is_ok() {
            return Readiness::Ready;
        }
        let failed = if audit.is_err() { "the audit key" } else { "the token key" };
        Readiness::Unavailable(format!("{failed} cannot be loaded (missing, or not openable with the master keyring)"))
    }

    /// A keyed, searchable HMAC of a sensitive value (e.g. a presented token) for audit entries.
    pub async fn audit_correlate(&self, value: &[u8]) -> Result<String, CoreError> {
        Ok(self.keys.audit_keys(self.store.as_ref()).await?.correlate(value))
    }

    /// Audit rows after `after_seq`.
    pub async fn audit_rows(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRow>, CoreError> {
        Ok(self.store.audit_rows(after_seq, limit).await?)
    }

    /// The chain head `(seq, hash)`.
    pub async fn audit_head(&self) -> Result<Option<(u64, Vec<u8>)>, CoreError> {
        Ok(self.store.audit_head().await?)
    }

    /// Walks the chain, page by page, from the archived head (entries before it are in the
    /// archive) against the stored head and an optional external anchor `(seq, hash)`.
    pub async fn verify_audit(&self, anchor: Option<(u64, Vec<u8>)>) -> Result<VerifyReport, CoreError> {
        let keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let head = self.store.audit_head().await?.map_or(0, |h| h.0);
        let start = self.archived_head().await?;
        let mut after = start.0;
        let mut v = ChainVerifier::resume(&keys, start, head, anchor);
        loop {
            let rows = self.store.audit_rows(after, 1000).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            rows.iter().for_each(|r| v.push(r));
            if v.is_broken() {
                break;
            }
        }
        Ok(v.finish())
    }
}

/// A new root token (all capabilities, no parent, no expiry) and its record.
pub(crate) fn new_root_token(key: &TokenKey) -> (Token, TokenRecord) {
    let root = Token::generate();
    let issued = (new_accessor(), key.digest(&root).0);
    // It never expires: there is nothing to renew.
    let record = TokenRecord {
        renewable: false,
        ..TokenRecord::issued(issued, vec!["root".into()], "root".into(), now_nanos(), 0)
    };
    (root, record)
}

pub(crate) fn new_accessor() -> String {
    format!("acc_{}", &*random_base62(24))
}
