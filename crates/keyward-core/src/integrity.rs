//! Untrusted storage (DESIGN §8): the integrity key — random, wrapped under the KEK in domain
//! `keyward/integrity-key`, its owner the cluster's id — from which the store derives the keys of
//! the row MACs. Loading it, making it at initialisation, and the one-time upgrade of a database
//! written before rows were authenticated.
use keyward_crypto::{Key256, WrappedKeyDomain};
use uuid::Uuid;

use crate::audit::PendingEntry;
use crate::engine::writer::{genesis, Chain};
use crate::{AuditEntry, ChainVerifier, CoreError, Keyward, StoreTx};

/// The integrity version this binary writes and understands.
pub(crate) const INTEGRITY_VERSION: u32 = 1;
/// The system row holding the database's integrity version.
pub(crate) const VERSION_KEY: &str = "integrity_version";
/// The system row that says `operator init` ran.
pub(crate) const INITIALIZED: &str = "initialized";
/// The audit operation of the one-time upgrade.
const UPGRADE: &str = "sys.integrity.upgrade";
/// The audit operation of re-MACing tables whose layout a migration changed.
const RELAYOUT: &str = "sys.integrity.relayout";

/// What loading the integrity key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// The row keys are installed and the markers hold.
    Ready,
    /// An empty database: `operator init` has not run.
    Fresh,
}

fn untrusted(why: impl Into<String>) -> CoreError {
    CoreError::Untrusted(why.into())
}

/// A fresh integrity key with its cluster id, wrapped for storage.
pub(crate) struct NewIntegrity {
    pub cluster: Uuid,
    pub key: Key256,
}

impl NewIntegrity {
    pub(crate) fn generate() -> Self {
        Self { cluster: Uuid::new_v4(), key: Key256::generate() }
    }

    /// Stores the wrapped key, installs the row keys in `tx`, and writes the integrity version.
    pub(crate) async fn store(&self, keys: &crate::KeyManager, tx: &mut dyn StoreTx) -> Result<(), CoreError> {
        let d = WrappedKeyDomain::IntegrityKey;
        let wrapped = keys.wrap(d, self.cluster, 1, &self.key);
        tx.insert_wrapped_key(d.label(), self.cluster, 1, &wrapped).await?;
        tx.authenticate_rows(&self.key, &self.cluster.to_string());
        tx.set_system_value(VERSION_KEY, &INTEGRITY_VERSION.to_string()).await?;
        tx.record_layouts().await?;
        Ok(())
    }
}

impl Keyward {
    /// Loads the integrity key and installs the row keys (at once when they already are). A
    /// database written before rows were authenticated is upgraded once; one that holds rows
    /// with no integrity key or no valid markers is refused.
    pub(crate) async fn load_integrity(&self) -> Result<Loaded, CoreError> {
        if self.store.rows_authenticated() {
            return Ok(Loaded::Ready);
        }
        if let Some((cluster, key)) = self.integrity_key().await? {
            self.store.authenticate_rows(&key, &cluster.to_string());
            self.check_markers().await?;
            if self.store.stale_layouts().await? {
                self.relayout().await?;
            }
            self.load_clock_mark().await?;
            return Ok(Loaded::Ready);
        }
        if self.store.awaits_integrity_upgrade().await? {
            self.upgrade_integrity().await?;
            return Ok(Loaded::Ready);
        }
        if self.store.holds_rows().await? {
            return Err(untrusted(
                "the database holds rows but no integrity key and no valid initialized marker: they were changed \
                 outside keyward; refusing to use them",
            ));
        }
        Ok(Loaded::Fresh)
    }

    /// The stored integrity key and its cluster id, unwrapped; `None` when there is none.
    pub(crate) async fn integrity_key(&self) -> Result<Option<(Uuid, Key256)>, CoreError> {
        let d = WrappedKeyDomain::IntegrityKey;
        let mut found = self.store.wrapped_keys_in(d.label()).await?;
        if found.len() > 1 {
            return Err(untrusted("the database holds more than one integrity key: refusing to choose"));
        }
        let Some((cluster, version, wrapped)) = found.pop() else { return Ok(None) };
        let key =
            self.keys.keyring().unwrap(d, cluster.as_bytes(), version, &wrapped).map_err(|_| {
                CoreError::Integrity(format!("the integrity key (under master key {:?})", wrapped.kek_tag))
            })?;
        Ok(Some((cluster, key)))
    }

