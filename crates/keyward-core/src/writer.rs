//! The single writer: one task per database that applies writes and audit entries in
//! group-committed batches, so many requests share one transaction and one fsync. An audit entry
//! that goes with a write commits in the same transaction; the chain's next `seq` and hash are
//! assigned here, under the head's lock. On SQLite, entries with no write go to the audit
//! appender thread instead (`appender.rs`).
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::appender::{EntryQueue, WriteTurn};
use crate::audit::PendingEntry;
use crate::ops::apply;
use crate::read_cache::ReadCache;
use crate::{AuditEntry, AuditKeys, AuditRow, CoreError, KeyManager, Store, StoreError, StoreTx, WriteOp, WriteReply};

/// Most jobs applied in one transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// Queue depth before submitters wait (back-pressure).
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<WriteReply, CoreError>>;

struct Job {
    op: Option<WriteOp>,
    audit: Option<PendingEntry>,
    /// The entry as given, kept for an op whose reply adds details to it.
    entry: Option<AuditEntry>,
    reply: Reply,
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    /// Where entries with no write go, when the store has an appender (SQLite).
    entries: Option<EntryQueue>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("op", &self.op).finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer. Where the store has a synchronous audit appender (SQLite), entries
    /// with no write go to the appender's thread, and the writer runs on a thread of its own, so
    /// its commits never wait behind request tasks for a turn on the runtime; the two take turns
    /// on the database. Otherwise the writer is a task on the current tokio runtime and takes
    /// every entry. Committed audit entries (canonical JSON lines) are offered to `sink`,
    /// best-effort. Changes are dropped from `cache` once their batch is over, before anyone is
    /// answered.
    pub(crate) fn spawn(
        store: Arc<dyn Store>,
        keys: Arc<KeyManager>,
        sink: Option<mpsc::Sender<String>>,
        cache: Option<Arc<ReadCache>>,
    ) -> Result<Self, CoreError> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let Some(appender) = store.audit_appender()? else {
            tokio::spawn(run(State { store, keys, sink, cache, turn: None }, rx));
            return Ok(Self { queue, entries: None });
        };
        let turn = WriteTurn::default();
        let entries = EntryQueue::start(appender, keys.clone(), store.clone(), sink.clone(), turn.clone())?;
        let thread_err = |e: std::io::Error| StoreError::Database(format!("cannot start the database writer: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(thread_err)?;
        let state = State { store, keys, sink, cache, turn: Some(turn) };
        std::thread::Builder::new()
            .name("keyward-writer".into())
            .spawn(move || runtime.block_on(run(state, rx)))
            .map_err(thread_err)?;
        Ok(Self { queue, entries: Some(entries) })
    }

    async fn enqueue(&self, op: Option<WriteOp>, audit: Option<AuditEntry>) -> Result<WriteReply, CoreError> {
        let entry = audit.as_ref().filter(|_| op.as_ref().is_some_and(WriteOp::reports_details)).cloned();
        // Canonicalised here, on the request's task, so the writer's batches stay short.
        let audit = audit.map(PendingEntry::new).transpose()?;
        let (reply, rx) = oneshot::channel();
        self.queue.send(Job { op, audit, entry, reply }).await.map_err(|_| CoreError::Unavailable)?;
        rx.await.map_err(|_| CoreError::Unavailable)?
    }

    /// Queues background upkeep that no request asked for — a token's last-use stamp, a batch of
    /// a re-encryption job — and waits until its batch has committed. Every change a request
    /// makes goes through [`Writer::submit_audited`] instead, so it commits with its entry.
    pub(crate) async fn maintain(&self, op: WriteOp) -> Result<WriteReply, CoreError> {
        debug_assert!(matches!(op, WriteOp::TouchToken { .. } | WriteOp::MigrateBatch(_)), "{op:?} is not upkeep");
        self.enqueue(Some(op), None).await
    }

    /// Queues a write whose audit entry must commit in the same transaction.
    pub async fn submit_audited(&self, op: WriteOp, audit: AuditEntry) -> Result<WriteReply, CoreError> {
        self.enqueue(Some(op), Some(audit)).await
    }

    /// Appends an audit entry and waits until it is durably committed; a `later` one is not
    /// urgent (see [`crate::Keyward::audit_later`]).
    pub async fn audit(&self, entry: AuditEntry, later: bool) -> Result<(), CoreError> {
        match &self.entries {
            Some(entries) => entries.append(entry, later).await,
            None => self.enqueue(None, Some(entry)).await.map(|_| ()),
        }
    }
}

async fn run(mut state: State, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        state.apply(std::mem::take(&mut batch)).await;
    }
}

