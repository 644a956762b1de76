//! The storage boundary: one narrow trait per aggregate for reads outside a transaction
//! (`SecretReads`, `TokenReads`…) and one for a write transaction (`SecretTx`, `TokenTx`…);
//! [`Store`] and [`StoreTx`] gather them with what is not an aggregate's (opening a
//! transaction, committing, savepoints, system values). Code that touches one aggregate takes
//! its trait. Implementations live in `keyward-store` (SQLite, PostgreSQL).
use std::collections::BTreeMap;

use async_trait::async_trait;
use keyward_crypto::{Key256, WrappedKey};
use uuid::Uuid;

use crate::{
    AppRole, AuditRow, AuthItem, AuthMount, DekUsage, FieldStamp, KeyJob, LoginFailures, Mount, Nanos, Policy,
    PolicyRow, ProxyRoute, ResealedVersion, RowCheck, SecretIdRecord, SecretMeta, SecretSummary, SecretVersion,
    StoreError, TokenOrigin, TokenRecord, TransitKey, UnmigratedVersion, User, WrappedResponse,
};

/// Reads outside any transaction, and the way to start a write transaction.
#[async_trait]
pub trait Store:
    crate::BackupReads
    + IntegrityReads
    + KeyReads
    + MountReads
    + SecretReads
    + TransitReads
    + ProxyReads
    + TokenReads
    + PolicyReads
    + AuditReads
    + AuthReads
    + Send
    + Sync
    + 'static
{
    /// The storage's name, for health reports (`sqlite`, `postgres`).
    fn name(&self) -> &'static str;
    /// Whether one process serves the database — every change passes through this process's
    /// writer — so reads may be answered from memory kept exact by it. Several servers may share
    /// a store that is not exclusive, and then everything is read from it.
    fn exclusive(&self) -> bool;
    /// Closes every connection at shutdown (SQLite checkpoints its WAL into the database file).
    async fn close(&self);
    /// Starts a write transaction that holds the database's write lock (SQLite `BEGIN
    /// IMMEDIATE`); `exclusive` additionally serialises against every other server on the same
    /// database (a PostgreSQL advisory lock), for initialisation.
    async fn begin_write(&self, exclusive: bool) -> Result<Box<dyn StoreTx>, StoreError>;
    /// A system value (e.g. `initialized`).
    async fn system_value(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Takes `lock` if no process on the database holds it (a PostgreSQL session advisory lock
    /// on a connection of its own, released when the guard drops or the process dies; within
    /// the process on SQLite, whose database one server serves). `None` when it is held.
    async fn try_lock(&self, lock: JobLock) -> Result<Option<Box<dyn HeldLock>>, StoreError>;
    /// The connection pool's use, for metrics.
    fn pool_use(&self) -> PoolUse;
}

/// How many database connections are open, idle, and allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// Work that runs on one server at a time, whatever the number of replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobLock {
    /// Background work: key jobs, stale scans, scheduled retention (the replica holding it is
    /// the one that runs them).
    Background,
    /// An audit archive run.
    AuditArchive,
}

impl JobLock {
    /// Its PostgreSQL advisory-lock number.
    pub fn id(self) -> i64 {
        match self {
            JobLock::Background => 8_200_010,
            JobLock::AuditArchive => 8_200_011,
        }
    }
}

/// A lock taken with [`Store::try_lock`]; dropping it releases it.
#[async_trait]
pub trait HeldLock: Send + std::fmt::Debug {
    /// Whether the lock is still held (its connection is alive).
    async fn still_held(&mut self) -> bool;
}

/// Space given back after audit rows were archived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceReclaimed {
    /// What was done, in a sentence.
    pub action: String,
    /// The database file's size before, in bytes (SQLite).
    pub bytes_before: Option<u64>,
    /// The database file's size after, in bytes (SQLite).
    pub bytes_after: Option<u64>,
}

