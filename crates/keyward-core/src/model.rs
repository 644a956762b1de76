//! Domain records, as stored and as returned to callers (never holding plaintext).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CoreError, Nanos};

/// Versions kept per secret unless configured otherwise (as Vault).
pub const DEFAULT_MAX_VERSIONS: u32 = 10;

/// The engine a mount runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// Versioned key/value secrets (a project).
    Kv,
    /// Encryption as a service.
    Transit,
}

impl MountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kv => "kv",
            Self::Transit => "transit",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "kv" => Ok(Self::Kv),
            "transit" => Ok(Self::Transit),
            other => Err(CoreError::InvalidInput(format!("unknown mount kind {other:?} (expected kv or transit)"))),
        }
    }
}

/// A mount: a kv project or a transit engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Random identity, bound into every blob's AAD.
    pub id: Uuid,
    /// Its name (one path segment).
    pub path: String,
    /// The engine.
    pub kind: MountKind,
    /// Creation time.
    pub created_at: Nanos,
    /// Engine configuration (JSON object).
    pub config: serde_json::Value,
}

/// A secret's metadata (Vault KV v2 semantics). Holds nothing derived from a plaintext.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretMeta {
    /// Random identity made when the path is first written, never reused; bound into AADs.
    pub id: Uuid,
    /// The owning mount.
    pub mount_id: Uuid,
    /// The path inside the mount.
    pub path: String,
    /// Newest version number.
    pub current_version: u64,
    /// Oldest version still stored.
    pub oldest_version: u64,
    /// How many versions to keep.
    pub max_versions: u32,
    /// Whether writes must carry a check-and-set version.
    pub cas_required: bool,
    /// Free-form string metadata.
    pub custom_metadata: BTreeMap<String, String>,
    /// First write.
    pub created_at: Nanos,
    /// Last write.
    pub updated_at: Nanos,
    /// Versions are soft-deleted this long after creation (0 = never), in seconds.
    pub delete_version_after_secs: i64,
}

impl SecretMeta {
    /// The metadata of a path written for the first time (no version yet, mount defaults).
    pub fn new(mount_id: Uuid, path: &str, now: Nanos) -> Self {
        Self {
            id: Uuid::new_v4(),
            mount_id,
            path: path.to_owned(),
            current_version: 0,
            oldest_version: 0,
            max_versions: 0,
            cas_required: false,
            custom_metadata: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            delete_version_after_secs: 0,
        }
    }
}

/// One stored version of a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretVersion {
    /// Version number, from 1.
    pub version: u64,
    /// The sealed value; `None` once destroyed.
    pub blob: Option<Vec<u8>>,
    /// The data-key version that sealed it.
    pub dek_version: Option<u32>,
    /// When it was written.
    pub created_at: Nanos,
    /// When it was soft-deleted, if it was.
    pub deletion_time: Option<Nanos>,
    /// Whether its blob was destroyed.
    pub destroyed: bool,
    /// Accessor of the token that wrote it.
    pub created_by: String,
    /// Per field: the version in which that field last changed, and when.
    pub field_versions: BTreeMap<String, FieldStamp>,
}

/// When a field last changed: known without decrypting anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldStamp {
    /// The version in which the field last changed.
    #[serde(rename = "v")]
    pub version: u64,
    /// The time of that version.
    #[serde(rename = "t")]
    pub changed_at: Nanos,
}

/// A token as stored: its keyed digest, never the token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// Public identifier of the token.
    pub accessor: String,
    /// HMAC-SHA256 of the token under the token key (hex).
    pub digest: String,
    /// Policy names.
    pub policies: Vec<String>,
    /// The accessor of the token that created it.
    pub parent_accessor: Option<String>,
    /// A human label.
    pub display_name: String,
    /// Creation time.
    pub created_at: Nanos,
    /// The TTL it was created with, in seconds (0 = no expiry).
    pub ttl_secs: u64,
    /// Expiry, if any.
    pub expires_at: Option<Nanos>,
    /// Last use (updated at most once a minute).
    pub last_used: Option<Nanos>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Source addresses it may be used from (CIDRs); empty = anywhere.
    pub allowed_cidrs: Vec<String>,
    /// Its own request rate limit (`100/s`), instead of the server's per-token limit.
    pub rate_limit: Option<String>,
    /// The login that issued it (empty for tokens created under another token).
    pub origin: TokenOrigin,
    /// Metadata the login attached (role name, secret-ID metadata …): shown by lookups.
    pub meta: std::collections::BTreeMap<String, String>,
    /// Its hard lifetime cap in seconds from creation (0: the server's maximum): renewals never
    /// pass it.
    pub explicit_max_ttl_secs: u64,
    /// What it is for.
    pub kind: TokenKind,
    /// A periodic token's period in seconds (0: not periodic): each renewal moves its expiry to
    /// now plus the period, with no maximum but `explicit_max_ttl`.
    pub period_secs: u64,
    /// Requests it may still make (0: unlimited); it is revoked by the request that uses the last.
    pub uses_left: u64,
    /// Whether it may be renewed.
    pub renewable: bool,
}

