//! Request and response bodies of the native API (`/api/v1`), shared by the server and the
//! CLI's client. Types that can carry secret values have a redacting `Debug`.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /api/v1/mounts`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MountCreateRequest {
    /// Mount name: one segment of `A-Z a-z 0-9 . _ -`.
    pub path: String,
    /// `kv` (default) or `transit`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Default age after which this project's fields are reported stale (e.g. `90d`).
    #[serde(default)]
    pub rotate_after: Option<String>,
}

fn default_kind() -> String {
    "kv".into()
}

/// A mount.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MountInfo {
    /// Mount name.
    pub path: String,
    /// `kv` or `transit`.
    pub kind: String,
    /// Random identity (bound into every ciphertext).
    pub id: String,
    /// RFC 3339.
    pub created_time: String,
}

/// `GET /api/v1/mounts`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MountList {
    /// Mounts by name.
    pub mounts: Vec<MountInfo>,
}

/// `DELETE /api/v1/mounts/{mount}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MountDeleted {
    /// The deleted mount.
    pub path: String,
    /// How many wrapped data keys were destroyed with it (crypto-shredding).
    pub keys_shredded: u64,
}

/// `PATCH /api/v1/mounts/{mount}/secrets/{path}`: one new version with these changes.
#[derive(Default, Serialize, Deserialize, ToSchema)]
pub struct SecretWriteRequest {
    /// Fields to add or replace (any JSON values; the env workflow uses strings).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub set: Map<String, Value>,
    /// Field names to remove (each must exist).
    #[serde(default)]
    pub unset: Vec<String>,
    /// Check-and-set: the current version you expect (0 = create only).
    #[serde(default)]
    pub cas: Option<u64>,
    /// How long these fields may go unchanged before they are reported stale (e.g. `30d`).
    #[serde(default)]
    pub rotate_after: Option<String>,
}

impl fmt::Debug for SecretWriteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretWriteRequest")
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .field("unset", &self.unset)
            .field("cas", &self.cas)
            .finish()
    }
}

/// What a write changed, by field name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WriteResult {
    /// Mount name.
    pub mount: String,
    /// Secret path.
    pub path: String,
    /// The version now current (unchanged when nothing changed).
    pub version: u64,
    /// Whether a new version was written.
    pub created: bool,
    /// New names.
    pub added: Vec<String>,
    /// Names whose value changed.
    pub changed: Vec<String>,
    /// Names set to the value they had.
    pub unchanged: Vec<String>,
    /// Names removed.
    pub removed: Vec<String>,
}

/// `POST /api/v1/mounts/{mount}/rollback/{path}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The version whose value becomes a new version.
    pub version: u64,
}

/// One field of a secret: masked unless revealed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FieldOut {
    /// Field name.
    pub name: String,
    /// The mask (e.g. `sk_test_....1234`), or the plaintext JSON value when revealed.
    #[schema(value_type = Object)]
    pub value: Value,
    /// The version in which this field last changed.
    pub version: u64,
    /// When it last changed (RFC 3339).
    pub updated_time: String,
}

impl fmt::Debug for FieldOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldOut").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}

/// `GET /api/v1/mounts/{mount}/secrets/{path}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretView {
    /// Mount name.
    pub mount: String,
    /// Secret path.
    pub path: String,
    /// The version shown.
    pub version: u64,
    /// The secret's current version.
    pub current_version: u64,
    /// When the version shown was written.
    pub created_time: String,
    /// Accessor of the token that wrote it.
    pub created_by: String,
    /// Whether `value`s are plaintext (`?reveal=true`) or masks.
    pub revealed: bool,
    /// Fields by name.
    pub fields: Vec<FieldOut>,
}

/// Query of a secret read.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct ReadQuery {
    /// A specific version (default: current).
    pub version: Option<u64>,
    /// Return plaintext values (needs `read`; audited).
    pub reveal: Option<bool>,
    /// Only this field.
    pub field: Option<String>,
    /// A reveal made to export the values (recorded as `secrets.export`).
    pub export: Option<bool>,
}

/// Pagination of lists.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct ListQuery {
    /// Page size (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// A secret path (environment) of a mount.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretListItem {
    /// Path.
    pub path: String,
    /// Current version.
    pub version: u64,
    /// Number of fields.
    pub fields: usize,
    /// Last change (RFC 3339).
    pub updated_time: String,
}

/// `GET /api/v1/mounts/{mount}/secrets`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretList {
    /// One page, by path.
    pub items: Vec<SecretListItem>,
    /// Cursor for the next page, if any.
    pub next: Option<String>,
}