/// What the writer keeps between batches.
struct State {
    store: Arc<dyn Store>,
    keys: Arc<KeyManager>,
    sink: Option<mpsc::Sender<String>>,
    cache: Option<Arc<ReadCache>>,
    /// Taken around each batch where the audit appender shares the database.
    turn: Option<WriteTurn>,
}

impl State {
    /// Commits one batch and answers its jobs.
    async fn apply(&mut self, jobs: Vec<Job>) {
        let audit_keys = if jobs.iter().any(|j| j.audit.is_some()) {
            match self.keys.audit_keys(self.store.as_ref()).await {
                Ok(k) => Some(k),
                Err(e) => {
                    let msg = e.to_string();
                    for job in jobs {
                        let _ = job.reply.send(Err(CoreError::AuditUnavailable(msg.clone())));
                    }
                    return;
                }
            }
        } else {
            None
        };
        let (results, lines) = {
            let _turn = match &self.turn {
                Some(turn) => Some(turn.lock().await),
                None => None,
            };
            commit_batch(self.store.as_ref(), &self.keys, audit_keys.as_deref(), &jobs).await
        };
        if let Some(cache) = &self.cache {
            jobs.iter().filter_map(|j| j.op.as_ref()).for_each(|op| cache.invalidate(op));
        }
        ship(self.sink.as_ref(), lines);
        for (job, result) in jobs.into_iter().zip(results) {
            if let Ok(WriteReply::MountDeleted { id, .. }) = &result {
                self.keys.evict_mount(*id);
            }
            let _ = job.reply.send(result);
        }
    }
}

/// Offers committed entries to the extra sinks, best-effort.
pub(crate) fn ship(sink: Option<&mpsc::Sender<String>>, lines: Vec<String>) {
    if let Some(sink) = sink {
        for line in lines {
            if sink.try_send(line).is_err() {
                tracing::warn!("audit sink queue full or closed: an entry was not shipped to the extra sinks");
            }
        }
    }
}

/// The chain head during a batch: read once under its lock, advanced in memory, written once.
pub(crate) struct Chain<'k> {
    keys: &'k AuditKeys,
    pub(crate) head: Option<(u64, Vec<u8>)>,
    pub(crate) rows: Vec<AuditRow>,
}

/// The head before the first entry: seq 0, 32 zero bytes.
pub(crate) fn genesis() -> (u64, Vec<u8>) {
    (0, vec![0; crate::audit::HASH_LEN])
}

impl<'k> Chain<'k> {
    pub(crate) fn new(keys: &'k AuditKeys, head: Option<(u64, Vec<u8>)>) -> Self {
        Self { keys, head, rows: Vec::new() }
    }

    /// Computes the next row for `entry` (seq and hash), reading the head under its lock first
    /// if it is not known yet, and keeps it for the batch's insert.
    async fn push(&mut self, tx: &mut dyn StoreTx, entry: &PendingEntry) -> Result<String, StoreError> {
        if self.head.is_none() {
            self.head = Some(tx.audit_head_for_update().await?.unwrap_or_else(genesis));
        }
        Ok(self.next(entry))
    }

    /// Chains `entry` after the head: its row is kept for the insert, its line returned.
    pub(crate) fn next(&mut self, entry: &PendingEntry) -> String {
        let (prev_seq, prev) = self.head.take().unwrap_or_else(genesis);
        let seq = prev_seq + 1;
        let line = entry.line(seq);
        let hash = self.keys.chain(&prev, &line).to_vec();
        self.rows.push(AuditRow { seq, entry: line.clone(), hash: hash.clone() });
        self.head = Some((seq, hash));
        line
    }
}

type BatchResult = (Vec<Result<WriteReply, CoreError>>, Vec<String>);

fn fail_all(jobs: &[Job], e: &StoreError) -> BatchResult {
    let msg = e.to_string();
    let results = jobs
        .iter()
        .map(|j| {
            Err(if j.audit.is_some() {
                CoreError::AuditUnavailable(msg.clone())
            } else {
                CoreError::Store(StoreError::Database(msg.clone()))
            })
        })
        .collect();
    (results, Vec::new())
}