/// What a token is for (DESIGN §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenKind {
    /// A token for API requests.
    #[default]
    Service,
    /// A response-wrapping token: good only for `sys/wrapping/{unwrap,lookup,rewrap}`.
    Wrapping,
    /// A web UI session: presented only in the UI's session cookie, good only for `/ui` pages.
    UiSession,
}

impl TokenKind {
    /// Its name, as stored and as Vault's `type` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Service => "service",
            TokenKind::Wrapping => "wrapping",
            TokenKind::UiSession => "ui-session",
        }
    }

    /// The kind named `s`, if keyward knows it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service" => Some(TokenKind::Service),
            "wrapping" => Some(TokenKind::Wrapping),
            "ui-session" => Some(TokenKind::UiSession),
            _ => None,
        }
    }
}

/// A wrapped response (Vault's response wrapping), sealed under the wrap key with its wrapping
/// token's accessor and its creation path as AAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedResponse {
    /// The wrapping token's accessor.
    pub accessor: String,
    /// The path whose response it holds (`sys/wrapping/wrap` for arbitrary data).
    pub creation_path: String,
    /// The mount it came from (empty when none): shredding the mount deletes it.
    pub mount_id: String,
    /// The sealed response.
    pub sealed: Vec<u8>,
    /// When it was wrapped.
    pub created_at: Nanos,
    /// When it is gone.
    pub expires_at: Nanos,
}

/// Which login issued a token: revoked with its auth mount, role or secret ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOrigin {
    /// The auth mount's id (empty: not a login token).
    pub auth_mount: String,
    /// The role (or user) it logged in as.
    pub role: String,
    /// The accessor of the secret ID it logged in with.
    pub secret_id_accessor: String,
}

impl TokenRecord {
    /// A newly issued service token's record with `policies`, alive `ttl_secs` from `now` (0: no
    /// expiry): an orphan, usable from anywhere, renewable, with no limits — callers change what
    /// differs with struct update syntax.
    pub fn issued(
        (accessor, digest): (String, String),
        policies: Vec<String>,
        display_name: String,
        now: Nanos,
        ttl_secs: u64,
    ) -> Self {
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000_000);
        Self {
            accessor,
            digest,
            policies,
            parent_accessor: None,
            display_name,
            created_at: now,
            ttl_secs,
            expires_at: (ttl_secs > 0).then(|| now.saturating_add(ttl)),
            last_used: None,
            revoked: false,
            allowed_cidrs: vec![],
            rate_limit: None,
            origin: TokenOrigin::default(),
            meta: Default::default(),
            explicit_max_ttl_secs: 0,
            kind: TokenKind::Service,
            period_secs: 0,
            uses_left: 0,
            renewable: true,
        }
    }

    /// Whether the token may be used at `now`.
    pub fn is_live(&self, now: Nanos) -> bool {
        !self.revoked && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A row of a mount's secret listing (an environment), without decrypting anything.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretSummary {
    /// Path inside the mount.
    pub path: String,
    /// Current version.
    pub current_version: u64,
    /// Number of fields in the current version.
    pub field_count: usize,
    /// Last write.
    pub updated_at: Nanos,
}

/// One version in a secret's history.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    /// Version number.
    pub version: u64,
    /// When it was written.
    pub created_at: Nanos,
    /// Who wrote it (token accessor).
    pub created_by: String,
    /// Soft-deletion time, if any.
    pub deletion_time: Option<Nanos>,
    /// Whether destroyed.
    pub destroyed: bool,
    /// Field names in that version.
    pub fields: Vec<String>,
}

/// What one write changed, by field name (never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// The version written (the current one when nothing changed).
    pub version: u64,
    /// Names that did not exist before.
    pub added: Vec<String>,
    /// Names whose value changed.
    pub changed: Vec<String>,
    /// Names set to the value they already had.
    pub unchanged: Vec<String>,
    /// Names removed.
    pub removed: Vec<String>,
}

/// How many blobs one data-key version of a mount still seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DekUsage {
    /// Mount name.
    pub mount: String,
    /// Data-key version.
    pub version: u32,
    /// The KEK tag wrapping it.
    pub kek_tag: String,
    /// Secret versions sealed under it.
    pub blobs: u64,
}