/// Untrusted storage (DESIGN §8): the rows that decide who may do what carry MACs under keys
/// derived from the integrity key; until those keys are installed, such rows can be neither read
/// nor written.
#[async_trait]
pub trait IntegrityReads: Send + Sync + 'static {
    /// Derives the row keys from the integrity key for the cluster `cluster_id` and installs
    /// them: from then on every such row read is checked and every one written carries its MAC.
    fn authenticate_rows(&self, integrity: &Key256, cluster_id: &str);
    /// Whether the row keys are installed.
    fn rows_authenticated(&self) -> bool;
    /// Rows refused for failing their MAC since the process started.
    fn tampered_rows(&self) -> u64;
    /// Whether the `initialized` marker is present without a MAC: a database written before rows
    /// were authenticated, awaiting its one-time upgrade. The only read of a MAC'd row that is
    /// not authenticated, and it decides nothing but whether to upgrade.
    async fn awaits_integrity_upgrade(&self) -> Result<bool, StoreError>;
    /// Whether any table holds a row (key-check values and schema bookkeeping aside).
    async fn holds_rows(&self) -> Result<bool, StoreError>;
    /// Whether some MAC'd table's rows are MAC'd under an older layout than this binary's (a
    /// migration changed the columns it covers), so `IntegrityTx::relayout_rows` must run.
    async fn stale_layouts(&self) -> Result<bool, StoreError>;
    /// Checks every row of every MAC'd table.
    async fn verify_rows(&self) -> Result<Vec<RowCheck>, StoreError>;
}

/// Keys: key checks, wrapped keys and their usage, re-encryption jobs and their walks.
#[async_trait]
pub trait KeyReads: Send + Sync + 'static {
    /// Stored key-check values: `(kek tag, check value)`.
    async fn kek_checks(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// How many wrapped keys each KEK tag still wraps.
    async fn kek_usage(&self) -> Result<Vec<(String, u64)>, StoreError>;
    /// A wrapped key by domain label, owner and version.
    async fn wrapped_key(&self, domain: &str, owner: Uuid, version: u32) -> Result<Option<WrappedKey>, StoreError>;
    /// Every wrapped key of a domain: `(owner, version, key)`.
    async fn wrapped_keys_in(&self, domain: &str) -> Result<Vec<(Uuid, u32, WrappedKey)>, StoreError>;
    /// Per mount data-key version: its KEK tag and how many blobs it seals.
    async fn dek_usage(&self) -> Result<Vec<DekUsage>, StoreError>;
    /// Every data-key version that exists, as `(mount id, version)`, ordered.
    async fn data_key_versions(&self) -> Result<Vec<(Uuid, u32)>, StoreError>;
    /// How many stored versions are sealed under an older data key than their mount's newest
    /// (a scan of the versions).
    async fn count_unmigrated(&self, mount_id: Option<Uuid>) -> Result<u64, StoreError>;
    /// Stored versions with blobs after the cursor `(secret id, version)`, in that order:
    /// `(mount id, mount name, secret id, secret path, version, blob)`.
    async fn blobs_page(
        &self,
        after: Option<(Uuid, u64)>,
        limit: u32,
    ) -> Result<Vec<(Uuid, String, Uuid, String, u64, Vec<u8>)>, StoreError>;
    /// Scans up to `limit` stored versions after the cursor and returns those sealed under an
    /// older data key than their mount's newest, with the last scanned position (`None` at the
    /// end). It reads committed state outside any write transaction: the batch that stores the
    /// re-sealed blobs checks what it relied on. The cursor is opaque to callers (`("", 0)` at
    /// first): the last `(secret id, version)` in key order on PostgreSQL, `("", row id)` in
    /// storage order on SQLite.
    async fn unmigrated_versions(
        &self,
        mount_id: Option<Uuid>,
        after: &(String, u64),
        limit: u32,
    ) -> Result<(Vec<UnmigratedVersion>, Option<(String, u64)>), StoreError>;
    /// A key job.
    async fn key_job(&self, id: Uuid) -> Result<Option<KeyJob>, StoreError>;
    /// Key jobs, newest first.
    async fn key_jobs(&self) -> Result<Vec<KeyJob>, StoreError>;
}

