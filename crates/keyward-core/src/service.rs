//! The facade the server calls: initialisation, authentication, mounts and secrets.
use std::sync::Arc;

use keyward_crypto::{blob_dek_version, random_base62, Key256, MasterKeyring, Token, TokenKey, WrappedKeyDomain};

use crate::keys::SYSTEM_OWNER;
use crate::ops::open_version;
use crate::{
    now_nanos, AuditEntry, AuditRow, ChainVerifier, CoreError, KeyManager, Mount, MountKind, SecretData, SecretMeta,
    SecretPatch, SecretSummary, SecretVersion, Store, TokenRecord, VerifyReport, VersionInfo, WriteOp, WriteReply,
    WriteSummary, Writer,
};

const INITIALIZED: &str = "initialized";

/// A decrypted secret version with its metadata.
#[derive(Debug)]
pub struct SecretRead {
    /// The mount.
    pub mount: Mount,
    /// The secret's metadata.
    pub meta: SecretMeta,
    /// The version read (its blob removed).
    pub version: SecretVersion,
    /// The plaintext map.
    pub data: SecretData,
}

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
}

impl Default for KeywardConfig {
    fn default() -> Self {
        Self {
            default_token_ttl_secs: 32 * 86_400,
            max_token_ttl_secs: 32 * 86_400,
            migrate_batch: 500,
            migrate_nice_ratio: 3,
            default_rotate_after_secs: 90 * 86_400,
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
    pub(crate) mounts: Arc<crate::cache::TtlCache<Mount>>,
    /// Credential-proxy routes by name, for proxied calls.
    pub(crate) routes: Arc<crate::cache::TtlCache<crate::ProxyRoute>>,
    /// Callers and current versions in memory (single-process SQLite only).
    pub(crate) cache: Option<Arc<crate::read_cache::ReadCache>>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend())
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
        let cache = (store.backend() == crate::Backend::Sqlite).then(|| Arc::new(crate::read_cache::ReadCache::new()));
        let writer = Writer::spawn(store.clone(), keys.clone(), audit_sink, cache.clone())?;
        let instance = format!("kw-{}", &*random_base62(8));
        let ttl = std::time::Duration::from_secs(1);
        let (mounts, routes) = (Arc::new(crate::cache::TtlCache::new(ttl)), Arc::new(crate::cache::TtlCache::new(ttl)));
        Ok(Self { store, keys, writer, config, instance, mounts, routes, cache })
    }

