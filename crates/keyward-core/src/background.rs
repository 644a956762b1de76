//! Background work runs on one server at a time: the one holding [`JobLock::Background`].
//! Key jobs, stale scans and scheduled retention run there; another replica takes the lock —
//! and the jobs, from their last committed batch — when that server dies (its connection, and
//! with it the advisory lock, goes) or loses its database connection.
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use uuid::Uuid;

use crate::{CoreError, HeldLock, JobLock, Keyward};

/// This server's part in the background work.
#[derive(Debug, Default)]
pub(crate) struct Background {
    /// Whether this server holds the background lock.
    leading: AtomicBool,
    /// The key jobs running in this process.
    running: Mutex<HashSet<Uuid>>,
}

impl Background {
    /// Marks job `id` as running here; false if it already was.
    pub(crate) fn claim(&self, id: Uuid) -> bool {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id)
    }

    /// Job `id` stopped running here.
    pub(crate) fn release(&self, id: Uuid) {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }

    /// Whether this server runs the background work.
    pub(crate) fn leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }
}

/// The background lock, held: background work runs here while it is.
#[derive(Debug)]
pub struct Leadership {
    held: Box<dyn HeldLock>,
    kw: Keyward,
}

impl Leadership {
    /// Whether the lock is still held; once it is not, this server stops leading (its jobs stop
    /// after their current batch) and must take the lock again to lead.
    pub async fn still_held(&mut self) -> bool {
        let held = self.held.still_held().await;
        if !held {
            self.kw.background.leading.store(false, Ordering::Release);
            metrics::gauge!("keyward_background_leader").set(0.0);
        }
        held
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.kw.background.leading.store(false, Ordering::Release);
        metrics::gauge!("keyward_background_leader").set(0.0);
    }
}

impl Keyward {
    /// Takes the background lock if no server holds it: this server then runs the background
    /// work, starting with the key jobs left running (by a crash, a restart, or the death of the
    /// server that held it).
    pub async fn try_lead(&self) -> Result<Option<Leadership>, CoreError> {
        let Some(held) = self.store.try_lock(JobLock::Background).await? else {
            metrics::gauge!("keyward_background_leader").set(0.0);
            return Ok(None);
        };
        self.background.leading.store(true, Ordering::Release);
        metrics::gauge!("keyward_background_leader").set(1.0);
        tracing::info!(server = %self.instance, "this server runs the background work (key jobs, scans, retention)");
        Ok(Some(Leadership { held, kw: self.clone() }))
    }

    /// Whether this server runs the background work.
    pub fn leads_background(&self) -> bool {
        self.background.leading()
    }
}