    /// Checks the markers an authenticated database must hold: initialised, and at an integrity
    /// version this binary understands.
    async fn check_markers(&self) -> Result<(), CoreError> {
        let version = self.store.system_value(VERSION_KEY).await?;
        match version.as_deref().map(str::parse::<u32>) {
            Some(Ok(v)) if v <= INTEGRITY_VERSION => {}
            Some(Ok(v)) => {
                return Err(untrusted(format!(
                    "the database is at integrity version {v}, newer than this binary's {INTEGRITY_VERSION}: run \
                     the newer keyward (every replica upgrades together)"
                )))
            }
            _ => return Err(untrusted("the database's integrity version is missing: its rows cannot be trusted")),
        }
        match self.store.system_value(INITIALIZED).await?.as_deref() {
            Some("true") => Ok(()),
            _ => Err(untrusted("the database holds rows but no valid initialized marker: refusing to use them")),
        }
    }

    /// Re-MACs the tables a migration changed (see `IntegrityTx::relayout_rows`), under the
    /// initialisation lock, with a `sys.integrity.relayout` audit entry in the same transaction.
    async fn relayout(&self) -> Result<(), CoreError> {
        let audit_keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let mut tx = self.store.begin_write(true).await?;
        let done = tx.relayout_rows().await?;
        if done.is_empty() {
            return Ok(()); // another server did it while this one waited for the lock
        }
        let mut entry = AuditEntry {
            operation: RELAYOUT.into(),
            status: 200,
            time: crate::format_rfc3339(crate::now_nanos()),
            ..AuditEntry::default()
        };
        for (table, from, to, rows) in &done {
            entry.details.insert(table.clone(), serde_json::json!({"from": from, "to": to, "rows": rows}));
        }
        let pending = PendingEntry::new(entry)?;
        let mut chain = Chain::new(&audit_keys, Some(tx.audit_head_for_update().await?.unwrap_or_else(genesis)));
        chain.next(&pending);
        tx.append_audit(&chain.rows).await?;
        tx.commit().await?;
        tracing::warn!(tables = done.len(), "rows re-MACed under their tables' new layouts");
        Ok(())
    }

    /// The one-time upgrade of a database written before rows were authenticated, under the
    /// initialisation lock: every row gets its MAC, trusted as found, in one transaction with the
    /// new integrity key, the integrity version and a `sys.integrity.upgrade` audit entry. The
    /// audit chain must verify first, and must not record an earlier upgrade: a database whose
    /// integrity key was deleted to pass for an old one is refused.
    async fn upgrade_integrity(&self) -> Result<(), CoreError> {
        let audit_keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let head = self.store.audit_head().await?.map_or(0, |h| h.0);
        let mut verifier = ChainVerifier::new(&audit_keys, head, None);
        let (mut after, mut upgraded_before) = (0, false);
        loop {
            let rows = self.store.audit_rows(after, 1000).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for r in &rows {
                verifier.push(r);
                upgraded_before |= serde_json::from_str::<serde_json::Value>(&r.entry)
                    .is_ok_and(|e| e.get("operation").and_then(|o| o.as_str()) == Some(UPGRADE));
            }
        }
        let report = verifier.finish();
        if !report.ok {
            return Err(untrusted(format!(
                "the audit chain does not verify ({}): refusing to trust this database's rows for the one-time \
                 integrity upgrade",
                report.reason.unwrap_or_default()
            )));
        }
        if upgraded_before {
            return Err(untrusted(
                "the audit chain records an earlier integrity upgrade, yet the integrity key is gone: this database \
                 was rewound or tampered with; refusing to trust its rows",
            ));
        }
        let mut tx = self.store.begin_write(true).await?;
        if tx.wrapped_keys().await?.iter().any(|(d, ..)| d == WrappedKeyDomain::IntegrityKey.label()) {
            // Another server upgraded it while this one waited for the lock.
            drop(tx);
            let (cluster, key) = self
                .integrity_key()
                .await?
                .ok_or_else(|| untrusted("the integrity key vanished during the upgrade"))?;
            self.store.authenticate_rows(&key, &cluster.to_string());
            return self.check_markers().await;
        }
        let fresh = NewIntegrity::generate();
        fresh.store(&self.keys, tx.as_mut()).await?;
        let counts = tx.authenticate_existing_rows().await?;
        let mut entry = AuditEntry {
            operation: UPGRADE.into(),
            status: 200,
            time: crate::format_rfc3339(crate::now_nanos()),
            ..AuditEntry::default()
        };
        for (table, n) in &counts {
            entry.details.insert(format!("rows_{table}"), (*n).into());
        }
        entry.details.insert("integrity_version".into(), INTEGRITY_VERSION.into());
        let pending = PendingEntry::new(entry)?;
        let mut chain = Chain::new(&audit_keys, Some(tx.audit_head_for_update().await?.unwrap_or_else(genesis)));
        chain.next(&pending);
        tx.append_audit(&chain.rows).await?;
        tx.commit().await?;
        self.store.authenticate_rows(&fresh.key, &fresh.cluster.to_string());
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        tracing::warn!(
            rows = total,
            "rows authenticated for the first time (integrity version {INTEGRITY_VERSION}): they were trusted as found"
        );
        Ok(())
    }
}