/// One version in a secret's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionOut {
    /// Version number.
    pub version: u64,
    /// RFC 3339.
    pub created_time: String,
    /// Accessor of the writing token.
    pub created_by: String,
    /// RFC 3339, or empty when not deleted.
    pub deletion_time: String,
    /// Whether destroyed.
    pub destroyed: bool,
    /// Field names in that version.
    pub fields: Vec<String>,
}

/// `GET /api/v1/mounts/{mount}/history/{path}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Mount name.
    pub mount: String,
    /// Secret path.
    pub path: String,
    /// Stored versions, oldest first.
    pub versions: Vec<VersionOut>,
}

/// `PUT /v1/sys/init` (Vault's shape). The root token is shown once.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InitResponse {
    /// Always empty: keyward has no unseal keys.
    pub keys: Vec<String>,
    /// Always empty.
    pub keys_base64: Vec<String>,
    /// The root token.
    pub root_token: String,
}

impl fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitResponse { root_token: [REDACTED] }")
    }
}

/// `GET /v1/sys/health` (Vault's shape, no envelope).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Whether `operator init` has run.
    pub initialized: bool,
    /// Never sealed while the master key is loaded.
    pub sealed: bool,
    /// No standbys: every replica serves.
    pub standby: bool,
    /// Vault compatibility.
    pub replication_performance_mode: String,
    /// Vault compatibility.
    pub replication_dr_mode: String,
    /// Unix seconds.
    pub server_time_utc: i64,
    /// Keyward's version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub storage_type: String,
    /// The trusted clock against the wall clock: `trusted_time`, `drift_seconds` and, past a
    /// minute of drift, a `warning`.
    #[schema(value_type = Object)]
    pub clock: Value,
    /// Audit state: `{"enabled", "primary": "ok"|"failing", "counters": {…}}`.
    #[schema(value_type = Object)]
    pub audit: Value,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenCreateRequest {
    /// Policy names (a non-root creator can only pass on policies it holds).
    #[serde(default)]
    pub policies: Vec<String>,
    /// Lifetime, Go-style (`1h`, `30m`, `32d`); default 32 days.
    #[serde(default)]
    pub ttl: Option<String>,
    /// A label.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Source addresses the token may be used from (CIDRs).
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    /// Not revoked with its creator (an orphan; needs `sudo` on `sys/tokens`).
    #[serde(default)]
    pub no_parent: bool,
    /// Do not add the `default` policy.
    #[serde(default)]
    pub no_default_policy: bool,
    /// Its own request rate limit (`100/s`, `600/m`, `1000/h`), within the creator's; by default
    /// the creator's, else the server's per-token limit (off unless `--rate-limit` sets one).
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// A hard cap on its lifetime from creation, renewals included (Go-style).
    #[serde(default)]
    pub explicit_max_ttl: Option<String>,
    /// Make it periodic: each renewal extends it by this period (Go-style), with no maximum but
    /// `explicit_max_ttl`.
    #[serde(default)]
    pub period: Option<String>,
    /// Limit it to this many requests (0: unlimited); a use-limited token cannot create tokens.
    #[serde(default)]
    pub num_uses: u64,
    /// `false`: it cannot be renewed.
    #[serde(default)]
    pub renewable: Option<bool>,
    /// Metadata shown by lookups (at most 64 entries).
    #[serde(default)]
    pub meta: std::collections::BTreeMap<String, String>,
}

/// A token's record (never the token itself).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Public identifier.
    pub accessor: String,
    /// Label.
    pub display_name: String,
    /// Policies.
    pub policies: Vec<String>,
    /// The creating token's accessor.
    pub parent_accessor: Option<String>,
    /// RFC 3339.
    pub created_time: String,
    /// RFC 3339, or null for no expiry.
    pub expire_time: Option<String>,
    /// Lifetime it was created with (Go-style; `0s` = none).
    pub ttl: String,
    /// RFC 3339 of the last use (updated at most once a minute).
    pub last_used: Option<String>,
    /// Whether revoked.
    pub revoked: bool,
    /// Allowed source CIDRs (empty = anywhere).
    pub allowed_cidrs: Vec<String>,
    /// Its own request rate limit, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Its type (`service`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Its hard lifetime cap from creation (Go-style), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_max_ttl: Option<String>,
    /// A periodic token's period (Go-style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Requests it may still make (0: unlimited).
    #[serde(default)]
    pub num_uses: u64,
    /// Whether it may be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// Metadata given at creation (a login's is under `login`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub meta: std::collections::BTreeMap<String, String>,
    /// The login that issued it, if a login did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<TokenLogin>,
}

