//! Untrusted storage (DESIGN §8): which tables are authenticated and how.
//!
//! Every table is classified in [`TABLES`] — a test checks the list against the schema of both
//! engines, so a table or column added without a decision fails. A row of a MAC'd table carries
//! `mac = HMAC-SHA256(K_row, lp(table, layout, cluster id, primary key, covered columns))` over the
//! values as stored (see `keyward_crypto::RowMacKeys`); every read of such a row goes through a
//! decoder that checks it first ([`Macs::check`]), every write computes it ([`Macs::seal`]). A row
//! that fails is refused, counted and logged as tampering — its table and key, never a value.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use keyward_core::StoreError;
use keyward_crypto::{Key256, MacValue, RowInput, RowMacKeys};

use async_trait::async_trait;
use keyward_core::{IntegrityReads, IntegrityTx, RowCheck, StoreTx, DEFAULT_POLICY, ROOT_POLICY};

use crate::db::{args, column, Arg, Exec, Pool, Row};
use crate::sql_store::SqlStore;
use crate::sql_tx::SqlTx;
use crate::Backend;

/// How a column is stored (the same on both engines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Text,
}

/// A MAC'd table: its primary key, the columns its MAC covers (in this order), and the volatile
/// columns it does not (each with the reason it grants nothing).
#[derive(Debug)]
pub(crate) struct Maced {
    pub name: &'static str,
    /// The MAC-layout version: it changes with the covered columns, and a migration that
    /// changes them re-MACs every row (verifying it under the old layout first).
    pub layout: u32,
    pub key: &'static [(&'static str, Ty)],
    pub columns: &'static [(&'static str, Ty)],
    pub volatile: &'static [(&'static str, &'static str)],
    /// The layouts before this one: what a row MAC'd under each covered. A migration that
    /// changes the covered columns bumps `layout` and adds the old one here, so the server
    /// re-MACs every row once (see `relayout`).
    pub earlier: &'static [Layout],
}

/// A MAC layout a table had: its version and the columns it covered.
#[derive(Debug)]
pub(crate) struct Layout {
    pub version: u32,
    pub columns: &'static [(&'static str, Ty)],
}

impl Maced {
    /// This table as it was under an earlier layout.
    fn under(&self, old: &Layout) -> Maced {
        Maced { layout: old.version, columns: old.columns, volatile: &[], earlier: &[], ..*self }
    }
}

/// The system row recording the layout a table's rows are MAC'd under.
fn layout_row(table: &str) -> String {
    format!("row_layout/{table}")
}

