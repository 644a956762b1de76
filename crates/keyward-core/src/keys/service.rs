//! Key lifecycle: status, data-key rotation, rewrapping under the active master key, pruning.
use keyward_crypto::{blob_dek_version, open_secret_blob, seal_secret_blob, BlobContext};
use uuid::Uuid;

use super::commands::{migrate_batch, MigrateBatch, PruneDeks, Rewrap, RotateDek, StartMigration};
use super::{ResealedBatch, UnmigratedCount};
use crate::{AuditEntry, CoreError, KekUsage, KeyJob, KeyStatus, Keyward, ResealedVersion};

impl Keyward {
    /// Master keys (configured or still in use) and data-key versions, with their users.
    pub async fn key_status(&self) -> Result<KeyStatus, CoreError> {
        let usage = self.store.kek_usage().await?;
        let keyring = self.keys.keyring();
        let active = keyring.active().tag.as_str();
        let mut tags: Vec<String> = keyring.keks().iter().map(|k| k.tag.as_str().to_owned()).collect();
        tags.extend(usage.iter().map(|(t, _)| t.clone()).filter(|t| keyring.get(t).is_none()));
        let keks = tags
            .into_iter()
            .map(|tag| {
                let wrapped_keys = usage.iter().find(|(t, _)| *t == tag).map_or(0, |(_, n)| *n);
                let configured = keyring.get(&tag).is_some();
                let is_active = tag == active;
                KekUsage {
                    retirable: configured && !is_active && wrapped_keys == 0,
                    tag,
                    configured,
                    active: is_active,
                    wrapped_keys,
                }
            })
            .collect();
        Ok(KeyStatus { keks, deks: self.store.dek_usage().await? })
    }

    /// Adds a data-key version to a mount; returns it. Commits with its audit entry.
    pub async fn rotate_dek(&self, mount: &str, audit: AuditEntry) -> Result<u32, CoreError> {
        self.writer.submit(RotateDek { mount: mount.to_owned() }, audit).await
    }

    /// Re-wraps every key held under an older master key with the active one; returns how many.
    /// Commits with its audit entry.
    pub async fn rewrap(&self, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(Rewrap, audit).await
    }

    /// Deletes a mount's older data-key versions that no blob uses: `(deleted, kept)`. Commits
    /// with its audit entry.
    pub async fn prune_deks(&self, mount: &str, audit: AuditEntry) -> Result<(Vec<u32>, Vec<u32>), CoreError> {
        // The blobs are counted here, outside the write lock: a count reads every version of the
        // mount (there is no index on the data-key version), which must not stall the writer.
        let m = self.store.mount(mount).await?.ok_or_else(|| CoreError::NotFound(format!("mount {mount:?}")))?;
        let usage: Vec<crate::DekUsage> =
            self.store.dek_usage().await?.into_iter().filter(|d| d.mount == mount).collect();
        let newest = usage.iter().map(|d| d.version).max();
        let unused = usage.iter().filter(|d| d.blobs == 0 && Some(d.version) != newest).map(|d| d.version).collect();
        let pruned = self.writer.submit(PruneDeks { mount: mount.to_owned(), mount_id: m.id, unused }, audit).await?;
        // A pruned key must not outlive its row in this server's memory (other replicas forget
        // theirs when they restart: nothing can use it any more).
        self.keys.evict_deks(m.id, &pruned.deleted);
        Ok((pruned.deleted, pruned.kept))
    }
}

impl Keyward {
    /// Starts a re-encryption job (one mount, or every kv mount) and runs it in the background,
    /// `migrate_batch` rows per transaction. Refused while another job runs. The start commits
    /// with its audit entry.
    pub async fn start_migration(&self, mount: Option<&str>, audit: AuditEntry) -> Result<KeyJob, CoreError> {
        let cmd = StartMigration {
            mount: mount.map(str::to_owned),
            owner: self.instance.clone(),
            counted: self.count_unmigrated(mount).await?,
        };
        let job = self.writer.submit(cmd, audit).await?;
        // Run by the server that runs the background work: this one, or another replica within
        // its next check (see [`Keyward::resume_jobs`]).
        if job.status == "running" && self.leads_background() {
            self.spawn_job(job.clone());
        }
        Ok(job)
    }