/// Which login issued a token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenLogin {
    /// The auth mount's id.
    pub auth_mount: String,
    /// The role (or user) it logged in as.
    pub role: String,
    /// The accessor of the secret ID it logged in with, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_id_accessor: String,
    /// Metadata the login attached.
    pub meta: std::collections::BTreeMap<String, String>,
}

/// A new token: the only time its value is shown.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The token (`kw_…`).
    pub token: String,
    /// Its record.
    pub info: TokenInfo,
}

impl fmt::Debug for TokenCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCreated").field("token", &"[REDACTED]").field("info", &self.info).finish()
    }
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    /// One page, by accessor.
    pub tokens: Vec<TokenInfo>,
    /// Cursor for the next page.
    pub next: Option<String>,
}

/// A token presented in a body (lookup, revoke), never in a URL.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenBody {
    /// The token.
    pub token: String,
}

impl fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenBody([REDACTED])")
    }
}

/// How many tokens a revocation revoked (the token and its descendants).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    /// Count.
    pub revoked: u64,
}

/// `PUT /api/v1/policies/{name}`: rules, or a TOML/JSON policy document.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PolicyWriteRequest {
    /// Rules `{path, capabilities}`.
    #[serde(default)]
    pub rules: Option<Vec<PolicyRule>>,
    /// A policy file: TOML `[[rules]]` tables or JSON `{"rules": [...]}`.
    #[serde(default)]
    pub document: Option<String>,
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// `<mount>/<secret path>` (or `sys/…`), with an optional trailing `*` and `+` segments.
    pub path: String,
    /// Granted capabilities: `list`, `read`, `create`, `update`, `patch`, `delete`, `destroy`,
    /// `use`, `sudo`, `deny`.
    pub capabilities: Vec<String>,
}

/// A policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyOut {
    /// Name.
    pub name: String,
    /// Rules.
    pub rules: Vec<PolicyRule>,
}

/// `GET /api/v1/policies`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    /// Names, built-ins included.
    pub policies: Vec<String>,
}

/// `GET /api/v1/audit`: filters of a search or tail.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Entries after this seq.
    pub after: Option<u64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Only the last N matching entries (a tail).
    pub last: Option<u32>,
    /// Only entries newer than this duration (e.g. `1h`).
    pub since: Option<String>,
    /// Only this accessor.
    pub accessor: Option<String>,
    /// Only `<mount>/<path>` matching this glob (Vault syntax: `careflex/*`).
    pub path: Option<String>,
    /// Only failed requests (status ≥ 400).
    pub failed: Option<bool>,
    /// Only this operation.
    pub operation: Option<String>,
}

/// A page of audit entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Matching entries, in seq order.
    pub entries: Vec<AuditEntryOut>,
    /// Cursor (last seq scanned) for the next call.
    pub next: u64,
}

/// One audit record: names, never secret values or tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryOut {
    /// Position in the chain (gap-free from 1).
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    /// The request's id (`X-Request-Id`).
    pub request_id: String,
    /// Accessor of the caller's token, or empty when unauthenticated.
    pub accessor: String,
    /// The client address.
    pub remote_addr: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// The operation, e.g. `secrets.read`, `tokens.create`, `auth.failed`.
    pub operation: String,
    /// The mount concerned, if any.
    pub mount: String,
    /// The path concerned (secret path, policy name, accessor …).
    pub path: String,
    /// Field names touched (never values).
    pub fields: Vec<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Error code, empty on success.
    pub error: String,
    /// Operation-specific facts (reveal, counts, correlation HMACs …).
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

/// `GET /api/v1/audit/verify`: the result of walking the chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditVerifyReport {
    /// Whether the whole chain is intact (and covers the stored head and the anchor).
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// Last sequence number found.
    pub last_seq: u64,
    /// Hash of the last entry (hex).
    pub last_hash: String,
    /// The first broken sequence number.
    pub broken_seq: Option<u64>,
    /// Why: modified, deleted, reordered, inserted or truncated, in a sentence.
    pub reason: Option<String>,
    /// The last archived entry: the database's log begins after it (0: nothing archived).
    #[serde(default)]
    pub archived_seq: u64,
    /// The archive's check, when asked for (`archive=true` or `archive_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveCheck>,
}