/// What protects a table's rows.
#[derive(Debug)]
pub(crate) enum Class {
    /// Each row carries a MAC.
    Maced(&'static Maced),
    /// Each row authenticates itself cryptographically (why, in words).
    Sealed(&'static str),
    /// Not read to authenticate, authorise, route or decide initialisation (why, in words).
    NotAuthority(&'static str),
}

use Ty::{Int, Text};

pub(crate) const SYSTEM: Maced = Maced {
    name: "system",
    layout: 1,
    key: &[("key", Text)],
    columns: &[("value", Text)],
    volatile: &[],
    earlier: &[],
};

/// The token columns MAC'd under layout 1 (before login methods).
const TOKEN_COLUMNS_V1: &[(&str, Ty)] = &[
    ("digest", Text),
    ("policies", Text),
    ("parent_accessor", Text),
    ("display_name", Text),
    ("created_at", Int),
    ("ttl_secs", Int),
    ("expires_at", Int),
    ("revoked", Int),
    ("allowed_cidrs", Text),
    ("rate_limit", Text),
];

/// The token columns MAC'd under layout 2 (login methods: origin and metadata).
const TOKEN_COLUMNS_V2: &[(&str, Ty)] = &[
    ("digest", Text),
    ("policies", Text),
    ("parent_accessor", Text),
    ("display_name", Text),
    ("created_at", Int),
    ("ttl_secs", Int),
    ("expires_at", Int),
    ("revoked", Int),
    ("allowed_cidrs", Text),
    ("rate_limit", Text),
    ("auth_mount", Text),
    ("auth_role", Text),
    ("secret_id_accessor", Text),
    ("meta", Text),
];

/// The token columns MAC'd under layout 3 (`explicit_max_ttl`).
const TOKEN_COLUMNS_V3: &[(&str, Ty)] = &[
    ("digest", Text),
    ("policies", Text),
    ("parent_accessor", Text),
    ("display_name", Text),
    ("created_at", Int),
    ("ttl_secs", Int),
    ("expires_at", Int),
    ("revoked", Int),
    ("allowed_cidrs", Text),
    ("rate_limit", Text),
    ("auth_mount", Text),
    ("auth_role", Text),
    ("secret_id_accessor", Text),
    ("meta", Text),
    ("explicit_max_ttl", Int),
];

pub(crate) const TOKENS: Maced = Maced {
    name: "tokens",
    layout: 4,
    key: &[("accessor", Text)],
    columns: &[
        ("digest", Text),
        ("policies", Text),
        ("parent_accessor", Text),
        ("display_name", Text),
        ("created_at", Int),
        ("ttl_secs", Int),
        ("expires_at", Int),
        ("revoked", Int),
        ("allowed_cidrs", Text),
        ("rate_limit", Text),
        ("auth_mount", Text),
        ("auth_role", Text),
        ("secret_id_accessor", Text),
        ("meta", Text),
        ("explicit_max_ttl", Int),
        ("token_type", Text),
        ("period", Int),
        ("num_uses", Int),
        ("renewable", Int),
    ],
    volatile: &[("last_used", "when the token was last used: a statistic, stamped on use")],
    earlier: &[
        Layout { version: 1, columns: TOKEN_COLUMNS_V1 },
        Layout { version: 2, columns: TOKEN_COLUMNS_V2 },
        Layout { version: 3, columns: TOKEN_COLUMNS_V3 },
    ],
};

/// Auth mounts: which login methods exist, and where.
pub(crate) const AUTH_MOUNTS: Maced = Maced {
    name: "auth_mounts",
    layout: 1,
    key: &[("id", Text)],
    columns: &[("path", Text), ("kind", Text), ("description", Text), ("created_at", Int)],
    volatile: &[],
    earlier: &[],
};

/// AppRole roles: the policies a login gets, and the role ID it is found by.
pub(crate) const APPROLE_ROLES: Maced = Maced {
    name: "approle_roles",
    layout: 1,
    key: &[("id", Text)],
    columns: &[("mount_id", Text), ("name", Text), ("role_id", Text), ("config", Text), ("created_at", Int)],
    volatile: &[],
    earlier: &[],
};

/// Wrapped responses: which accessor and path a sealed response belongs to, until when.
pub(crate) const WRAPPED_RESPONSES: Maced = Maced {
    name: "wrapped_responses",
    layout: 1,
    key: &[("accessor", Text)],
    columns: &[("creation_path", Text), ("mount_id", Text), ("created_at", Int), ("expires_at", Int)],
    volatile: &[(
        "sealed",
        "self-authenticating: sealed under the wrap key with the accessor and creation path as AAD",
    )],
    earlier: &[],
};

/// Login-method settings kept as documents: a JWT method's config and roles.
pub(crate) const AUTH_ITEMS: Maced = Maced {
    name: "auth_items",
    layout: 1,
    key: &[("id", Text)],
    columns: &[("mount_id", Text), ("kind", Text), ("name", Text), ("body", Text), ("created_at", Int)],
    volatile: &[],
    earlier: &[],
};

/// AppRole secret IDs, by keyed digest, with their uses left.
pub(crate) const APPROLE_SECRET_IDS: Maced = Maced {
    name: "approle_secret_ids",
    layout: 1,
    key: &[("accessor", Text)],
    columns: &[
        ("digest", Text),
        ("role", Text),
        ("metadata", Text),
        ("cidrs", Text),
        ("created_at", Int),
        ("expires_at", Int),
        ("num_uses", Int),
        ("uses_left", Int),
    ],
    volatile: &[],
    earlier: &[],
};

pub(crate) const POLICIES: Maced = Maced {
    name: "policies",
    layout: 1,
    key: &[("name", Text)],
    columns: &[("rules", Text), ("hcl", Text), ("deleted", Int), ("created_at", Int), ("updated_at", Int)],
    volatile: &[],
    earlier: &[],
};

pub(crate) const MOUNTS: Maced = Maced {
    name: "mounts",
    layout: 1,
    key: &[("id", Text)],
    columns: &[("path", Text), ("kind", Text), ("created_at", Int), ("config", Text)],
    volatile: &[],
    earlier: &[],
};

/// The path map: which secret (and so which sealed versions) a mount and path name.
pub(crate) const SECRETS: Maced = Maced {
    name: "secrets",
    layout: 1,
    key: &[("id", Text)],
    columns: &[("mount_id", Text), ("path", Text), ("created_at", Int)],
    volatile: &[
        ("current_version", "which of the secret's own sealed versions is current (a rollback, like a replay)"),
        ("oldest_version", "how far back its own versions are kept"),
        ("max_versions", "a version-history setting"),
        ("cas_required", "a write-race setting"),
        ("custom_metadata", "free-form notes and the rotation reminder"),
        ("updated_at", "a timestamp"),
        ("delete_version_after", "a version-history setting"),
        ("field_count", "a listing statistic kept by a trigger on SQLite"),
    ],
    earlier: &[],
};

pub(crate) const PROXY_ROUTES: Maced = Maced {
    name: "proxy_routes",
    layout: 1,
    key: &[("name", Text)],
    columns: &[("route", Text)],
    volatile: &[],
    earlier: &[],
};

pub(crate) const TRANSIT_KEYS: Maced = Maced {
    name: "transit_keys",
    layout: 1,
    key: &[("id", Text)],
    columns: &[("mount_id", Text), ("name", Text), ("config", Text)],
    volatile: &[],
    earlier: &[],
};

/// Userpass users: the password hash, the sealed TOTP seed and the last accepted step.
pub(crate) const USERPASS_USERS: Maced = Maced {
    name: "userpass_users",
    layout: 1,
    key: &[("id", Text)],
    columns: &[
        ("mount_id", Text),
        ("name", Text),
        ("password_hash", Text),
        ("config", Text),
        ("totp_seed", Text),
        ("totp_enrolled", Int),
        ("totp_last_step", Int),
        ("created_at", Int),
    ],
    volatile: &[],
    earlier: &[],
};

/// Every table of the schema, classified.
pub(crate) const TABLES: &[(&str, Class)] = &[
    ("system", Class::Maced(&SYSTEM)),
    ("tokens", Class::Maced(&TOKENS)),
    ("policies", Class::Maced(&POLICIES)),
    ("mounts", Class::Maced(&MOUNTS)),
    ("secrets", Class::Maced(&SECRETS)),
    ("proxy_routes", Class::Maced(&PROXY_ROUTES)),
    ("transit_keys", Class::Maced(&TRANSIT_KEYS)),
    ("auth_mounts", Class::Maced(&AUTH_MOUNTS)),
    ("approle_roles", Class::Maced(&APPROLE_ROLES)),
    ("approle_secret_ids", Class::Maced(&APPROLE_SECRET_IDS)),
    ("userpass_users", Class::Maced(&USERPASS_USERS)),
    ("auth_items", Class::Maced(&AUTH_ITEMS)),
    ("wrapped_responses", Class::Maced(&WRAPPED_RESPONSES)),
    (
        "wrapped_keys",
        Class::Sealed("each key is AES-GCM-wrapped under a KEK with its domain, owner and version as AAD"),
    ),
    ("kek_checks", Class::Sealed("a check value only the KEK it names can compute")),
    (
        "secret_versions",
        Class::Sealed(
            "each blob is sealed under its mount's data key with mount, secret and version as AAD; \
             the other columns (deletion time, destroyed, author, field stamps) grant nothing",
        ),
    ),
    ("audit_log", Class::Sealed("a hash chain keyed by the audit key; its head is anchored outside")),
    ("audit_head", Class::Sealed("the chain's head, checked against the chain it heads")),
    (
        "login_failures",
        Class::NotAuthority(
            "failed-login counts: changing them only lifts or sets a lockout early, never lets a wrong password in",
        ),
    ),
    ("key_jobs", Class::NotAuthority("the progress of re-encryption jobs: tampering stops or repeats work")),
    ("_sqlx_migrations", Class::NotAuthority("which schema migrations ran")),
];

/// The MAC'd tables' names.
pub(crate) fn maced_tables() -> Vec<&'static str> {
    TABLES
        .iter()
        .filter_map(|(_, c)| match c {
            Class::Maced(m) => Some(m.name),
            _ => None,
        })
        .collect()
}

/// The classification of every table, as the Markdown table `docs/untrusted-storage.md` holds.
pub fn classification_table() -> String {
    let mut out =
        String::from("| table | protection | covered (MAC) | volatile (not covered), and why |\n|---|---|---|---|\n");
    for (name, class) in TABLES {
        let row = match class {
            Class::Maced(m) => {
                let cols: Vec<String> = m.key.iter().chain(m.columns).map(|(c, _)| format!("`{c}`")).collect();
                let volatile: Vec<String> = m.volatile.iter().map(|(c, why)| format!("`{c}`: {why}")).collect();
                let volatile = if volatile.is_empty() { "—".to_owned() } else { volatile.join("; ") };
                format!("row MAC, layout {}", m.layout) + &format!(" | {} | {volatile}", cols.join(", "))
            }
            Class::Sealed(why) => format!("self-authenticating: {why} | — | —"),
            Class::NotAuthority(why) => format!("not authority: {why} | — | —"),
        };
        out.push_str(&format!("| `{name}` | {row} |\n"));
    }
    out
}

/// The row keys of a store: none until the integrity key is loaded (or made by `sys/init`).
#[derive(Debug, Default)]
pub(crate) struct Integrity {
    keys: RwLock<Option<Arc<RowMacKeys>>>,
    tampered: Arc<AtomicU64>,
}

impl Integrity {
    /// Derives row keys (counting failures with this store's counter), without installing them.
    pub(crate) fn derive(&self, integrity: &Key256, cluster_id: &str) -> Macs {
        let keys = Arc::new(RowMacKeys::new(integrity, cluster_id, &maced_tables()));
        Macs { keys, tampered: self.tampered.clone() }
    }

    /// Derives and installs the row keys.
    pub(crate) fn install(&self, integrity: &Key256, cluster_id: &str) {
        let macs = self.derive(integrity, cluster_id);
        if let Ok(mut k) = self.keys.write() {
            *k = Some(macs.keys);
        }
    }

    /// The row keys as they stand, with the tamper counter; `None` before they are loaded.
    pub(crate) fn macs(&self) -> Option<Macs> {
        let keys = self.keys.read().ok()?.clone()?;
        Some(Macs { keys, tampered: self.tampered.clone() })
    }

    /// Rows refused for a MAC that did not verify, since the process started.
    pub(crate) fn tampered(&self) -> u64 {
        self.tampered.load(Ordering::Relaxed)
    }
}

/// The error of a read or write of a MAC'd table before the row keys are loaded.
pub(crate) fn not_loaded() -> StoreError {
    StoreError::Database("the integrity key is not loaded: rows cannot be authenticated".into())
}

/// Row keys in use by one read or transaction.
#[derive(Debug, Clone)]
pub(crate) struct Macs {
    keys: Arc<RowMacKeys>,
    tampered: Arc<AtomicU64>,
}

/// One column's value as stored, read from a row.
enum Owned {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Owned {
    fn read(row: &Row, col: &str, ty: Ty) -> Result<Self, StoreError> {
        Ok(match ty {
            Ty::Int => row.get::<Option<i64>>(col)?.map_or(Self::Null, Self::Int),
            Ty::Text => row.get::<Option<String>>(col)?.map_or(Self::Null, Self::Text),
        })
    }

    fn of(arg: &Arg) -> Self {
        match arg {
            Arg::Int(Some(i)) => Self::Int(*i),
            Arg::Text(Some(s)) => Self::Text(s.clone()),
            Arg::Blob(Some(b)) => Self::Bytes(b.clone()),
            Arg::Int(None) | Arg::Text(None) | Arg::Blob(None) => Self::Null,
        }
    }

    fn value(&self) -> MacValue<'_> {
        match self {
            Self::Null => MacValue::Null,
            Self::Int(i) => MacValue::Int(*i),
            Self::Text(s) => MacValue::Text(s),
            Self::Bytes(b) => MacValue::Bytes(b),
        }
    }
}

/// The printable primary key of a row, for the tamper log (a name, accessor or id: never a value).
fn key_text(values: &[Owned]) -> String {
    values
        .iter()
        .map(|v| match v {
            Owned::Text(s) => s.clone(),
            Owned::Int(i) => i.to_string(),
            Owned::Null => "NULL".into(),
            Owned::Bytes(_) => "(bytes)".into(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Macs {
    fn input<'a>(table: &'a Maced, key: &'a [MacValue<'a>], columns: &'a [MacValue<'a>]) -> RowInput<'a> {
        RowInput { table: table.name, layout: table.layout, key, columns }
    }

    /// Whether a fetched row of `table` (its key, covered columns and `mac` selected) holds its
    /// MAC: `Err(key)` with the row's printable key when it does not.
    pub(crate) fn verify(&self, table: &Maced, row: &Row) -> Result<Result<(), String>, StoreError> {
        let key = table.key.iter().map(|(c, t)| Owned::read(row, c, *t)).collect::<Result<Vec<_>, _>>()?;
        let cols = table.columns.iter().map(|(c, t)| Owned::read(row, c, *t)).collect::<Result<Vec<_>, _>>()?;
        let mac: Option<Vec<u8>> = row.get("mac")?;
        let (k, c): (Vec<MacValue>, Vec<MacValue>) =
            (key.iter().map(Owned::value).collect(), cols.iter().map(Owned::value).collect());
        match mac.is_some_and(|m| self.keys.verify(&Self::input(table, &k, &c), &m)) {
            true => Ok(Ok(())),
            false => Ok(Err(key_text(&key))),
        }
    }

    /// Checks a fetched row of `table` (its key, covered columns and `mac` must be selected):
    /// a row that fails is refused as tampered, counted and logged.
    pub(crate) fn check(&self, table: &Maced, row: &Row) -> Result<(), StoreError> {
        self.verify(table, row)?.map_err(|key| self.tampered(table.name, &key))
    }

    /// Counts and logs a row that failed, and the error that refuses it.
    pub(crate) fn tampered(&self, table: &str, key: &str) -> StoreError {
        self.tampered.fetch_add(1, Ordering::Relaxed);
        tracing::error!(target: "security", table, key, "a stored row failed its integrity check: tampering; refused");
        StoreError::Tampered { table: table.to_owned(), key: key.to_owned() }
    }

    /// The MAC of a row of `table` about to be written, from the values bound for its columns
    /// (by name; every key and covered column must be given).
    pub(crate) fn seal(&self, table: &Maced, values: &[(&str, &Arg)]) -> Result<Arg, StoreError> {
        let pick = |cols: &[(&str, Ty)]| -> Result<Vec<Owned>, StoreError> {
            cols.iter()
                .map(|(c, _)| {
                    values.iter().find(|(n, _)| n == c).map(|(_, a)| Owned::of(a)).ok_or_else(|| {
                        StoreError::Database(format!("internal: column {}.{c} missing from its MAC", table.name))
                    })
                })
                .collect()
        };
        let (key, cols) = (pick(table.key)?, pick(table.columns)?);
        let (k, c): (Vec<MacValue>, Vec<MacValue>) =
            (key.iter().map(Owned::value).collect(), cols.iter().map(Owned::value).collect());
        let mac = self
            .keys
            .mac(&Self::input(table, &k, &c))
            .ok_or_else(|| StoreError::Database(format!("internal: no row key for {}", table.name)))?;
        Ok(Arg::Blob(Some(mac.to_vec())))
    }
}

/// Rows read per page when every row of a table is walked.
const PAGE: i64 = 1000;

/// A page of a walk over a MAC'd table, in key order: its key, the covered columns of each
/// layout given, and the MAC.
fn walk_sql(t: &Maced, layouts: &[&Maced]) -> String {
    let key = t.key[0].0;
    let mut cols: Vec<&str> = t.key.iter().map(|(c, _)| *c).collect();
    for l in layouts {
        cols.extend(l.columns.iter().map(|(c, _)| *c).filter(|c| !cols.contains(c)).collect::<Vec<_>>());
    }
    format!("SELECT {}, mac FROM {} WHERE {key} > $1 ORDER BY {key} LIMIT $2", cols.join(", "), t.name)
}

/// The tables whose rows say a database is in use (key-check values, written before
/// initialisation, and schema bookkeeping aside; the audit head counts once it moved).
async fn holds_rows(db: &mut dyn Exec) -> Result<bool, StoreError> {
    for (name, _) in TABLES.iter().filter(|(n, _)| !matches!(*n, "kek_checks" | "_sqlx_migrations" | "audit_head")) {
        if db.fetch_optional(&format!("SELECT 1 AS x FROM {name} LIMIT 1"), vec![]).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(db.fetch_optional("SELECT seq FROM audit_head WHERE seq > 0", vec![]).await?.is_some())
}

/// The values of a row's key and covered columns, as stored, by column name.
fn stored_values(t: &Maced, row: &Row) -> Result<Vec<(&'static str, Arg)>, StoreError> {
    t.key
        .iter()
        .chain(t.columns)
        .map(|(c, ty)| {
            Ok((
                *c,
                match ty {
                    Ty::Int => Arg::Int(row.get(*c)?),
                    Ty::Text => Arg::Text(row.get(*c)?),
                },
            ))
        })
        .collect()
}

#[async_trait]
impl IntegrityReads for SqlStore {
    fn authenticate_rows(&self, integrity: &Key256, cluster_id: &str) {
        self.integrity.install(integrity, cluster_id);
    }

    fn rows_authenticated(&self) -> bool {
        self.integrity.macs().is_some()
    }

    fn tampered_rows(&self) -> u64 {
        self.integrity.tampered()
    }

    async fn awaits_integrity_upgrade(&self) -> Result<bool, StoreError> {
        let row = Pool(&self.pool).fetch_optional("SELECT mac FROM system WHERE key = 'initialized'", vec![]).await?;
        Ok(match row {
            Some(r) => r.get::<Option<Vec<u8>>>("mac")?.is_none(),
            None => false,
        })
    }

    async fn holds_rows(&self) -> Result<bool, StoreError> {
        holds_rows(&mut Pool(&self.pool)).await
    }

    async fn stale_layouts(&self) -> Result<bool, StoreError> {
        let macs = self.macs()?;
        for (_, class) in TABLES {
            let Class::Maced(t) = class else { continue };
            let recorded =
                crate::sql_store::system_value(&mut Pool(&self.pool), Some(&macs), &layout_row(t.name)).await?;
            if recorded.as_deref() != Some(t.layout.to_string().as_str()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn verify_rows(&self) -> Result<Vec<RowCheck>, StoreError> {
        let macs = self.macs()?;
        let mut out = Vec::new();
        for (_, class) in TABLES {
            let Class::Maced(t) = class else { continue };
            let (mut check, mut after) = (RowCheck { table: t.name.into(), rows: 0, failed: vec![] }, String::new());
            loop {
                let page = Pool(&self.pool).fetch_all(&walk_sql(t, &[t]), args![after.clone(), PAGE]).await?;
                let Some(last) = page.last() else { break };
                after = last.get(t.key[0].0)?;
                for r in &page {
                    check.rows += 1;
                    if let Err(key) = macs.verify(t, r)? {
                        check.failed.push(key);
                    }
                }
            }
            out.push(check);
        }
        Ok(out)
    }
}

#[async_trait]
impl IntegrityTx for SqlTx {
    fn authenticate_rows(&mut self, integrity: &Key256, cluster_id: &str) {
        self.macs = Some(self.integrity.derive(integrity, cluster_id));
    }

    async fn holds_rows(&mut self) -> Result<bool, StoreError> {
        holds_rows(&mut *self.db).await
    }

    async fn record_layouts(&mut self) -> Result<(), StoreError> {
        for (_, class) in TABLES {
            if let Class::Maced(t) = class {
                self.set_system_value(&layout_row(t.name), &t.layout.to_string()).await?;
            }
        }
        Ok(())
    }

    async fn relayout_rows(&mut self) -> Result<Vec<(String, u32, u32, u64)>, StoreError> {
        let tables: Vec<&Maced> = TABLES
            .iter()
            .filter_map(|(_, c)| match c {
                Class::Maced(t) => Some(*t),
                _ => None,
            })
            .collect();
        self.relayout(&tables).await
    }

    async fn authenticate_existing_rows(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let macs = self.macs()?;
        let now = keyward_core::now_nanos();
        // Policies named by tokens whose rows are gone (deleted before deletions left
        // tombstones) get one now, so the tokens keep working without them.
        let named: Vec<String> = column(&mut *self.db, "SELECT DISTINCT policies FROM tokens", vec![]).await?;
        let mut names: Vec<String> = named
            .iter()
            .filter_map(|j| serde_json::from_str::<Vec<String>>(j).ok())
            .flatten()
            .filter(|n| n != ROOT_POLICY && n != DEFAULT_POLICY)
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let values = args![name, "[]", None::<String>, 1i64, now, now];
            let cols = ["name", "rules", "hcl", "deleted", "created_at", "updated_at"];
            let mac = macs.seal(&POLICIES, &cols.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
            let sql = "INSERT INTO policies (name, rules, hcl, deleted, created_at, updated_at, mac) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING";
            self.db.execute(sql, values.into_iter().chain([mac]).collect()).await?;
        }
        let mut counts = Vec::new();
        for (_, class) in TABLES {
            let Class::Maced(t) = class else { continue };
            let (key, mut after, mut n) = (t.key[0].0, String::new(), 0u64);
            loop {
                let page = self.db.fetch_all(&walk_sql(t, &[t]), args![after.clone(), PAGE]).await?;
                let Some(last) = page.last() else { break };
                after = last.get(key)?;
                let mut sealed = Vec::with_capacity(page.len());
                for r in &page {
                    let values = stored_values(t, r)?;
                    let mac = macs.seal(t, &values.iter().map(|(c, a)| (*c, a)).collect::<Vec<_>>())?;
                    sealed.push((r.get::<String>(key)?, mac));
                }
                n += sealed.len() as u64;
                self.store_macs(t, sealed).await?;
            }
            counts.push((t.name.to_owned(), n));
        }
        Ok(counts)
    }
}

impl SqlTx {
    /// Re-MACs the rows of every table whose recorded layout is older than its current one:
    /// each row is verified under the layout it was written with — the first that fails stops
    /// the step, naming its table and key — then MAC'd under the current one, and the new
    /// layout recorded, all in this transaction. Returns `(table, from, to, rows)` per table.
    pub(crate) async fn relayout(&mut self, tables: &[&Maced]) -> Result<Vec<(String, u32, u32, u64)>, StoreError> {
        let macs = self.macs()?;
        let mut done = Vec::new();
        for t in tables {
            let row = layout_row(t.name);
            let recorded = crate::sql_store::system_value(&mut *self.db, Some(&macs), &row).await?;
            let recorded = recorded.and_then(|v| v.parse::<u32>().ok()).ok_or_else(|| macs.tampered("system", &row))?;
            if recorded == t.layout {
                continue;
            }
            let Some(old) = t.earlier.iter().find(|l| l.version == recorded).map(|l| t.under(l)) else {
                return Err(StoreError::Database(format!(
                    "the rows of {} are MAC'd under layout {recorded}, which this binary (layout {}) does not know: \
                     run the newer keyward",
                    t.name, t.layout
                )));
            };
            let (key, mut after, mut n) = (t.key[0].0, String::new(), 0u64);
            loop {
                let page = self.db.fetch_all(&walk_sql(t, &[&old, t]), args![after.clone(), PAGE]).await?;
                let Some(last) = page.last() else { break };
                after = last.get(key)?;
                let mut sealed = Vec::with_capacity(page.len());
                for r in &page {
                    macs.check(&old, r)?;
                    let values = stored_values(t, r)?;
                    sealed.push((
                        r.get::<String>(key)?,
                        macs.seal(t, &values.iter().map(|(c, a)| (*c, a)).collect::<Vec<_>>())?,
                    ));
                }
                n += sealed.len() as u64;
                self.store_macs(t, sealed).await?;
            }
            self.set_system_value(&row, &t.layout.to_string()).await?;
            done.push((t.name.to_owned(), recorded, t.layout, n));
        }
        Ok(done)
    }

    /// Writes computed MACs: many rows a statement where each is a round trip (PostgreSQL).
    async fn store_macs(&mut self, t: &Maced, sealed: Vec<(String, Arg)>) -> Result<(), StoreError> {
        let key = t.key[0].0;
        if self.backend == Backend::Sqlite {
            for (k, mac) in sealed {
                self.db
                    .execute(&format!("UPDATE {} SET mac = $2 WHERE {key} = $1", t.name), vec![Arg::from(k), mac])
                    .await?;
            }
            return Ok(());
        }
        let mut sealed = sealed.into_iter().peekable();
        while sealed.peek().is_some() {
            let chunk: Vec<(String, Arg)> = sealed.by_ref().take(self.rows_per_statement(500)).collect();
            let marks: Vec<String> =
                (0..chunk.len()).map(|i| format!("(${}::text, ${}::bytea)", 2 * i + 1, 2 * i + 2)).collect();
            let sql = format!(
                "UPDATE {} AS t SET mac = v.mac FROM (VALUES {}) AS v(k, mac) WHERE t.{key} = v.k",
                t.name,
                marks.join(", ")
            );
            let values = chunk.into_iter().flat_map(|(k, mac)| [Arg::from(k), mac]).collect();
            self.db.execute(&sql, values).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use keyward_core::Store;

    use super::*;

    /// The tables and columns of a migrated database.
    async fn schema(store: &SqlStore) -> Vec<(String, BTreeSet<String>)> {
        let mut pool = Pool(&store.pool);
        let (tables_sql, columns_sql) = match store.backend {
            Backend::Sqlite => (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                "SELECT name FROM pragma_table_info($1)",
            ),
            Backend::Postgres => (
                "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() \
                 ORDER BY table_name",
                "SELECT column_name::text AS name FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = $1",
            ),
        };
        let tables: Vec<String> = column(&mut pool, tables_sql, vec![]).await.unwrap();
        let mut out = Vec::new();
        for t in tables {
            let cols: Vec<String> = column(&mut pool, columns_sql, args![t.clone()]).await.unwrap();
            out.push((t, cols.into_iter().collect()));
        }
        out
    }

    /// Every table of the schema is classified, and every column of a MAC'd table is covered
    /// or declared volatile — on both engines — so a table or column added without a decision
    /// fails here.
    #[tokio::test]
    async fn every_table_and_column_of_the_schema_is_classified() {
        let dir = tempfile::tempdir().unwrap();
        let mut stores = vec![crate::connect(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 1).await.unwrap()];
        let pg = crate::connect::test_postgres().await;
        if let Some(pg) = &pg {
            stores.push(crate::connect(&pg.url, 1).await.unwrap());
        }
        for store in stores {
            let found = schema(&store).await;
            let names: BTreeSet<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
            let classified: BTreeSet<&str> = TABLES.iter().map(|(t, _)| *t).collect();
            assert_eq!(names, classified, "{:?}: tables and their classification differ", store.backend);
            for (table, cols) in &found {
                let Some((_, Class::Maced(m))) = TABLES.iter().find(|(t, _)| t == table) else { continue };
                let mut decided: BTreeSet<String> =
                    m.key.iter().chain(m.columns).map(|(c, _)| (*c).to_owned()).collect();
                decided.extend(m.volatile.iter().map(|(c, _)| (*c).to_owned()));
                decided.insert("mac".into());
                assert_eq!(cols, &decided, "{:?}: the columns of {table} and its MAC layout differ", store.backend);
            }
            store.close().await;
        }
    }

    /// Proxy routes as if a migration had added `route` to what their MAC covers: layout 1
    /// covered the name alone.
    const ROUTES_V2: Maced = Maced {
        name: "proxy_routes",
        layout: 2,
        key: &[("name", Ty::Text)],
        columns: &[("route", Ty::Text)],
        volatile: &[],
        earlier: &[Layout { version: 1, columns: &[] }],
    };

    /// Writes a route MAC'd under layout 1 (its `route` changed afterwards when `tamper`), and
    /// records layout 1.
    async fn route_under_v1(store: &SqlStore, name: &str, tamper: bool) {
        let v1 = ROUTES_V2.under(&ROUTES_V2.earlier[0]);
        let mut tx = store.begin_sql(true).await.unwrap();
        let key = Arg::from(name);
        let mac = tx.macs().unwrap().seal(&v1, &[("name", &key)]).unwrap();
        let sql = "INSERT INTO proxy_routes (name, route, mac) VALUES ($1, $2, $3)";
        tx.db.execute(sql, vec![key, Arg::from("{}"), mac]).await.unwrap();
        if tamper {
            let v1_keys = tx.macs().unwrap();
            let forged = Arg::from(format!("{name}-other"));
            let other = v1_keys.seal(&v1, &[("name", &forged)]).unwrap();
            tx.db
                .execute("UPDATE proxy_routes SET mac = $2 WHERE name = $1", vec![Arg::from(name), other])
                .await
                .unwrap();
        }
        tx.set_system_value(&layout_row("proxy_routes"), "1").await.unwrap();
        Box::new(tx).commit().await.unwrap();
    }

    /// A migration that changes what a table's MAC covers: every row is verified under the old
    /// layout and re-MACed under the new one in one transaction; a row that fails the old one
    /// stops the step with its table and key, and nothing changes — on both engines.
    #[tokio::test]
    async fn a_layout_step_verifies_under_the_old_layout_and_remacs_under_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let mut urls = vec![crate::DatabaseUrl::Sqlite(dir.path().join("kw.db"))];
        let pg = crate::connect::test_postgres().await;
        urls.extend(pg.as_ref().map(|p| p.url.clone()));
        for url in urls {
            let store = crate::connect::test_store(&url, 2).await;
            for name in ["stripe", "github"] {
                route_under_v1(&store, name, false).await;
            }
            let mut tx = store.begin_sql(true).await.unwrap();
            let done = tx.relayout(&[&ROUTES_V2]).await.unwrap();
            Box::new(tx).commit().await.unwrap();
            assert_eq!(done, vec![("proxy_routes".to_owned(), 1, 2, 2)]);
            let macs = store.macs().unwrap();
            let rows = Pool(&store.pool).fetch_all("SELECT name, route, mac FROM proxy_routes", vec![]).await.unwrap();
            for r in &rows {
                macs.check(&ROUTES_V2, r).unwrap();
                assert!(macs.verify(&ROUTES_V2.under(&ROUTES_V2.earlier[0]), r).unwrap().is_err());
            }
            // Done once: the layout is recorded.
            let mut tx = store.begin_sql(true).await.unwrap();
            assert!(tx.relayout(&[&ROUTES_V2]).await.unwrap().is_empty());
            drop(tx);

            // A row that does not verify under the old layout stops the step.
            Pool(&store.pool).execute("DELETE FROM proxy_routes", vec![]).await.unwrap();
            route_under_v1(&store, "good", false).await;
            route_under_v1(&store, "forged", true).await;
            let mut tx = store.begin_sql(true).await.unwrap();
            let err = tx.relayout(&[&ROUTES_V2]).await.unwrap_err().to_string();
            drop(tx);
            assert!(err.contains("proxy_routes/forged") && !err.contains('\n'), "{err}");
            let row = layout_row("proxy_routes");
            let layout = crate::sql_store::system_value(&mut Pool(&store.pool), Some(&macs), &row).await.unwrap();
            assert_eq!(layout.as_deref(), Some("1"), "the failed step changed nothing");
            store.close().await;
        }
    }

    /// The store MACs a token row exactly as the known-answer vector says: the columns it
    /// covers, their order and types are part of the format.
    #[tokio::test]
    async fn a_token_row_carries_the_known_answer_mac() {
        use keyward_core::TokenRecord;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../keyward-crypto/tests/testdata/known-answers.json");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let r = &v["row_macs"];
        let key = Key256::from_slice(&hex::decode(r["integrity_key"].as_str().unwrap()).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut urls = vec![crate::DatabaseUrl::Sqlite(dir.path().join("kw.db"))];
        let pg = crate::connect::test_postgres().await;
        urls.extend(pg.as_ref().map(|p| p.url.clone()));
        for url in urls {
            let store = crate::connect(&url, 2).await.unwrap();
            store.authenticate_rows(&key, r["cluster_id"].as_str().unwrap());
            let token = TokenRecord {
                accessor: "acc_fixture".into(),
                digest: "d1g3st".into(),
                policies: vec!["reader".into(), "default".into()],
                parent_accessor: None,
                display_name: "ci".into(),
                created_at: 1_796_400_973_664_766_599,
                ttl_secs: 3600,
                expires_at: Some(1_796_404_573_664_766_599),
                last_used: Some(5),
                revoked: false,
                allowed_cidrs: vec![],
                rate_limit: None,
                origin: Default::default(),
                meta: Default::default(),
                explicit_max_ttl_secs: 0,
                kind: Default::default(),
                period_secs: 0,
                uses_left: 0,
                renewable: true,
            };
            let mut tx = store.begin_write(false).await.unwrap();
            tx.insert_token(&token).await.unwrap();
            tx.commit().await.unwrap();
            let mac: Vec<u8> = sqlx::query_scalar("SELECT mac FROM tokens WHERE accessor = 'acc_fixture'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            // The vector of the current token layout (the one before it stays for the crypto test).
            let vector = r["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["table"] == "tokens" && v["layout"] == TOKENS.layout)
                .unwrap();
            assert_eq!(hex::encode(mac), vector["mac"].as_str().unwrap(), "{:?}", store.backend);
            store.close().await;
        }
    }

    /// `docs/untrusted-storage.md` holds the classification as it stands (regenerate with
    /// `KEYWARD_WRITE_DOCS=1`).
    #[test]
    fn the_documented_classification_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/untrusted-storage.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let (head, _) = doc.split_once("<!-- classification -->").unwrap_or((&doc, ""));
        let current = format!("{head}<!-- classification -->\n{}", classification_table());
        if std::env::var("KEYWARD_WRITE_DOCS").is_ok() {
            std::fs::write(path, &current).unwrap();
            return;
        }
        assert_eq!(doc, current, "docs/untrusted-storage.md is stale: rerun with KEYWARD_WRITE_DOCS=1");
    }

    #[test]
    fn every_maced_table_names_its_columns_once() {
        for (name, class) in TABLES {
            if let Class::Maced(m) = class {
                assert_eq!(*name, m.name);
                let mut all: Vec<&str> = m.key.iter().chain(m.columns).map(|(c, _)| *c).collect();
                all.extend(m.volatile.iter().map(|(c, _)| *c));
                let n = all.len();
                all.sort_unstable();
                all.dedup();
                assert_eq!(all.len(), n, "{name} names a column twice");
                assert!(!all.contains(&"mac"));
            }
        }
    }
}