/// Mounts.
#[async_trait]
pub trait MountReads: Send + Sync + 'static {
    /// All mounts, by path.
    async fn list_mounts(&self) -> Result<Vec<Mount>, StoreError>;
    /// One mount by path.
    async fn mount(&self, path: &str) -> Result<Option<Mount>, StoreError>;
}

/// Secrets and their versions.
#[async_trait]
pub trait SecretReads: Send + Sync + 'static {
    /// A secret's metadata.
    async fn secret(&self, mount_id: Uuid, path: &str) -> Result<Option<SecretMeta>, StoreError>;
    /// One version of a secret.
    async fn version(&self, secret_id: Uuid, version: u64) -> Result<Option<SecretVersion>, StoreError>;
    /// A secret and one of its versions (the current one when `version` is `None`; `None` when
    /// that version is not stored), in one round trip.
    async fn secret_version(
        &self,
        mount_id: Uuid,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<(SecretMeta, Option<SecretVersion>)>, StoreError>;
    /// All stored versions of a secret, oldest first, without blobs.
    async fn versions(&self, secret_id: Uuid) -> Result<Vec<SecretVersion>, StoreError>;
    /// Secrets of a mount in path order, after the `after` cursor.
    async fn list_secrets(
        &self,
        mount_id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretSummary>, StoreError>;
    /// Paths of a mount's secrets that start with `prefix`, after `after`, in path order.
    async fn paths_with_prefix(
        &self,
        mount_id: Uuid,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// Live current versions of a mount's secrets after the `after` path: `(path, custom
    /// metadata, field stamps)`.
    async fn current_stamps(
        &self,
        mount_id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, BTreeMap<String, String>, BTreeMap<String, FieldStamp>)>, StoreError>;
}

/// Transit keys.
#[async_trait]
pub trait TransitReads: Send + Sync + 'static {
    /// A transit key by name.
    async fn transit_key(&self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError>;
    /// A transit mount's key names, sorted.
    async fn transit_key_names(&self, mount_id: Uuid) -> Result<Vec<String>, StoreError>;
}

/// Credential-proxy routes.
#[async_trait]
pub trait ProxyReads: Send + Sync + 'static {
    /// A credential-proxy route by name.
    async fn proxy_route(&self, name: &str) -> Result<Option<ProxyRoute>, StoreError>;
    /// Every credential-proxy route, by name.
    async fn proxy_routes(&self) -> Result<Vec<ProxyRoute>, StoreError>;
}

/// Tokens.
#[async_trait]
pub trait TokenReads: Send + Sync + 'static {
    /// The token with this digest and its ancestors, nearest first (empty when there is no such
    /// token); a chain stops at a missing ancestor, and after 64 ancestors.
    async fn token_chain(&self, digest: &str) -> Result<Vec<TokenRecord>, StoreError>;
    /// A token by its digest.
    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// A token by its accessor.
    async fn token_by_accessor(&self, accessor: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Tokens in accessor order after the cursor.
    async fn list_tokens(&self, after: Option<&str>, limit: u32) -> Result<Vec<TokenRecord>, StoreError>;
    /// A wrapped response by its wrapping token's accessor.
    async fn wrapped_response(&self, accessor: &str) -> Result<Option<WrappedResponse>, StoreError>;
}

/// Policies.
#[async_trait]
pub trait PolicyReads: Send + Sync + 'static {
    /// The stored rows of the policies with these names, live or deleted (a name with no row
    /// has none here).
    async fn policies(&self, names: &[String]) -> Result<Vec<PolicyRow>, StoreError>;
    /// The names of the policies in force.
    async fn policy_names(&self) -> Result<Vec<String>, StoreError>;
}

