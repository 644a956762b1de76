//! Key lifecycle: status, data-key rotation, rewrapping under the active master key, pruning.
use crate::service::unexpected;
use uuid::Uuid;

use crate::{CoreError, KekUsage, KeyJob, KeyStatus, Keyward, WriteOp, WriteReply};

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

    /// Adds a data-key version to a mount; returns it.
    pub async fn rotate_dek(&self, mount: &str) -> Result<u32, CoreError> {
        match self.writer.submit(WriteOp::RotateDek { mount: mount.to_owned() }).await? {
            WriteReply::DekRotated(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Re-wraps every key held under an older master key with the active one; returns how many.
    pub async fn rewrap(&self) -> Result<u64, CoreError> {
        match self.writer.submit(WriteOp::Rewrap).await? {
            WriteReply::Rewrapped(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a mount's older data-key versions that no blob uses: `(deleted, kept)`.
    pub async fn prune_deks(&self, mount: &str) -> Result<(Vec<u32>, Vec<u32>), CoreError> {
        match self.writer.submit(WriteOp::PruneDeks { mount: mount.to_owned() }).await? {
            WriteReply::Pruned { deleted, kept } => Ok((deleted, kept)),
            other => Err(unexpected(&other)),
        }
    }
}

impl Keyward {
    /// Starts a re-encryption job (one mount, or every kv mount) and runs it in the background,
    /// `migrate_batch` rows per transaction. Refused while another job runs.
    pub async fn start_migration(&self, mount: Option<&str>) -> Result<KeyJob, CoreError> {
        let op = WriteOp::StartMigration { mount: mount.map(str::to_owned), owner: self.instance.clone() };
        match self.writer.submit(op).await? {
            WriteReply::Job(job) => {
                if job.status == "running" {
                    self.spawn_job(job.id);
                }
                Ok(job)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Resumes jobs left running (by a crash or a restart); returns how many.
    pub async fn resume_jobs(&self) -> Result<usize, CoreError> {
        let running: Vec<KeyJob> = self.store.key_jobs().await?.into_iter().filter(|j| j.status == "running").collect();
        for job in &running {
            tracing::info!(job = %job.id, done = job.done, total = job.total, "resuming key job");
            self.spawn_job(job.id);
        }
        Ok(running.len())
    }

    fn spawn_job(&self, id: Uuid) {
        let batch = self.config.migrate_batch;
        let kw = self.clone();
        tokio::spawn(async move {
            loop {
                let op = WriteOp::MigrateBatch { job: id, limit: batch.max(1), owner: kw.instance.clone() };
                match kw.writer.submit(op).await {
                    Ok(WriteReply::Job(job)) if job.status == "running" => tokio::task::yield_now().await,
                    Ok(WriteReply::Job(job)) => {
                        tracing::info!(job = %id, status = %job.status, done = job.done, error = %job.error, "key job finished");
                        break;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        // Storage trouble: back off and retry; progress so far is committed.
                        tracing::warn!(job = %id, error = %e, "key job batch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
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
