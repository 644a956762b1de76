//! Conversions between database rows and domain records. A row of a MAC'd table is decoded only
//! once its MAC is checked (`Macs::check`): every decoder of such a table takes the row keys.
use std::collections::BTreeMap;

use keyward_core::KeyJob;
use keyward_core::{
    FieldStamp, Mount, MountKind, Policy, PolicyRow, ProxyRoute, SecretMeta, SecretSummary, SecretVersion, StoreError,
    TokenRecord, TransitKey,
};
use uuid::Uuid;

use crate::db::Row;
use crate::integrity::{Macs, MOUNTS, POLICIES, PROXY_ROUTES, SECRETS, SYSTEM, TOKENS, TRANSIT_KEYS};

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn uuid(row: &Row, col: &str) -> Result<Uuid, StoreError> {
    let s: String = row.get(col)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

pub(crate) fn u64_of(row: &Row, col: &str) -> Result<u64, StoreError> {
    let v: i64 = row.get(col)?;
    u64::try_from(v).map_err(|_| corrupt(col))
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| corrupt("number out of range"))
}

pub(crate) const MOUNT_COLS: &str = "id, path, kind, created_at, config, mac";

pub(crate) fn mount(macs: &Macs, row: &Row) -> Result<Mount, StoreError> {
    macs.check(&MOUNTS, row)?;
    let kind: String = row.get("kind")?;
    let config: String = row.get("config")?;
    Ok(Mount {
        id: uuid(row, "id")?,
        path: row.get("path")?,
        kind: MountKind::parse(&kind).map_err(|_| corrupt("mount kind"))?,
        created_at: row.get("created_at")?,
        config: serde_json::from_str(&config).map_err(|_| corrupt("mount config"))?,
    })
}

pub(crate) fn secret(macs: &Macs, row: &Row) -> Result<SecretMeta, StoreError> {
    macs.check(&SECRETS, row)?;
    let custom: String = row.get("custom_metadata")?;
    let max_versions: i64 = row.get("max_versions")?;
    Ok(SecretMeta {
        id: uuid(row, "id")?,
        mount_id: uuid(row, "mount_id")?,
        path: row.get("path")?,
        current_version: u64_of(row, "current_version")?,
        oldest_version: u64_of(row, "oldest_version")?,
        max_versions: u32::try_from(max_versions).map_err(|_| corrupt("max_versions"))?,
        cas_required: row.get::<i64>("cas_required")? != 0,
        custom_metadata: serde_json::from_str(&custom).map_err(|_| corrupt("custom_metadata"))?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        delete_version_after_secs: row.get("delete_version_after")?,
    })
}

pub(crate) fn field_versions(json: &str) -> Result<BTreeMap<String, FieldStamp>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt("field_versions"))
}

pub(crate) fn version(row: &Row, with_blob: bool) -> Result<SecretVersion, StoreError> {
    version_from(row, with_blob, "created_at")
}

/// A version joined to its secret (`secret_version`), whose creation time is `v_created_at`.
pub(crate) fn joined_version(row: &Row) -> Result<SecretVersion, StoreError> {
    version_from(row, true, "v_created_at")
}

fn version_from(row: &Row, with_blob: bool, created: &str) -> Result<SecretVersion, StoreError> {
    let fv: String = row.get("field_versions")?;
    Ok(SecretVersion {
        version: u64_of(row, "version")?,
        blob: if with_blob { row.get("blob")? } else { None },
        dek_version: row
            .get::<Option<i64>>("dek_version")?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("dek_version")))
            .transpose()?,
        created_at: row.get(created)?,
        deletion_time: row.get("deletion_time")?,
        destroyed: row.get::<i64>("destroyed")? != 0,
        created_by: row.get("created_by")?,
        field_versions: field_versions(&fv)?,
    })
}

pub(crate) fn summary(macs: &Macs, row: &Row) -> Result<SecretSummary, StoreError> {
    macs.check(&SECRETS, row)?;
    Ok(SecretSummary {
        path: row.get("path")?,
        current_version: u64_of(row, "current_version")?,
        field_count: usize::try_from(u64_of(row, "field_count")?).map_err(|_| corrupt("field_count"))?,
        updated_at: row.get("updated_at")?,
    })
}