    /// The configuration.
    pub fn config(&self) -> KeywardConfig {
        self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether `operator init` has run.
    pub async fn is_initialized(&self) -> Result<bool, CoreError> {
        Ok(self.store.system_value(INITIALIZED).await?.as_deref() == Some("true"))
    }

    /// Initialises the database once, under a lock that spans every server sharing it: makes
    /// the token and audit keys and the root token, which is returned (and never stored in
    /// clear). `audit` is the first entry of the chain (seq 1), committed in the same transaction.
    pub async fn initialize(&self, audit: AuditEntry) -> Result<Token, CoreError> {
        let pending = crate::audit::PendingEntry::new(audit)?;
        let mut tx = self.store.begin_write(true).await?;
        if tx.system_value(INITIALIZED).await?.as_deref() == Some("true") {
            return Err(CoreError::AlreadyInitialized);
        }
        let key = Key256::generate();
        let wrapped = self.keys.wrap(WrappedKeyDomain::TokenKey, SYSTEM_OWNER, 1, &key);
        tx.insert_wrapped_key(WrappedKeyDomain::TokenKey.label(), SYSTEM_OWNER, 1, &wrapped).await?;
        let token_key = Arc::new(TokenKey(key));
        let audit_key = Key256::generate();
        let wrapped = self.keys.wrap(WrappedKeyDomain::AuditKey, SYSTEM_OWNER, 1, &audit_key);
        tx.insert_wrapped_key(WrappedKeyDomain::AuditKey.label(), SYSTEM_OWNER, 1, &wrapped).await?;
        let audit_keys = crate::AuditKeys::new(&audit_key);
        drop(audit_key);
        let root = Token::generate();
        let record = TokenRecord {
            accessor: new_accessor(),
            digest: token_key.digest(&root).0,
            policies: vec!["root".into()],
            parent_accessor: None,
            display_name: "root".into(),
            created_at: now_nanos(),
            ttl_secs: 0,
            expires_at: None,
            last_used: None,
            revoked: false,
            allowed_cidrs: vec![],
            rate_limit: None,
        };
        tx.insert_token(&record).await?;
        tx.set_system_value(INITIALIZED, "true").await?;
        let mut chain = crate::writer::Chain::new(&audit_keys, Some(crate::writer::genesis()));
        chain.next(&pending);
        tx.append_audit(&chain.rows).await?;
        tx.commit().await?;
        self.keys.set_token_key(token_key);
        Ok(root)
    }

    /// All mounts.
    pub async fn list_mounts(&self) -> Result<Vec<Mount>, CoreError> {
        Ok(self.store.list_mounts().await?)
    }

    /// Creates a mount, with its audit entry; `rotate_after` (seconds) is its default age after
    /// which fields are reported stale.
    pub async fn create_mount(
        &self,
        path: &str,
        kind: MountKind,
        rotate_after: Option<u64>,
        audit: AuditEntry,
    ) -> Result<Mount, CoreError> {
        self.mounts.forget(path);
        let op = WriteOp::CreateMount { path: path.to_owned(), kind, rotate_after };
        match self.writer.submit_audited(op, audit).await? {
            WriteReply::MountCreated(m) => Ok(m),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a mount and crypto-shreds its data, with its audit entry in the same transaction;
    /// returns how many wrapped keys were deleted.
    pub async fn delete_mount(&self, path: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.mounts.forget(path);
        let reply = self.writer.submit_audited(WriteOp::DeleteMount { path: path.to_owned() }, audit).await;
        self.mounts.forget(path);
        match reply? {
            WriteReply::MountDeleted { keys_shredded, .. } => Ok(keys_shredded),
            other => Err(unexpected(&other)),
        }
    }

    /// Applies a patch as one new version; its audit entry commits in the same transaction.
    pub async fn patch_secret(
        &self,
        mount: &str,
        path: &str,
        patch: SecretPatch,
        actor: &str,
        audit: AuditEntry,
    ) -> Result<WriteSummary, CoreError> {
        let op = WriteOp::Patch { mount: mount.to_owned(), path: path.to_owned(), patch, actor: actor.to_owned() };
        written(self.writer.submit_audited(op, audit).await?)
    }

    /// Writes a new version equal to `version`, audited in the same transaction. A writer that
    /// may not `read` learns nothing about whether it equals the current one (`may_read`).
    #[allow(clippy::too_many_arguments)]
    pub async fn rollback(
        &self,
        mount: &str,
        path: &str,
        version: u64,
        may_read: bool,
        actor: &str,
        audit: AuditEntry,
    ) -> Result<WriteSummary, CoreError> {
        let version = crate::ops::version_number(version)?;
        let op = WriteOp::Rollback {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
            may_read,
            actor: actor.to_owned(),
        };
        written(self.writer.submit_audited(op, audit).await?)
    }

    /// Deletes a secret with all its versions, audited in the same transaction.
    pub async fn delete_secret(&self, mount: &str, path: &str, audit: AuditEntry) -> Result<(), CoreError> {
        let op = WriteOp::DeleteSecret { mount: mount.to_owned(), path: path.to_owned() };
        match self.writer.submit_audited(op, audit).await? {
            WriteReply::SecretDeleted => Ok(()),
            other => Err(unexpected(&other)),
        }
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
        let store = self.store.as_ref();
        let audit = self.keys.audit_keys(store).await;
        let token = self.keys.token_key(store).await;
        if audit.is_ok() && token.is_ok() {
            return Readiness::Ready;
        }
        match self.is_initialized().await {
            Ok(false) => Readiness::Uninitialized,
            Ok(true) => {
                let failed = if audit.is_err() { "the audit key" } else { "the token key" };
                Readiness::Unavailable(format!(
                    "{failed} cannot be loaded (missing, or not openable with the master keyring)"
                ))
            }
            Err(e) => Readiness::Unavailable(e.to_string()),
        }
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

    /// Walks the whole chain, page by page, against the stored head and an optional external
    /// anchor `(seq, hash)`.
    pub async fn verify_audit(&self, anchor: Option<(u64, Vec<u8>)>) -> Result<VerifyReport, CoreError> {
        let keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let head = self.store.audit_head().await?.map_or(0, |h| h.0);
        let mut v = ChainVerifier::new(&keys, head, anchor);
        let mut after = 0;
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

    /// A mount that must be of `kind`. Read paths use a copy at most a second old (mounts change
    /// rarely; a write re-reads its mount inside its transaction, and a secret of a deleted
    /// mount is gone from the database at once, so a stale copy can only answer 404).
    pub(crate) async fn mount_of(&self, name: &str, kind: MountKind) -> Result<Mount, CoreError> {
        match self.find_mount(name).await? {
            Some(m) if m.kind == kind => Ok(m),
            Some(_) => Err(CoreError::InvalidInput(format!("mount {name:?} is not a {} mount", kind.as_str()))),
            None => Err(CoreError::NotFound(format!("mount {name:?}"))),
        }
    }

    /// A mount by name, whatever its engine (from the same short-lived cache as [`Self::mount_of`]).
    pub async fn find_mount(&self, name: &str) -> Result<Option<Mount>, CoreError> {
        Ok(self.mounts.get(name, || self.store.mount(name)).await?)
    }

    pub(crate) async fn kv_mount(&self, name: &str) -> Result<Mount, CoreError> {
        self.mount_of(name, MountKind::Kv).await
    }

    pub(crate) async fn secret_meta(&self, mount: &Mount, path: &str) -> Result<SecretMeta, CoreError> {
        self.store
            .secret(mount.id, path)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("secret {}/{path}", mount.path)))
    }

    /// A secret and one of its versions (the current one when `version` is `None`), from memory
    /// when the read cache holds it.
    pub(crate) async fn secret_version(
        &self,
        mount: &Mount,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<(SecretMeta, Option<SecretVersion>)>, CoreError> {
        let Some(cache) = self.cache.as_ref().filter(|_| version.is_none()) else {
            return Ok(self.store.secret_version(mount.id, path, version).await?);
        };
        if let Some(hit) = cache.current(mount.id, path) {
            return Ok(Some((hit.0.clone(), Some(hit.1.clone()))));
        }
        let generation = cache.secrets_generation();
        let found = self.store.secret_version(mount.id, path, None).await?;
        if let Some((meta, Some(v))) = &found {
            // Only what opens is kept: a damaged row keeps failing until it is repaired.
            if self.opens(mount, meta, v).await {
                cache.put_current(generation, mount.id, path, Arc::new((meta.clone(), v.clone())));
            }
        }
        Ok(found)
    }

    async fn opens(&self, mount: &Mount, meta: &SecretMeta, row: &SecretVersion) -> bool {
        let Some(blob) = row.blob.as_deref() else { return true };
        let Ok(dek_version) = blob_dek_version(blob) else { return false };
        match self.keys.dek(self.store.as_ref(), mount.id, dek_version).await {
            Ok(dek) => open_version(&dek, mount, meta, row).is_ok(),
            Err(_) => false,
        }
    }

    /// Reads and decrypts a version (the current one by default).
    pub async fn read_secret(&self, mount: &str, path: &str, version: Option<u64>) -> Result<SecretRead, CoreError> {
        let version = version.map(crate::ops::version_number).transpose()?;
        let mount = self.kv_mount(mount).await?;
        let (meta, row) = self
            .secret_version(&mount, path, version.filter(|v| *v > 0))
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("secret {}/{path}", mount.path)))?;
        let v = version.filter(|v| *v > 0).unwrap_or(meta.current_version);
        let what = format!("version {v} of {}/{path}", mount.path);
        let mut row = row.ok_or_else(|| CoreError::NotFound(what.clone()))?;
        if row.destroyed || row.blob.is_none() {
            return Err(CoreError::NotFound(format!("{what} (destroyed)")));
        }
        if !crate::ops::is_live(&row, crate::now_nanos()) {
            return Err(CoreError::NotFound(format!("{what} (deleted)")));
        }
        let blob = row.blob.as_deref().unwrap_or_default();
        let dek_version = blob_dek_version(blob).map_err(|_| CoreError::Integrity(what.clone()))?;
        let dek = self.keys.dek(self.store.as_ref(), mount.id, dek_version).await?;
        let data = open_version(&dek, &mount, &meta, &row)?;
        row.blob = None;
        Ok(SecretRead { mount, meta, version: row, data })
    }

    /// Compares two secrets' current versions inside the server: only names come back.
    pub async fn diff_secrets(&self, mount: &str, a: &str, b: &str) -> Result<crate::SecretDiff, CoreError> {
        let left = self.read_secret(mount, a, None).await?;
        let right = self.read_secret(mount, b, None).await?;
        let (l, r) = (left.data.fields(), right.data.fields());
        let mut d = crate::SecretDiff::default();
        for (k, v) in l {
            match r.get(k) {
                None => d.only_in_a.push(k.clone()),
                Some(w) if w == v => d.same.push(k.clone()),
                Some(_) => d.different.push(k.clone()),
            }
        }
        d.only_in_b = r.keys().filter(|k| !l.contains_key(*k)).cloned().collect();
        Ok(d)
    }

    /// A page of a mount's secrets (environments), without decrypting anything.
    pub async fn list_secrets(
        &self,
        mount: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretSummary>, CoreError> {
        let mount = self.kv_mount(mount).await?;
        Ok(self.store.list_secrets(mount.id, after, limit).await?)
    }

    /// The stored versions of a secret, oldest first.
    pub async fn history(&self, mount: &str, path: &str) -> Result<Vec<VersionInfo>, CoreError> {
        let mount = self.kv_mount(mount).await?;
        let meta = self.secret_meta(&mount, path).await?;
        let versions = self.store.versions(meta.id).await?;
        Ok(versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                created_at: v.created_at,
                created_by: v.created_by,
                deletion_time: v.deletion_time,
                destroyed: v.destroyed,
                fields: v.field_versions.into_keys().collect(),
            })
            .collect())
    }
}

pub(crate) fn new_accessor() -> String {
    format!("acc_{}", &*random_base62(24))
}

pub(crate) fn written(reply: WriteReply) -> Result<WriteSummary, CoreError> {
    match reply {
        WriteReply::Written(s) => Ok(s),
        other => Err(unexpected(&other)),
    }
}

pub(crate) fn unexpected(reply: &WriteReply) -> CoreError {
    CoreError::Store(crate::StoreError::Corrupt(format!("unexpected writer reply {reply:?}")))
}
