//! Keyward's domain, one module per concept: `secrets` (KV secrets and their versions, with
//! Vault's KV v2 semantics), `mounts` (projects), `tokens`, `policy` (ACLs and Vault's HCL),
//! `keys` (the key manager and the key lifecycle), `audit` (the chain), `integrity` (the key that
//! authenticates rows in untrusted storage), `transit`, `proxy`
//! (credential-proxy routes), and `engine` — the single group-committing writer and its typed
//! commands, the audit appender, the caches. Storage is reached only through the [`Store`]
//! traits; nothing here speaks HTTP or SQL, or knows which database it runs on.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit;
mod auth;
mod background;
mod backup;
mod duration;
mod engine;
mod error;
mod integrity;
mod keys;
mod model;
mod mounts;
mod wrapping;
pub use mounts::MountTuning;
pub use wrapping::{WrapInfo, WrapLookup, WRAP_PATH};
mod clock;
mod policy;
mod proxy;
mod secrets;
mod service;
mod store;
mod time;
mod tokens;
mod transit;

pub use audit::archive::{ArchiveCheck, SegmentHeader};
pub use audit::{
    canonical, ArchiveOutcome, ArchiveRequest, AuditEntry, AuditKeys, AuditRow, ChainVerifier, VerifyReport,
};
pub use auth::{
    role_key, AppRole, AppRoleConfig, AuthItem, AuthKind, AuthMount, FetchedKeys, JwtConfig, JwtKeySource, JwtRole,
    JwtRoleConfig, KeySourceKind, LoginFailures, NewSecretId, RoleField, RoleRequest, SecretIdRecord, SecretIdRequest,
    TokenTerms, User, UserConfig, UserLogin, UserRequest, ENROL_PURPOSE, UI_SESSION_SECS,
};
pub use background::Leadership;
pub use backup::{
    BackupFile, BackupReads, BackupSummary, Bytes, Cell, Manifest, SnapshotItem, TableCount, BACKUP_FORMAT,
};
pub use duration::{format_duration, parse_duration};
pub use engine::Writer;
pub use error::{CoreError, StoreError};
pub use keys::{KeyManager, ResealedBatch, UnmigratedCount};
pub use keyward_crypto::WrappedKey;
pub use model::{
    DekUsage, DoctorReport, FieldStamp, KekUsage, KeyJob, KeyStatus, KvConfig, MetadataUpdate, Mount, MountKind,
    ResealedVersion, RowCheck, SecretDiff, SecretMeta, SecretSummary, SecretVersion, StaleField, TokenKind,
    TokenOrigin, TokenRecord, TransitKey, TransitKeyConfig, UnmigratedVersion, VersionInfo, WrappedResponse,
    WriteSummary, DEFAULT_MAX_VERSIONS,
};
pub use policy::{
    parse_hcl_policy, parse_policy_document, rule_matches, translate_hcl, validate_policy_name, validate_rule_path,
    validate_rules, Acl, Capability, HclRule, Policy, PolicyRow, Rule, Translation, DEFAULT_POLICY, ROOT_POLICY,
};
pub use proxy::{template_fields, ProxyRoute, Recipe, ACCOUNT, HOP_BY_HOP};
pub use secrets::{
    merge_patch_value, validate_field_name, validate_mount_path, validate_secret_path, KvRead, SecretData, SecretPatch,
    SecretRead, VersionAction, MAX_NAME_LEN,
};
pub use service::{Keyward, KeywardConfig, Readiness};
pub use store::{
    AuditAppender, AuditReads, AuditTx, AuthReads, AuthTx, HeldLock, IntegrityReads, IntegrityTx, JobLock, KeyReads,
    KeyTx, MountReads, MountTx, PolicyReads, PolicyTx, PoolUse, ProxyReads, ProxyTx, SecretReads, SecretTx,
    SpaceReclaimed, Store, StoreTx, TokenReads, TokenTx, TransitReads, TransitTx,
};
pub use time::{anchor_at_least, format_rfc3339, now_nanos, trusted_time, wall_drift_secs, Nanos, MAX_AHEAD};
pub use tokens::{Authentication, Caller, NewToken, Rate, TokenRequest, TokenRole, TokenRoleConfig};
pub use transit::{
    validate_key_name, KeyBackup, TransitKeyChange, TransitKeyOptions, TransitOp, AES256_GCM96, KEY_TYPES,
};