pub(crate) fn token(macs: &Macs, row: &Row) -> Result<TokenRecord, StoreError> {
    macs.check(&TOKENS, row)?;
    let policies: String = row.get("policies")?;
    let cidrs: String = row.get("allowed_cidrs")?;
    Ok(TokenRecord {
        accessor: row.get("accessor")?,
        digest: row.get("digest")?,
        policies: serde_json::from_str(&policies).map_err(|_| corrupt("token policies"))?,
        parent_accessor: row.get("parent_accessor")?,
        display_name: row.get("display_name")?,
        created_at: row.get("created_at")?,
        ttl_secs: u64_of(row, "ttl_secs")?,
        expires_at: row.get("expires_at")?,
        last_used: row.get("last_used")?,
        revoked: row.get::<i64>("revoked")? != 0,
        allowed_cidrs: serde_json::from_str(&cidrs).map_err(|_| corrupt("token allowed_cidrs"))?,
        rate_limit: row.get("rate_limit")?,
        origin: keyward_core::TokenOrigin {
            auth_mount: row.get("auth_mount")?,
            role: row.get("auth_role")?,
            secret_id_accessor: row.get("secret_id_accessor")?,
        },
        meta: serde_json::from_str(&row.get::<String>("meta")?).map_err(|_| corrupt("token meta"))?,
        explicit_max_ttl_secs: u64_of(row, "explicit_max_ttl")?,
        kind: keyward_core::TokenKind::parse(&row.get::<String>("token_type")?).ok_or_else(|| corrupt("token type"))?,
        period_secs: u64_of(row, "period")?,
        uses_left: u64_of(row, "num_uses")?,
        renewable: row.get::<i64>("renewable")? != 0,
    })
}

pub(crate) const POLICY_COLS: &str = "name, rules, hcl, deleted, created_at, updated_at, mac";

pub(crate) fn policy(macs: &Macs, row: &Row) -> Result<PolicyRow, StoreError> {
    macs.check(&POLICIES, row)?;
    let name: String = row.get("name")?;
    if row.get::<i64>("deleted")? != 0 {
        return Ok(PolicyRow::Deleted(name));
    }
    let rules: String = row.get("rules")?;
    Ok(PolicyRow::Live(Policy {
        name,
        rules: serde_json::from_str(&rules).map_err(|_| corrupt("policy rules"))?,
        hcl: row.get("hcl")?,
    }))
}

pub(crate) const TOKEN_COLS: &str = "accessor, digest, policies, parent_accessor, display_name, created_at, ttl_secs, \
    expires_at, last_used, revoked, allowed_cidrs, rate_limit, auth_mount, auth_role, secret_id_accessor, meta, explicit_max_ttl, token_type, period, num_uses, renewable, mac";
pub(crate) fn key_job(row: &Row) -> Result<KeyJob, StoreError> {
    let mount_id: Option<String> = row.get("mount_id")?;
    Ok(KeyJob {
        id: uuid(row, "id")?,
        kind: row.get("kind")?,
        mount_id: mount_id.map(|m| Uuid::parse_str(&m).map_err(|_| corrupt("job mount_id"))).transpose()?,
        mount: row.get("mount_path")?,
        status: row.get("status")?,
        total: u64_of(row, "total")?,
        done: u64_of(row, "done")?,
        cursor: (row.get("cursor_secret")?, u64_of(row, "cursor_version")?),
        owner: row.get("owner")?,
        started_at: row.get("started_at")?,
        updated_at: row.get("updated_at")?,
        error: row.get("error")?,
    })
}

pub(crate) const KEY_JOB_COLS: &str =
    "id, kind, mount_id, mount_path, status, total, done, cursor_secret, cursor_version, owner, started_at, updated_at, error";

pub(crate) const SECRET_COLS: &str = "id, mount_id, path, current_version, oldest_version, max_versions, \
    cas_required, custom_metadata, created_at, updated_at, delete_version_after, mac";
/// [`SECRET_COLS`] qualified by the alias `s` (for joins).
pub(crate) const SECRET_COLS_S: &str = "s.id, s.mount_id, s.path, s.current_version, s.oldest_version, \
    s.max_versions, s.cas_required, s.custom_metadata, s.created_at, s.updated_at, s.delete_version_after, s.mac";
pub(crate) const VERSION_COLS: &str =
    "version, blob, dek_version, created_at, deletion_time, destroyed, created_by, field_versions";
pub(crate) const VERSION_COLS_NO_BLOB: &str =
    "version, dek_version, created_at, deletion_time, destroyed, created_by, field_versions";

pub(crate) const TRANSIT_COLS: &str = "id, mount_id, name, config, mac";

pub(crate) fn transit_key(macs: &Macs, row: &Row) -> Result<TransitKey, StoreError> {
    macs.check(&TRANSIT_KEYS, row)?;
    let config: String = row.get("config")?;
    Ok(TransitKey {
        id: uuid(row, "id")?,
        mount_id: uuid(row, "mount_id")?,
        name: row.get("name")?,
        config: serde_json::from_str(&config).map_err(|_| corrupt("transit key config"))?,
    })
}

pub(crate) const ROUTE_COLS: &str = "name, route, mac";

pub(crate) fn proxy_route(macs: &Macs, row: &Row) -> Result<ProxyRoute, StoreError> {
    macs.check(&PROXY_ROUTES, row)?;
    let route: String = row.get("route")?;
    serde_json::from_str(&route).map_err(|_| corrupt("proxy route"))
}

pub(crate) const SYSTEM_COLS: &str = "key, value, mac";

/// A system row's value.
pub(crate) fn system_value(macs: &Macs, row: &Row) -> Result<String, StoreError> {
    macs.check(&SYSTEM, row)?;
    row.get("value")
}