/// The check of an audit archive directory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArchiveCheck {
    /// Whether its segments chain from entry 1 to the database's archived head.
    pub ok: bool,
    /// Segments checked.
    pub segments: u64,
    /// Entries in them.
    pub entries: u64,
    /// The last entry they cover.
    pub last_seq: u64,
    /// Segments past the archived head, left by an interrupted run (the next run moves them to `superseded/`).
    pub unfinished: Vec<String>,
    /// The segment where the check failed.
    pub broken_file: Option<String>,
    /// Why: modified, dropped, renamed, overlapping…, in a sentence.
    pub reason: Option<String>,
}

/// `GET /api/v1/audit/verify` query: an external anchor to check against, and the archive.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct VerifyQuery {
    /// Anchored seq.
    pub anchor_seq: Option<u64>,
    /// Anchored hash (hex).
    pub anchor_hash: Option<String>,
    /// Also check the server's archive directory end to end.
    pub archive: Option<bool>,
    /// Also check this archive directory (as the server sees it) end to end.
    pub archive_dir: Option<String>,
}

/// `POST /api/v1/audit/archive`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// Archive entries older than this (e.g. `30d`).
    pub before: Option<String>,
    /// SQLite: switch to incremental vacuum once (one `VACUUM`) and give the space back.
    #[serde(default)]
    pub vacuum: bool,
}

/// `POST /api/v1/audit/archive`: what the run did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArchiveReport {
    /// Segment files written (in the archive directory), in order.
    pub segments: Vec<String>,
    /// Entries archived and deleted from the database.
    pub entries: u64,
    /// The last archived entry after the run.
    pub archived_seq: u64,
    /// What an interrupted earlier run had left: temporary files removed, segments past the
    /// archived head moved to `superseded/` in the archive directory.
    pub set_aside: Vec<String>,
    /// Space given back.
    pub space: Option<SpaceReport>,
    /// Why the run stopped early, after archiving what `segments` says.
    pub error: Option<String>,
}

/// Space given back to the file system after an archive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SpaceReport {
    /// What was done.
    pub action: String,
    /// The database file's size before (SQLite).
    pub bytes_before: Option<u64>,
    /// The database file's size after (SQLite).
    pub bytes_after: Option<u64>,
}

/// `POST /api/v1/audit/anchor`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Anchored {
    /// The head anchored.
    pub seq: u64,
}

/// `POST /api/v1/mounts/{mount}/keys/rotate`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DekRotated {
    /// Mount name.
    pub mount: String,
    /// The new (active) data-key version.
    pub version: u32,
}

/// `POST /api/v1/keys/rewrap`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Rewrapped {
    /// Keys moved under the active master key.
    pub rewrapped: u64,
}

/// `POST /api/v1/mounts/{mount}/keys/prune`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Pruned {
    /// Mount name.
    pub mount: String,
    /// Deleted data-key versions.
    pub deleted: Vec<u32>,
    /// Older versions kept because blobs still use them (re-encrypt them first).
    pub kept: Vec<u32>,
}

/// How many wrapped keys one master key holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MasterKeyUsage {
    /// Its tag.
    pub tag: String,
    /// Whether it is in the configured keyring.
    pub configured: bool,
    /// Whether it is the active (wrapping) key.
    pub active: bool,
    /// Keys it wraps (data keys, token key, audit key).
    pub wrapped_keys: u64,
    /// Configured, not active and wrapping nothing: safe to remove from the keyring.
    pub retirable: bool,
}

/// How many blobs one data-key version of a mount still seals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataKeyUsage {
    /// Mount name.
    pub mount: String,
    /// Data-key version.
    pub version: u32,
    /// The tag of the master key wrapping it.
    pub kek_tag: String,
    /// Secret versions sealed under it.
    pub blobs: u64,
}

/// `GET /api/v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyStatus {
    /// Per master key.
    pub keks: Vec<MasterKeyUsage>,
    /// Per mount data-key version.
    pub deks: Vec<DataKeyUsage>,
}

/// A long key job running inside the server (`keys migrate`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyJob {
    /// Its id (a UUID).
    pub id: String,
    /// `migrate`: re-encrypt secret versions under the newest data key.
    pub kind: String,
    /// The mount's name, or null for every kv mount.
    pub mount: Option<String>,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Rows to process when the job started.
    pub total: u64,
    /// Rows processed.
    pub done: u64,
    /// The server instance that started or resumed it.
    pub owner: String,
    /// Start time (RFC 3339).
    pub started_time: String,
    /// Last progress (RFC 3339).
    pub updated_time: String,
    /// Why it failed, if it did (names mount/path/version, never a value).
    pub error: String,
}

