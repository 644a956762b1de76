//! Keyward's domain: mounts (projects), KV secrets and their versions, tokens, the key manager
//! and the single group-committing writer. Storage is reached only through the [`Store`] trait;
//! nothing here speaks HTTP.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod appender;
mod audit;
mod cache;
mod duration;
mod error;
mod hcl;
mod key_service;
mod keys;
mod kv;
mod model;
mod ops;
mod paths;
mod policy;
mod policy_service;
mod proxy;
mod rate;
mod read_cache;
mod secret_data;
mod service;
mod store;
mod time;
mod token_service;
mod transit;
mod writer;

pub use audit::{canonical, AuditEntry, AuditKeys, AuditRow, ChainVerifier, VerifyReport};
pub use duration::{format_duration, parse_duration};
pub use error::{CoreError, StoreError};
pub use hcl::{parse_hcl_policy, translate as translate_hcl, HclRule, Translation};
pub use keys::KeyManager;
pub use keyward_crypto::WrappedKey;
pub use kv::{merge_patch_value, KvRead, VersionAction};
pub use model::{
    DekUsage, DoctorReport, FieldStamp, KekUsage, KeyJob, KeyStatus, KvConfig, MetadataUpdate, Mount, MountKind,
    ResealedVersion, SecretDiff, SecretMeta, SecretSummary, SecretVersion, StaleField, TokenRecord, TransitKey,
    TransitKeyConfig, UnmigratedVersion, VersionInfo, WriteSummary, DEFAULT_MAX_VERSIONS,
};
pub use ops::{ResealedBatch, SecretPatch, UnmigratedCount, WriteOp, WriteReply};
pub use paths::{validate_field_name, validate_mount_path, validate_secret_path, MAX_NAME_LEN};
pub use policy::{
    parse_policy_document, rule_matches, validate_policy_name, validate_rule_path, validate_rules, Acl, Capability,
    Policy, Rule, DEFAULT_POLICY, ROOT_POLICY,
};
pub use proxy::{template_fields, ProxyRoute, Recipe, ACCOUNT};
pub use rate::Rate;
pub use secret_data::SecretData;
pub use service::{Keyward, KeywardConfig, Readiness, SecretRead};
pub use store::{AuditAppender, Backend, Store, StoreTx};
pub use time::{format_rfc3339, now_nanos, Nanos};
pub use token_service::{Authentication, Caller, NewToken, TokenRequest};
pub use transit::{validate_key_name, TransitKeyChange, TransitKeyOptions, TransitOp, AES256_GCM96};
pub use writer::Writer;