/// The audit chain.
#[async_trait]
pub trait AuditReads: Send + Sync + 'static {
    /// The audit chain's head `(seq, hash)`, if any entry was written.
    async fn audit_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Audit rows after `after_seq`, in seq order.
    async fn audit_rows(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRow>, StoreError>;
    /// An appender of audit rows for the single writer's own thread, where the engine has one
    /// (SQLite, whose one server process writes through one writer); `None` elsewhere.
    fn audit_appender(&self) -> Result<Option<Box<dyn AuditAppender>>, StoreError>;
    /// Gives back the space of deleted audit rows: on SQLite `PRAGMA incremental_vacuum` once
    /// the file is in incremental mode, and with `switch` it is put in that mode first (one
    /// `VACUUM`: twice the file's space, writes blocked meanwhile). PostgreSQL leaves it to
    /// autovacuum.
    async fn reclaim_space(&self, switch: bool) -> Result<SpaceReclaimed, StoreError>;
}

/// Appends audit rows synchronously, with no async hop per statement. It blocks: only the
/// audit appender's dedicated thread calls it. Its commits are not yet durable: they are once a
/// later [`AuditAppender::sync`] has returned, so one sync serves every batch committed before it.
pub trait AuditAppender: Send {
    /// The chain's head `(seq, hash)`, if any entry was written.
    fn head(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Commits `rows` (in seq order) and moves the head to the last, atomically, only if the
    /// stored head is still `expected`; `false` when it moved (nothing was written).
    fn append_after(&mut self, expected: &(u64, Vec<u8>), rows: &[AuditRow]) -> Result<bool, StoreError>;
    /// Makes every append committed so far durable.
    fn sync(&mut self) -> Result<(), StoreError>;
}

/// One write transaction. Dropping it without `commit` rolls it back.
#[async_trait]
pub trait StoreTx:
    IntegrityTx + KeyTx + MountTx + SecretTx + TransitTx + ProxyTx + TokenTx + PolicyTx + AuditTx + AuthTx + Send
{
    /// Commits durably.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// Commits without waiting for the disk: a crash of the machine may lose this transaction
    /// (whole, never part of it), and the next durable commit makes it durable too (both engines
    /// sync their log in order). Only for work that is simply redone when lost.
    async fn commit_unsynced(self: Box<Self>) -> Result<(), StoreError>;
    /// Marks a point that [`StoreTx::rollback_to_savepoint`] returns to.
    async fn savepoint(&mut self) -> Result<(), StoreError>;
    /// Forgets the last savepoint, keeping its changes.
    async fn release_savepoint(&mut self) -> Result<(), StoreError>;
    /// Undoes everything since the last savepoint.
    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError>;
    /// A system value.
    async fn system_value(&mut self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a system value.
    async fn set_system_value(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
}

/// Untrusted storage inside a write transaction.
#[async_trait]
pub trait IntegrityTx: Send {
    /// Installs row keys for this transaction only (initialisation and the one-time upgrade,
    /// which make the integrity key they commit).
    fn authenticate_rows(&mut self, integrity: &Key256, cluster_id: &str);
    /// Whether any table holds a row (key-check values and schema bookkeeping aside).
    async fn holds_rows(&mut self) -> Result<bool, StoreError>;
    /// Records the MAC layout each table's rows are written under (initialisation, upgrade).
    async fn record_layouts(&mut self) -> Result<(), StoreError>;
    /// Re-MACs the rows of each table whose recorded layout is older than this binary's: each
    /// row is verified under its old layout first (the first that fails stops the step, naming
    /// its table and key). Returns `(table, from layout, to layout, rows)` per table changed.
    async fn relayout_rows(&mut self) -> Result<Vec<(String, u32, u32, u64)>, StoreError>;
    /// The one-time upgrade of a database written before rows were authenticated: gives every
    /// row of every MAC'd table its MAC, trusting it as found, and a tombstone to every policy a
    /// token names that has no row. Returns how many rows each table had.
    async fn authenticate_existing_rows(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
}

/// Keys inside a write transaction: key checks, wrapped keys, re-encryption jobs and the re-sealed blobs they store.
#[async_trait]
pub trait KeyTx: Send {
    /// Stored key-check values, read inside the transaction: `(kek tag, check value)`.
    async fn kek_checks(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// How many wrapped keys each KEK tag wraps, read inside the transaction.
    async fn kek_usage(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
    /// Stores the key-check value of a KEK tag that has none (never replaces one: a tag that
    /// has a value already is an error).
    async fn insert_kek_check(&mut self, tag: &str, check: &[u8]) -> Result<(), StoreError>;
    /// Stores a wrapped key.
    async fn insert_wrapped_key(
        &mut self,
        domain: &str,
        owner: Uuid,
        version: u32,
        key: &WrappedKey,
    ) -> Result<(), StoreError>;
    /// A wrapped key, read inside the transaction.
    async fn wrapped_key(&mut self, domain: &str, owner: Uuid, version: u32) -> Result<Option<WrappedKey>, StoreError>;
    /// The newest version of a wrapped key (the active DEK of a mount), read under the lock; on
    /// PostgreSQL that version's row stays share-locked until the transaction ends, so `keys
    /// prune` on another server waits for the write that seals under it.
    async fn latest_key_version(&mut self, domain: &str, owner: Uuid) -> Result<Option<u32>, StoreError>;
    /// Every wrapped key: `(domain, owner, version, key)`.
    async fn wrapped_keys(&mut self) -> Result<Vec<(String, Uuid, u32, WrappedKey)>, StoreError>;
    /// Replaces a wrapped key (after rewrapping under another KEK).
    async fn update_wrapped_key(
        &mut self,
        domain: &str,
        owner: Uuid,
        version: u32,
        key: &WrappedKey,
    ) -> Result<(), StoreError>;
    /// Deletes one wrapped key version.
    async fn delete_wrapped_key(&mut self, domain: &str, owner: Uuid, version: u32) -> Result<(), StoreError>;
    /// Versions of a wrapped key, ascending.
    async fn key_versions(&mut self, domain: &str, owner: Uuid) -> Result<Vec<u32>, StoreError>;
    /// Of `candidates` — older data-key versions of a mount that sealed no blob when counted
    /// before this transaction — those that still seal none, for certain until it commits. On
    /// SQLite the count stands: a write reads its mount's newest version and commits under the
    /// one write lock, so a version that was older and unused when counted stays unused. On
    /// PostgreSQL a write on another server may have read a version as its newest just before
    /// a rotation and not committed yet: each write holds a share lock on the version it seals
    /// under ([`KeyTx::latest_key_version`]): a candidate so held is kept (waiting for it could
    /// deadlock on the audit head), the others are locked and counted again.
    async fn unused_data_keys(&mut self, mount_id: Uuid, candidates: &[u32]) -> Result<Vec<u32>, StoreError>;
    /// Creates a key job.
    async fn insert_key_job(&mut self, job: &KeyJob) -> Result<(), StoreError>;
    /// A key job, locked until the transaction ends (one batch of a job at a time).
    async fn key_job_for_update(&mut self, id: Uuid) -> Result<Option<KeyJob>, StoreError>;
    /// Serialises key-job starts across every server on the database until the transaction
    /// ends (a PostgreSQL advisory lock; SQLite's write lock already does).
    async fn lock_key_jobs(&mut self) -> Result<(), StoreError>;
    /// The running key job, if any.
    async fn running_key_job(&mut self) -> Result<Option<KeyJob>, StoreError>;
    /// Saves a job's progress and status.
    async fn update_key_job(&mut self, job: &KeyJob) -> Result<(), StoreError>;
    /// How many stored versions are sealed under an older data key than their mount's newest.
    async fn count_unmigrated(&mut self, mount_id: Option<Uuid>) -> Result<u64, StoreError>;
    /// Every data-key version that exists, as `(mount id, version)`, ordered.
    async fn data_key_versions(&mut self) -> Result<Vec<(Uuid, u32)>, StoreError>;
    /// Replaces versions' blobs (re-encrypted). A version destroyed or deleted since its blob
    /// was read stays so: its row is left as it is (or not found).
    async fn update_version_blobs(&mut self, rows: &[ResealedVersion]) -> Result<(), StoreError>;
}

/// Mounts inside a write transaction.
#[async_trait]
pub trait MountTx: Send {
    /// A mount by path.
    async fn mount(&mut self, path: &str) -> Result<Option<Mount>, StoreError>;
    /// Creates a mount.
    async fn insert_mount(&mut self, mount: &Mount) -> Result<(), StoreError>;
    /// Deletes a mount with all its secrets, versions and wrapped keys; returns how many wrapped
    /// keys were deleted.
    async fn delete_mount(&mut self, mount_id: Uuid) -> Result<u64, StoreError>;
    /// Replaces a mount's engine configuration.
    async fn update_mount_config(&mut self, mount_id: Uuid, config: &serde_json::Value) -> Result<(), StoreError>;
}

/// Secrets and their versions inside a write transaction.
#[async_trait]
pub trait SecretTx: Send {
    /// A secret's metadata, locked for update until the transaction ends.
    async fn secret_for_update(&mut self, mount_id: Uuid, path: &str) -> Result<Option<SecretMeta>, StoreError>;
    /// Creates a secret's metadata.
    async fn insert_secret(&mut self, meta: &SecretMeta) -> Result<(), StoreError>;
    /// Updates a secret's metadata.
    async fn update_secret(&mut self, meta: &SecretMeta) -> Result<(), StoreError>;
    /// Deletes a secret and all its versions.
    async fn delete_secret(&mut self, secret_id: Uuid) -> Result<(), StoreError>;
    /// One version of a secret.
    async fn version(&mut self, secret_id: Uuid, version: u64) -> Result<Option<SecretVersion>, StoreError>;
    /// Stores a new version.
    async fn insert_version(&mut self, secret_id: Uuid, version: &SecretVersion) -> Result<(), StoreError>;
    /// Sets or clears a version's soft-deletion time.
    async fn set_deletion_time(&mut self, secret_id: Uuid, version: u64, at: Option<Nanos>) -> Result<(), StoreError>;
    /// Destroys a version for good: its blob is overwritten with NULL.
    async fn destroy_version(&mut self, secret_id: Uuid, version: u64) -> Result<(), StoreError>;
    /// Deletes every version below `version`.
    async fn delete_versions_below(&mut self, secret_id: Uuid, version: u64) -> Result<(), StoreError>;
}

/// Transit keys inside a write transaction.
#[async_trait]
pub trait TransitTx: Send {
    /// A transit key, locked until the transaction ends.
    async fn transit_key_for_update(&mut self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError>;
    /// Creates a transit key.
    async fn insert_transit_key(&mut self, key: &TransitKey) -> Result<(), StoreError>;
    /// Saves a transit key's settings and versions.
    async fn update_transit_key(&mut self, key: &TransitKey) -> Result<(), StoreError>;
    /// Deletes a transit key with its wrapped versions; returns how many versions were deleted.
    async fn delete_transit_key(&mut self, id: Uuid) -> Result<u64, StoreError>;
}

/// Credential-proxy routes inside a write transaction.
#[async_trait]
pub trait ProxyTx: Send {
    /// A credential-proxy route, locked until the transaction ends.
    async fn proxy_route(&mut self, name: &str) -> Result<Option<ProxyRoute>, StoreError>;
    /// Replaces a credential-proxy route (`replace`), or creates it; `false` when it was to be
    /// created but exists (another writer got there first).
    async fn put_proxy_route(&mut self, route: &ProxyRoute, replace: bool) -> Result<bool, StoreError>;
    /// Deletes a credential-proxy route; returns whether it existed.
    async fn delete_proxy_route(&mut self, name: &str) -> Result<bool, StoreError>;
}

/// Tokens inside a write transaction.
#[async_trait]
pub trait TokenTx: Send {
    /// Stores a token record.
    async fn insert_token(&mut self, token: &TokenRecord) -> Result<(), StoreError>;
    /// A token by accessor, inside the transaction.
    async fn token_by_accessor(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// A token by accessor, share-locked until the transaction ends on PostgreSQL (a revocation
    /// on another server waits for this transaction), re-read after any wait.
    async fn token_locked(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Accessors of the live (unrevoked) direct children of a token.
    async fn child_accessors(&mut self, accessor: &str) -> Result<Vec<String>, StoreError>;
    /// Marks a token revoked.
    async fn revoke_token(&mut self, accessor: &str) -> Result<(), StoreError>;
    /// Moves a token's expiry (renewal).
    async fn set_token_expiry(&mut self, accessor: &str, expires_at: Nanos) -> Result<(), StoreError>;
    /// Takes one request of a use-limited token, row-locked: the uses it has left after this one,
    /// or `None` when it had none (revoked, used up, or not use-limited). Taking the last use
    /// revokes it in the same write.
    async fn take_token_use(&mut self, accessor: &str) -> Result<Option<u64>, StoreError>;
    /// Stores a wrapped response.
    async fn insert_wrapped_response(&mut self, w: &WrappedResponse) -> Result<(), StoreError>;
    /// Removes and returns a wrapped response (row-locked: two unwraps never both get it).
    async fn take_wrapped_response(&mut self, accessor: &str) -> Result<Option<WrappedResponse>, StoreError>;
    /// Deletes wrapped responses expired at `now`; returns how many.
    async fn delete_expired_wrapped(&mut self, now: Nanos) -> Result<u64, StoreError>;
    /// Records a use of a token.
    async fn touch_token(&mut self, accessor: &str, at: Nanos) -> Result<(), StoreError>;
}

/// Login methods, read outside a transaction.
#[async_trait]
pub trait AuthReads: Send + Sync + 'static {
    /// Every auth mount, by path.
    async fn auth_mounts(&self) -> Result<Vec<AuthMount>, StoreError>;
    /// The AppRole roles of a mount, by name.
    async fn approle_roles(&self, mount_id: Uuid) -> Result<Vec<AppRole>, StoreError>;
    /// One role.
    async fn approle_role(&self, mount_id: Uuid, name: &str) -> Result<Option<AppRole>, StoreError>;
    /// The role a role ID names.
    async fn approle_role_with_id(&self, mount_id: Uuid, role_id: &str) -> Result<Option<AppRole>, StoreError>;
    /// The secret IDs of a role (by its row key).
    async fn approle_secret_ids(&self, role: &str) -> Result<Vec<SecretIdRecord>, StoreError>;
    /// A secret ID by accessor.
    async fn approle_secret_id(&self, accessor: &str) -> Result<Option<SecretIdRecord>, StoreError>;
    /// A secret ID by digest.
    async fn approle_secret_id_by_digest(&self, digest: &str) -> Result<Option<SecretIdRecord>, StoreError>;
    /// The users of a userpass mount, by name.
    async fn userpass_users(&self, mount_id: Uuid) -> Result<Vec<User>, StoreError>;
    /// One user.
    async fn userpass_user(&self, mount_id: Uuid, name: &str) -> Result<Option<User>, StoreError>;
    /// The failed-login count kept under `id`.
    async fn login_failures(&self, id: &str) -> Result<Option<LoginFailures>, StoreError>;
    /// The settings documents of `kind` on a mount, by name.
    async fn auth_items(&self, mount_id: Uuid, kind: &str) -> Result<Vec<AuthItem>, StoreError>;
    /// One settings document.
    async fn auth_item(&self, mount_id: Uuid, kind: &str, name: &str) -> Result<Option<AuthItem>, StoreError>;
}

/// Login methods inside a write transaction.
#[async_trait]
pub trait AuthTx: Send {
    /// An auth mount by path.
    async fn auth_mount(&mut self, path: &str) -> Result<Option<AuthMount>, StoreError>;
    /// Stores a new auth mount.
    async fn insert_auth_mount(&mut self, mount: &AuthMount) -> Result<(), StoreError>;
    /// Deletes an auth mount with its roles and their secret IDs.
    async fn delete_auth_mount(&mut self, id: Uuid) -> Result<(), StoreError>;
    /// A role, locked until the transaction ends on PostgreSQL.
    async fn approle_role_locked(&mut self, mount_id: Uuid, name: &str) -> Result<Option<AppRole>, StoreError>;
    /// A role by its role ID, locked until the transaction ends on PostgreSQL.
    async fn approle_role_by_role_id(&mut self, mount_id: Uuid, role_id: &str) -> Result<Option<AppRole>, StoreError>;
    /// Creates or replaces a role.
    async fn put_approle_role(&mut self, role: &AppRole) -> Result<(), StoreError>;
    /// Deletes a role with its secret IDs.
    async fn delete_approle_role(&mut self, role: &AppRole) -> Result<(), StoreError>;
    /// Stores a new secret ID.
    async fn insert_secret_id(&mut self, secret_id: &SecretIdRecord) -> Result<(), StoreError>;
    /// A secret ID by digest, locked until the transaction ends on PostgreSQL (uses are
    /// counted under the lock).
    async fn secret_id_locked(&mut self, digest: &str) -> Result<Option<SecretIdRecord>, StoreError>;
    /// Rewrites a secret ID (its uses left).
    async fn update_secret_id(&mut self, secret_id: &SecretIdRecord) -> Result<(), StoreError>;
    /// Deletes a secret ID; returns whether it existed.
    async fn delete_secret_id(&mut self, accessor: &str) -> Result<bool, StoreError>;
    /// The accessors of the live tokens a login issued: of an auth mount, and within it of a
    /// role, and within that of a secret ID (empty parts match everything).
    async fn tokens_of_origin(&mut self, origin: &TokenOrigin) -> Result<Vec<String>, StoreError>;
    /// A user, locked until the transaction ends on PostgreSQL.
    async fn userpass_user_locked(&mut self, mount_id: Uuid, name: &str) -> Result<Option<User>, StoreError>;
    /// Creates or replaces a user.
    async fn put_userpass_user(&mut self, user: &User) -> Result<(), StoreError>;
    /// Deletes a user.
    async fn delete_userpass_user(&mut self, user: &User) -> Result<(), StoreError>;
    /// The failed-login count kept under `id`, locked until the transaction ends on PostgreSQL.
    async fn login_failures_locked(&mut self, id: &str) -> Result<Option<LoginFailures>, StoreError>;
    /// Sets (or with `None` clears) the failed-login count kept under `id`.
    async fn set_login_failures(&mut self, id: &str, failures: Option<&LoginFailures>) -> Result<(), StoreError>;
    /// Creates or replaces a settings document.
    async fn put_auth_item(&mut self, item: &AuthItem) -> Result<(), StoreError>;
    /// Deletes a settings document; returns whether it existed.
    async fn delete_auth_item(&mut self, mount_id: Uuid, kind: &str, name: &str) -> Result<bool, StoreError>;
}

/// Policies inside a write transaction.
#[async_trait]
pub trait PolicyTx: Send {
    /// Creates or replaces a policy.
    async fn put_policy(&mut self, policy: &Policy) -> Result<(), StoreError>;
    /// Deletes a policy, leaving its tombstone; returns whether it was in force.
    async fn delete_policy(&mut self, name: &str) -> Result<bool, StoreError>;
}

/// The audit chain inside a write transaction.
#[async_trait]
pub trait AuditTx: Send {
    /// The audit head, locked until the transaction ends (one appender at a time).
    async fn audit_head_for_update(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Appends rows (consecutive seqs, in order) and moves the head to the last one.
    async fn append_audit(&mut self, rows: &[AuditRow]) -> Result<(), StoreError>;
    /// Deletes the rows after `after` up to and including `through` (archived); returns how many.
    async fn delete_audit_rows(&mut self, after: u64, through: u64) -> Result<u64, StoreError>;
}