/// Applies each job under its own savepoint (a failing job does not undo the others), then
/// commits once. If the transaction cannot start or commit, every job fails with that error.
async fn commit_batch(store: &dyn Store, keys: &KeyManager, audit: Option<&AuditKeys>, jobs: &[Job]) -> BatchResult {
    let fail_all = |e: StoreError| fail_all(jobs, &e);
    let mut tx = match store.begin_write(false).await {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut results = Vec::with_capacity(jobs.len());
    let mut lines = Vec::new();
    let mut chain = audit.map(|k| Chain::new(k, None));
    for job in jobs {
        match apply_one(tx.as_mut(), keys, chain.as_mut(), job).await {
            Ok((r, line)) => {
                results.push(r);
                lines.extend(line);
            }
            Err(e) => return fail_all(e),
        }
    }
    // The batch's audit rows go in with the writes they describe: if they cannot be stored,
    // nothing of the batch commits.
    if let Some(chain) = &chain {
        if let Err(e) = tx.append_audit(&chain.rows).await {
            return fail_all(e);
        }
    }
    let synced = jobs.iter().any(|j| needs_sync(j.op.as_ref(), j.audit.is_some()));
    let committed = if synced { tx.commit().await } else { tx.commit_unsynced().await };
    match committed {
        Ok(()) => (results, lines),
        Err(e) => fail_all(e),
    }
}

/// Whether a job's commit must be durable before it is answered: everything but a re-encryption
/// batch on its own, which is redone from the job's cursor (lost with it) if a crash loses it,
/// while the old blobs it replaced stay readable.
fn needs_sync(op: Option<&WriteOp>, audited: bool) -> bool {
    audited || !matches!(op, Some(WriteOp::MigrateBatch(_)))
}

/// Runs one job inside a savepoint, retrying once on a concurrent-change conflict. The outer
/// error is a storage failure that dooms the whole batch.
async fn apply_one(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mut chain: Option<&mut Chain<'_>>,
    job: &Job,
) -> Result<(Result<WriteReply, CoreError>, Option<String>), StoreError> {
    if job.op.is_none() {
        // An entry on its own needs no savepoint: nothing can fail before the batch insert.
        return match (&job.audit, chain) {
            (Some(entry), Some(chain)) => Ok((Ok(WriteReply::Done), Some(chain.push(tx, entry).await?))),
            _ => Ok((Ok(WriteReply::Done), None)),
        };
    }
    let mut attempt = 0;
    loop {
        tx.savepoint().await?;
        let mut r = match &job.op {
            Some(op) => apply(tx, keys, op).await,
            None => Ok(WriteReply::Done),
        };
        let mut line = None;
        // A reply's own facts (keys shredded, tokens revoked…) join the entry it commits with.
        let detailed = match (&r, &job.entry) {
            (Ok(reply), Some(entry)) => match reply.audit_details() {
                Some(d) => {
                    let mut e = entry.clone();
                    e.details.extend(d);
                    PendingEntry::new(e).map_err(|e| r = Err(e)).ok()
                }
                None => None,
            },
            _ => None,
        };
        let pending = detailed.as_ref().or(job.audit.as_ref());
        if let (Ok(_), Some(entry), Some(chain)) = (&r, pending, chain.as_deref_mut()) {
            match chain.push(tx, entry).await {
                Ok(l) => line = Some(l),
                Err(e) => r = Err(CoreError::AuditUnavailable(e.to_string())),
            }
        }
        match r {
            Ok(reply) => {
                tx.release_savepoint().await?;
                return Ok((Ok(reply), line));
            }
            Err(e) => {
                tx.rollback_to_savepoint().await?;
                tx.release_savepoint().await?;
                attempt += 1;
                if attempt < 2 && matches!(e, CoreError::Store(StoreError::Conflict)) {
                    continue;
                }
                return Ok((Err(e), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_re_encryption_batch_on_its_own_commits_unsynced() {
        let batch = WriteOp::MigrateBatch(crate::ResealedBatch {
            job: uuid::Uuid::new_v4(),
            from: (String::new(), 0),
            to: None,
            rows: Vec::new(),
            sealed_under: Vec::new(),
            failure: None,
            owner: "test".into(),
        });
        let rotate = WriteOp::RotateDek { mount: "secret".into() };
        assert!(!needs_sync(Some(&batch), false));
        assert!(needs_sync(Some(&batch), true), "an audit entry must be durable");
        assert!(needs_sync(Some(&rotate), false), "a write must be durable");
        assert!(needs_sync(None, true), "an entry on its own must be durable");
    }
}