    /// Counts the rows a migration of `mount` (or of every mount) has to re-encrypt, outside the
    /// write lock (see [`UnmigratedCount`]); `None` where the start will be refused anyway (a job
    /// is running, or the mount does not exist), so no scan is wasted.
    async fn count_unmigrated(&self, mount: Option<&str>) -> Result<Option<UnmigratedCount>, CoreError> {
        if self.store.key_jobs().await?.iter().any(|j| j.status == "running") {
            return Ok(None);
        }
        let mount_id = match mount {
            Some(m) => match self.store.mount(m).await? {
                Some(m) => Some(m.id),
                None => return Ok(None),
            },
            None => None,
        };
        let data_keys = self.store.data_key_versions().await?;
        let rows = self.store.count_unmigrated(mount_id).await?;
        Ok(Some(UnmigratedCount { data_keys, rows }))
    }

    /// On the server that runs the background work, runs the jobs left running that it does not
    /// run yet: started on another replica, interrupted by a crash or a restart, or left by a
    /// server that died. Returns how many it took up.
    pub async fn resume_jobs(&self) -> Result<usize, CoreError> {
        if !self.leads_background() {
            return Ok(0);
        }
        let mut resumed = 0;
        for job in self.store.key_jobs().await?.into_iter().filter(|j| j.status == "running") {
            if self.spawn_job(job.clone()) {
                tracing::info!(job = %job.id, done = job.done, total = job.total, "resuming key job");
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Runs a job to its end: each batch is read and re-sealed here, outside the write lock,
    /// then stored by the writer with the job's progress (see [`ResealedBatch`]); after each,
    /// the job rests `migrate_nice_ratio` times as long as the batch took.
    /// Runs it here unless it already runs here; it stops once this server no longer leads the
    /// background work (the next leader resumes it from its last batch).
    fn spawn_job(&self, mut job: KeyJob) -> bool {
        if !self.background.claim(job.id) {
            return false;
        }
        let kw = self.clone();
        tokio::spawn(async move {
            let id = job.id;
            while job.status == "running" && kw.leads_background() {
                let started = std::time::Instant::now();
                let stored = match kw.reseal_batch(&job).await {
                    Ok(batch) => kw.store_batch(batch).await,
                    Err(e) => Err(e),
                };
                match stored {
                    Ok(next) => {
                        job = next;
                        metrics::gauge!("keyward_key_job_done").set(job.done as f64);
                        metrics::gauge!("keyward_key_job_total").set(job.total as f64);
                        if job.status != "running" {
                            break;
                        }
                        let rest = started.elapsed().saturating_mul(kw.config.migrate_nice_ratio);
                        if rest.is_zero() {
                            tokio::task::yield_now().await;
                        } else {
                            tokio::time::sleep(rest).await;
                        }
                    }
                    Err(e) => {
                        // Storage trouble: back off and retry; progress so far is committed.
                        tracing::warn!(job = %id, error = %e, "key job batch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
            kw.background.release(id);
            if job.status == "running" {
                tracing::info!(job = %id, done = job.done, "key job left to the server that now runs background work");
                return;
            }
            tracing::info!(job = %id, status = %job.status, done = job.done, error = %job.error, "key job finished");
        });
        true
    }

    /// Reads the job's next batch from committed state and re-seals each version under its
    /// mount's newest data key, holding no lock. A version that cannot be decrypted ends the
    /// batch and will fail the job (named by mount, secret id and version, never a value); a
    /// storage error is returned, to retry.
    pub async fn reseal_batch(&self, job: &KeyJob) -> Result<ResealedBatch, CoreError> {
        let (rows, to) =
            self.store.unmigrated_versions(job.mount_id, &job.cursor, self.config.migrate_batch.max(1)).await?;
        let mut batch = ResealedBatch {
            job: job.id,
            from: job.cursor.clone(),
            to,
            rows: Vec::with_capacity(rows.len()),
            sealed_under: Vec::new(),
            failure: None,
            owner: self.instance.clone(),
        };
        for row in rows {
            let (secret, mount, version) = (row.secret, row.mount, row.version);
            let ctx = BlobContext { mount: *mount.as_bytes(), secret: *secret.as_bytes(), version };
            let active = row.newest;
            let resealed = async {
                let old = self.keys.dek(&*self.store, mount, blob_dek_version(&row.blob)?).await?;
                let plain = open_secret_blob(&old, &ctx, &row.blob)?;
                let dek = self.keys.dek(&*self.store, mount, active).await?;
                Ok::<_, CoreError>((seal_secret_blob(&dek, active, &ctx, &plain), active))
            };
            match resealed.await {
                Ok((blob, dek_version)) => {
                    if !batch.sealed_under.contains(&(mount, dek_version)) {
                        batch.sealed_under.push((mount, dek_version));
                    }
                    batch.rows.push(ResealedVersion { secret, version, row: row.row, blob, dek_version });
                }
                Err(e @ CoreError::Store(_)) => return Err(e),
                // Its keys went with the mount, deleted meanwhile: nothing left to re-encrypt.
                Err(_) if !self.store.data_key_versions().await?.iter().any(|(m, _)| *m == mount) => continue,
                Err(_) => {
                    batch.failure = Some(format!(
                        "secret {secret} version {version} (mount {mount}) cannot be decrypted; it was left as it is"
                    ));
                    break;
                }
            }
        }
        Ok(batch)
    }

    /// Stores a re-sealed batch with the job's progress, in one transaction; the job comes back
    /// unchanged when the batch is stale (see [`ResealedBatch`]). On a store several servers
    /// share (PostgreSQL) that transaction takes row locks only and appends no audit entry, so it
    /// runs beside the writer (as it would on another server) and audited requests do not queue
    /// behind it; a store one process serves (SQLite) has one write lock, taken in turn through
    /// the writer.
    pub async fn store_batch(&self, batch: ResealedBatch) -> Result<KeyJob, CoreError> {
        if self.store.exclusive() {
            return self.writer.maintain(MigrateBatch(batch)).await;
        }
        let mut tx = self.store.begin_write(false).await?;
        let job = migrate_batch(tx.as_mut(), &batch).await?;
        tx.commit_unsynced().await?;
        Ok(job)
    }

    /// A key job.
    pub async fn key_job(&self, id: Uuid) -> Result<KeyJob, CoreError> {
        self.store.key_job(id).await?.ok_or_else(|| CoreError::NotFound(format!("key job {id}")))
    }

    /// Key jobs, newest first.
    pub async fn key_jobs(&self) -> Result<Vec<KeyJob>, CoreError> {
        Ok(self.store.key_jobs().await?)
    }
}

impl Keyward {
    /// Checks master keys against their key-check values, an encrypt/decrypt self-test and the
    /// audit chain; with `verify_all`, decrypts every stored blob (page by page, printing nothing
    /// secret) and reports failures by mount, path and version.
    pub async fn doctor(&self, verify_all: bool) -> Result<crate::DoctorReport, CoreError> {
        let mut r = crate::DoctorReport::default();
        let checks = self.store.kek_checks().await?;
        r.master_keys_ok = true;
        for kek in self.keys.keyring().keks() {
            match checks.iter().find(|(t, _)| t == kek.tag.as_str()) {
                Some((_, v)) if kek.verifies(v) => {}
                _ => {
                    r.master_keys_ok = false;
                    r.problems.push(format!("master key {:?} does not match its key-check value", kek.tag.as_str()));
                }
            }
        }
        let probe = keyward_crypto::Key256::generate();
        let aad = keyward_crypto::Aad::new("keyward/doctor");
        r.self_test_ok =
            probe.open(&aad, &probe.seal(&aad, b"keyward self-test")).is_ok_and(|p| &p[..] == b"keyward self-test");
        if !r.self_test_ok {
            r.problems.push("the AES-256-GCM self-test failed".into());
        }
        let audit = self.verify_audit(None).await?;
        r.audit_ok = audit.ok;
        if let Some(reason) = audit.reason {
            r.problems.push(format!("audit chain: {reason}"));
        }
        // Every stored key opens under the keyring: a key no blob uses yet, a transit key, too.
        let mut keys_ok = true;
        for domain in keyward_crypto::WrappedKeyDomain::ALL {
            for (owner, version, wrapped) in self.store.wrapped_keys_in(domain.label()).await? {
                if self.keys.keyring().unwrap(domain, owner.as_bytes(), version, &wrapped).is_err() {
                    keys_ok = false;
                    r.problems.push(format!(
                        "the {} key of {owner} version {version} does not open under master key {:?}",
                        domain.label(),
                        wrapped.kek_tag
                    ));
                }
            }
        }
        r.rows_ok = true;
        for check in self.store.verify_rows().await? {
            r.rows_checked += check.rows;
            for key in &check.failed {
                r.rows_ok = false;
                r.problems
                    .push(format!("row {}/{key} failed its integrity check: changed outside keyward", check.table));
            }
        }
        if verify_all {
            let mut after = None;
            loop {
                let page = self.store.blobs_page(after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = Some((last.2, last.4));
                for (mount_id, mount, secret_id, path, version, blob) in &page {
                    r.checked += 1;
                    let ctx = keyward_crypto::BlobContext {
                        mount: *mount_id.as_bytes(),
                        secret: *secret_id.as_bytes(),
                        version: *version,
                    };
                    let ok = match keyward_crypto::blob_dek_version(blob) {
                        Ok(v) => match self.keys.dek(self.store.as_ref(), *mount_id, v).await {
                            Ok(dek) => keyward_crypto::open_secret_blob(&dek, &ctx, blob).is_ok(),
                            Err(_) => false,
                        },
                        Err(_) => false,
                    };
                    if ok {
                        *r.mounts.entry(mount.clone()).or_default() += 1;
                    } else {
                        r.failures.push(format!("{mount}/{path} version {version}"));
                    }
                }
            }
        }
        // Rows that fail their MAC are named above; the inert-rule listing reads them too.
        r.inert_rules = match self.inert_policy_rules().await {
            Ok(rules) => rules,
            Err(e) if !r.rows_ok => {
                tracing::debug!(error = %e, "inert policy rules not listed: tampered rows");
                vec![]
            }
            Err(e) => return Err(e),
        };
        r.ok = r.master_keys_ok && keys_ok && r.self_test_ok && r.audit_ok && r.rows_ok && r.failures.is_empty();
        Ok(r)
    }
}

/// Secrets whose field ages are read per query by the stale-secret scan.
const STALE_PAGE: u32 = 1000;

impl Keyward {
    /// The age in seconds past which a field of a secret is stale: the secret's `rotate_after`
    /// (custom metadata), else its mount's, else the server's default.
    pub fn rotate_limit(&self, mount: &crate::Mount, custom: &std::collections::BTreeMap<String, String>) -> u64 {
        custom.get("rotate_after").and_then(|d| crate::parse_duration(d).ok()).unwrap_or_else(|| {
            mount
                .config
                .get("rotate_after_secs")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(self.config.default_rotate_after_secs)
        })
    }

    /// Fields unchanged for longer than their limit: `older_than` if given, else the path's
    /// `rotate_after`, else the mount's, else the server default. Nothing is decrypted.
    pub async fn stale_fields(
        &self,
        mount: Option<&str>,
        older_than: Option<u64>,
    ) -> Result<Vec<crate::StaleField>, CoreError> {
        if let Some(m) = mount {
            self.versioned_mount(m, "the stale report").await?;
        }
        self.scan_stale(mount, older_than, 0).await
    }

    /// [`Keyward::stale_fields`] of every mount as a background task: after each page it rests
    /// `rest` times as long as the page took, so a scan of millions of secrets takes at most
    /// `1 / (1 + rest)` of a core and of the database's time from the requests being served.
    pub async fn stale_fields_in_background(&self, rest: u32) -> Result<Vec<crate::StaleField>, CoreError> {
        self.scan_stale(None, None, rest).await
    }

    async fn scan_stale(
        &self,
        mount: Option<&str>,
        older_than: Option<u64>,
        rest: u32,
    ) -> Result<Vec<crate::StaleField>, CoreError> {
        let mounts: Vec<crate::Mount> = self
            .store
            .list_mounts()
            .await?
            .into_iter()
            .filter(|m| m.kind == crate::MountKind::Kv && mount.is_none_or(|n| n == m.path))
            .collect();
        if let (Some(name), true) = (mount, mounts.is_empty()) {
            return Err(CoreError::NotFound(format!("mount {name:?}")));
        }
        let now = crate::now_nanos();
        let mut out = Vec::new();
        for m in mounts {
            let mut after: Option<String> = None;
            loop {
                let started = std::time::Instant::now();
                let page = self.store.current_stamps(m.id, after.as_deref(), STALE_PAGE).await?;
                if rest > 0 {
                    tokio::time::sleep(started.elapsed() * rest).await;
                }
                let Some(last) = page.last() else { break };
                after = Some(last.0.clone());
                for (path, custom, stamps) in &page {
                    let limit = older_than.unwrap_or_else(|| self.rotate_limit(&m, custom));
                    for (field, stamp) in stamps {
                        let age = u64::try_from((now - stamp.changed_at).max(0) / 1_000_000_000).unwrap_or(0);
                        if age > limit {
                            out.push(crate::StaleField {
                                mount: m.path.clone(),
                                path: path.clone(),
                                field: field.clone(),
                                version: stamp.version,
                                changed_at: stamp.changed_at,
                                age_secs: age,
                                limit_secs: limit,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