/// `GET /api/v1/doctor`: what the checks found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DoctorReport {
    /// Whether every check passed.
    pub ok: bool,
    /// Every configured master key matches its key-check value.
    pub master_keys_ok: bool,
    /// An encrypt/decrypt round trip with a fresh key worked.
    pub self_test_ok: bool,
    /// The audit chain verified.
    pub audit_ok: bool,
    /// Every row that decides who may do what holds its MAC.
    pub rows_ok: bool,
    /// Such rows checked.
    pub rows_checked: u64,
    /// Blobs decrypted per mount (only with `verify_all`).
    pub mounts: BTreeMap<String, u64>,
    /// Blobs checked in all.
    pub checked: u64,
    /// Versions that failed to decrypt: `mount/path version N` (never a value).
    pub failures: Vec<String>,
    /// Problems found by the other checks.
    pub problems: Vec<String>,
    /// Vault policy rules that grant nothing as stored (`policy: "rule" (why)`); not a failure.
    #[serde(default)]
    pub inert_rules: Vec<String>,
}

/// `POST /api/v1/keys/migrate`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct MigrateRequest {
    /// Only this mount (default: every kv mount).
    #[serde(default)]
    pub mount: Option<String>,
}

/// `GET /api/v1/doctor` query.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct DoctorQuery {
    /// Also decrypt every stored blob.
    pub verify_all: Option<bool>,
}

/// `GET /api/v1/stale` query.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct StaleQuery {
    /// Only this mount.
    pub mount: Option<String>,
    /// Override every limit with this age (e.g. `90d`).
    pub older_than: Option<String>,
}

/// A stale field.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StaleOut {
    /// Mount name.
    pub mount: String,
    /// Secret path.
    pub path: String,
    /// Field name.
    pub field: String,
    /// Version in which it last changed.
    pub version: u64,
    /// When it last changed (RFC 3339).
    pub changed_time: String,
    /// Its age (Go-style).
    pub age: String,
    /// The limit that applied (Go-style).
    pub limit: String,
}

/// `PUT /api/v1/proxy-routes/{name}`: a credential-proxy route.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyRouteRequest {
    /// The upstream origin, `https://host[:port]`.
    pub upstream: String,
    /// `MOUNT/PATH` of the credential; the path may hold one `{account}` segment.
    pub secret: String,
    /// Injection recipes: `bearer:FIELD`, `header:NAME=TEMPLATE`, `basic:USER:PASS`,
    /// `query:NAME=FIELD`, `hmac-sha256-query:FIELD`.
    pub inject: Vec<String>,
    /// Per-route rate limit such as `20/s`.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Upstream timeout, Go-style (`10s`, the default).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Let this route use an `http://` upstream or an address that is not global unicast (an
    /// internal service); refused unless the server runs with `--proxy-allow-insecure`.
    #[serde(default)]
    pub allow_insecure: bool,
}

/// A credential-proxy route (no secret in it).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProxyRouteOut {
    /// Name.
    pub name: String,
    /// Upstream origin.
    pub upstream: String,
    /// `MOUNT/PATH` of the credential.
    pub secret: String,
    /// Injection recipes.
    pub inject: Vec<String>,
    /// Per-route rate limit.
    pub rate_limit: Option<String>,
    /// Upstream timeout.
    pub timeout: String,
    /// Whether the route may reach `http://` and non-global addresses (with the server's
    /// `--proxy-allow-insecure`).
    #[serde(default)]
    pub allow_insecure: bool,
    /// Creation time.
    pub created_time: String,
    /// Last change.
    pub updated_time: String,
}

/// `GET /api/v1/proxy-routes`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProxyRouteList {
    /// Every route.
    pub routes: Vec<ProxyRouteOut>,
}

/// `GET /api/v1/mounts/{mount}/diff?a=…&b=…`.
#[derive(Debug, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// First environment.
    pub a: String,
    /// Second environment.
    pub b: String,
}

/// How two environments differ, by name only (compared on the server).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiffOut {
    /// Mount.
    pub mount: String,
    /// First environment.
    pub a: String,
    /// Second environment.
    pub b: String,
    /// Names only in `a`.
    pub only_in_a: Vec<String>,
    /// Names only in `b`.
    pub only_in_b: Vec<String>,
    /// Names whose values differ.
    pub different: Vec<String>,
    /// Names whose values are equal.
    pub same: Vec<String>,
}