/// How many wrapped keys one master-key tag holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KekUsage {
    /// The tag.
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

/// `keys status`: master keys and data keys with their users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    /// Per KEK tag.
    pub keks: Vec<KekUsage>,
    /// Per mount data-key version.
    pub deks: Vec<DekUsage>,
}

/// A stored version sealed under an older data key than its mount's newest, as a re-encryption
/// batch reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmigratedVersion {
    /// The secret's id.
    pub secret: Uuid,
    /// Its mount's id.
    pub mount: Uuid,
    /// The version number.
    pub version: u64,
    /// Where the row is stored (SQLite's row id; 0 on PostgreSQL), to find it again cheaply.
    pub row: i64,
    /// The sealed blob.
    pub blob: Vec<u8>,
    /// Its mount's newest data-key version when the row was read.
    pub newest: u32,
}

/// A version re-sealed under a newer data key, to store in place of its blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealedVersion {
    /// The secret's id.
    pub secret: Uuid,
    /// The version number.
    pub version: u64,
    /// Where the row is stored (see [`UnmigratedVersion::row`]).
    pub row: i64,
    /// The new blob.
    pub blob: Vec<u8>,
    /// The data-key version that sealed it.
    pub dek_version: u32,
}

/// A long key job running inside the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyJob {
    /// Its id.
    pub id: Uuid,
    /// `migrate`: re-encrypt secret versions under the newest data key.
    pub kind: String,
    /// The mount's id, or `None` for every kv mount.
    pub mount_id: Option<Uuid>,
    /// The mount's name, or `None` for every kv mount.
    pub mount: Option<String>,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Rows to process when the job started.
    pub total: u64,
    /// Rows processed (committed with each batch).
    pub done: u64,
    /// Where the next batch starts (`("", 0)` at first): the last `(secret id, version)` scanned
    /// on PostgreSQL, `("", row id)` on SQLite (storage order).
    pub cursor: (String, u64),
    /// The server instance that started or resumed it.
    pub owner: String,
    /// Start time.
    pub started_at: Nanos,
    /// Last progress (a heartbeat).
    pub updated_at: Nanos,
    /// Why it failed, if it did (names mount/path/version, never a value).
    pub error: String,
}

/// What `doctor` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// Whether every check passed.
    pub ok: bool,
    /// Every configured master key matches its key-check value.
    pub master_keys_ok: bool,
    /// An encrypt/decrypt round trip with a fresh key worked.
    pub self_test_ok: bool,
    /// The audit chain verified (see `audit verify` for details).
    pub audit_ok: bool,
    /// Every row that decides who may do what holds its MAC.
    #[serde(default)]
    pub rows_ok: bool,
    /// Such rows checked.
    #[serde(default)]
    pub rows_checked: u64,
    /// Blobs decrypted per mount (only with verify-all).
    pub mounts: BTreeMap<String, u64>,
    /// Blobs checked in all.
    pub checked: u64,
    /// Versions that failed to decrypt: `mount/path version N` (never a value).
    pub failures: Vec<String>,
    /// Problems found by the other checks.
    pub problems: Vec<String>,
    /// Vault policy rules that grant nothing in this version (`policy: rule`): kept with their
    /// policy, inert until it is written again. Not a failure.
    #[serde(default)]
    pub inert_rules: Vec<String>,
}

/// A field not changed for longer than its limit (found without decrypting anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleField {
    /// Mount name.
    pub mount: String,
    /// Secret path.
    pub path: String,
    /// Field name.
    pub field: String,
    /// The version in which it last changed.
    pub version: u64,
    /// When it last changed.
    pub changed_at: Nanos,
    /// Its age in seconds.
    pub age_secs: u64,
    /// The limit that applied, in seconds.
    pub limit_secs: u64,
}

/// Engine settings of a kv mount (Vault's `<mount>/config`), kept in the mount's config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvConfig {
    /// Versions kept per secret unless the secret says otherwise (0 = the default, 10).
    #[serde(default)]
    pub max_versions: u32,
    /// Whether every write must carry a check-and-set version.
    #[serde(default)]
    pub cas_required: bool,
    /// New versions are soft-deleted this long after they are written (0 = never), in seconds.
    #[serde(default, rename = "delete_version_after_secs")]
    pub delete_version_after_secs: i64,
    /// The KV version its Vault paths speak: 1 (`<mount>/<path>`, unversioned: one version kept),
    /// or 2 (the default; 0 reads as 2).
    #[serde(default)]
    pub version: u8,
}

impl KvConfig {
    /// Whether the mount speaks KV version 1 on the Vault API.
    pub fn is_v1(&self) -> bool {
        self.version == 1
    }

    /// The kv settings held in a mount's config (defaults where absent).
    pub fn of(mount: &Mount) -> Self {
        serde_json::from_value(mount.config.clone()).unwrap_or_default()
    }

    /// How many versions a secret keeps: its own setting, else the mount's, else 10.
    pub fn effective_max_versions(&self, meta: &SecretMeta) -> u32 {
        [meta.max_versions, self.max_versions].into_iter().find(|v| *v > 0).unwrap_or(DEFAULT_MAX_VERSIONS)
    }

    /// When new versions of a secret are soft-deleted (seconds; 0 = never): the shorter of the
    /// secret's and the mount's settings (as Vault).
    pub fn effective_delete_after(&self, meta: &SecretMeta) -> i64 {
        match (meta.delete_version_after_secs, self.delete_version_after_secs) {
            (0, m) => m,
            (s, 0) => s,
            (s, m) => s.min(m),
        }
    }
}

/// A change to a secret's metadata (Vault's `metadata` write); `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    /// Versions to keep (0 = the mount's default).
    pub max_versions: Option<u32>,
    /// Whether writes must carry a check-and-set version.
    pub cas_required: Option<bool>,
    /// Soft-delete new versions this long after they are written (seconds, 0 = never).
    pub delete_version_after_secs: Option<i64>,
    /// Replace the custom metadata.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// Merge into the custom metadata (a `None` value removes the key), for PATCH.
    pub custom_metadata_patch: Option<BTreeMap<String, Option<String>>>,
    /// Whether the writer may create the secret if it does not exist (`create`).
    pub may_create: bool,
    /// Whether the writer may change it if it exists (`update`).
    pub may_change: bool,
}

/// A transit key's settings and version history (Vault's key policy). Holds no plaintext key
/// material: each version is a random key wrapped under the master keyring (domain
/// `keyward/transit-key`, owner = the key's id), and an ECDSA or RSA version's private key is
/// sealed under that version's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitKeyConfig {
    /// Key type (`aes256-gcm96`).
    #[serde(rename = "type")]
    pub key_type: String,
    /// Newest version.
    pub latest_version: u32,
    /// Ciphertexts below this version are refused.
    pub min_decryption_version: u32,
    /// Encryption uses at least this version (0 = the latest).
    pub min_encryption_version: u32,
    /// Whether the key may be deleted.
    pub deletion_allowed: bool,
    /// Whether each encryption derives a key from a caller-given `context`.
    pub derived: bool,
    /// Whether the key may be exported (recorded only: keyward never exports keys).
    pub exportable: bool,
    /// Whether a plaintext backup may be taken (recorded only).
    pub allow_plaintext_backup: bool,
    /// Automatic rotation period in seconds (recorded; 0 = off).
    pub auto_rotate_period_secs: u64,
    /// Creation time of each version, in Unix seconds.
    pub versions: BTreeMap<u32, i64>,
    /// Public keys of ECDSA and RSA versions (SubjectPublicKeyInfo DER, base64).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_keys: BTreeMap<u32, String>,
    /// Private keys of ECDSA and RSA versions (PKCS#8), each sealed under its version's key
    /// and bound to the key's id and the version (base64).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub private_keys: BTreeMap<u32, String>,
}

impl TransitKeyConfig {
    /// Whether `auto_rotate_period` asks for a new version at `now_secs` (Unix seconds): the
    /// latest version is at least that old.
    pub fn rotation_due(&self, now_secs: i64) -> bool {
        let period = i64::try_from(self.auto_rotate_period_secs).unwrap_or(i64::MAX);
        self.auto_rotate_period_secs > 0
            && self.versions.get(&self.latest_version).is_some_and(|t| now_secs.saturating_sub(*t) >= period)
    }
}

/// A named transit key of a transit mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitKey {
    /// Random identity, the owner of its wrapped key versions.
    pub id: Uuid,
    /// The owning mount.
    pub mount_id: Uuid,
    /// Its name.
    pub name: String,
    /// Settings and versions.
    pub config: TransitKeyConfig,
}

/// How two secrets' current versions differ, by field name only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretDiff {
    /// Names only in the first.
    pub only_in_a: Vec<String>,
    /// Names only in the second.
    pub only_in_b: Vec<String>,
    /// Names in both, with different values.
    pub different: Vec<String>,
    /// Names in both, with equal values.
    pub same: Vec<String>,
}

/// The outcome of checking every row of one MAC'd table (`doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCheck {
    /// The table.
    pub table: String,
    /// Rows checked.
    pub rows: u64,
    /// The keys of the rows that failed their MAC.
    pub failed: Vec<String>,
}
