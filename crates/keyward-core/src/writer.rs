//! The single writer: one task per database that applies writes and audit entries in
//! group-committed batches, so many requests share one transaction and one fsync. An audit entry
//! that goes with a write commits in the same transaction; the chain's next `seq` and hash are
//! assigned here, under the head's lock.
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::audit::PendingEntry;
use crate::ops::apply;
use crate::read_cache::ReadCache;
use crate::{
    AuditAppender, AuditEntry, AuditKeys, AuditRow, CoreError, KeyManager, Store, StoreError, StoreTx, Syncer, WriteOp,
    WriteReply,
};

/// Most jobs applied in one transaction.
const MAX_BATCH: usize = 256;
/// Queue depth before submitters wait (back-pressure).
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<WriteReply, CoreError>>;

struct Job {
    op: Option<WriteOp>,
    audit: Option<PendingEntry>,
    reply: Reply,
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("op", &self.op).finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer. Where the store has a synchronous audit appender (SQLite), the writer
    /// runs on a thread of its own, so its commits never wait behind request tasks for a turn on
    /// the runtime; otherwise it is a task on the current tokio runtime. Committed audit entries
    /// (canonical JSON lines) are offered to `sink`, best-effort. Changes are dropped from
    /// `cache` once their batch is over, before anyone is answered.
    pub(crate) fn spawn(
        store: Arc<dyn Store>,
        keys: Arc<KeyManager>,
        sink: Option<mpsc::Sender<String>>,
        cache: Option<Arc<ReadCache>>,
    ) -> Result<Self, CoreError> {
        let (queue, rx) = mpsc::channel(QUEUE);
        match store.audit_appender()? {
            Some(appender) => {
                let thread_err =
                    |e: std::io::Error| StoreError::Database(format!("cannot start the database writer: {e}"));
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(thread_err)?;
                let (durable, pending) = std::sync::mpsc::channel();
                let sync = appender.syncer()?;
                let sync_sink = sink.clone();
                std::thread::Builder::new()
                    .name("keyward-audit-sync".into())
                    .spawn(move || sync_loop(sync, &pending, sync_sink.as_ref()))
                    .map_err(thread_err)?;
                let fast = FastPath { appender, durable };
                std::thread::Builder::new()
                    .name("keyward-writer".into())
                    .spawn(move || runtime.block_on(run(store, keys, rx, sink, cache, Some(fast))))
                    .map_err(thread_err)?;
            }
            None => {
                tokio::spawn(run(store, keys, rx, sink, cache, None));
            }
        }
        Ok(Self { queue })
    }

    async fn enqueue(&self, op: Option<WriteOp>, audit: Option<AuditEntry>) -> Result<WriteReply, CoreError> {
        // Canonicalised here, on the request's task, so the writer's batches stay short.
        let audit = audit.map(PendingEntry::new).transpose()?;
        let (reply, rx) = oneshot::channel();
        self.queue.send(Job { op, audit, reply }).await.map_err(|_| CoreError::Unavailable)?;
        rx.await.map_err(|_| CoreError::Unavailable)?
    }

    /// Queues a write and waits until its batch has committed (or failed).
    pub async fn submit(&self, op: WriteOp) -> Result<WriteReply, CoreError> {
        self.enqueue(Some(op), None).await
    }

    /// Queues a write whose audit entry must commit in the same transaction.
    pub async fn submit_audited(&self, op: WriteOp, audit: AuditEntry) -> Result<WriteReply, CoreError> {
        self.enqueue(Some(op), Some(audit)).await
    }

    /// Appends an audit entry and waits until it is durably committed.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), CoreError> {
        self.enqueue(None, Some(entry)).await.map(|_| ())
    }
}

async fn run(
    store: Arc<dyn Store>,
    keys: Arc<KeyManager>,
    mut rx: mpsc::Receiver<Job>,
    sink: Option<mpsc::Sender<String>>,
    cache: Option<Arc<ReadCache>>,
    fast: Option<FastPath>,
) {
    let mut state = State { store, keys, sink, cache, fast, head: None };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut jobs = std::mem::take(&mut batch);
        if state.fast.is_some() {
            // Entries on their own go first, through the fast path: an audited read does not
            // wait for a write batch queued beside it (such as a 500-row migration batch).
            let (entries, writes): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.op.is_none());
            if !entries.is_empty() {
                state.apply(entries).await;
            }
            jobs = writes;
        }
        if !jobs.is_empty() {
            state.apply(jobs).await;
        }
    }
}

/// What the writer keeps between batches.
struct State {
    store: Arc<dyn Store>,
    keys: Arc<KeyManager>,
    sink: Option<mpsc::Sender<String>>,
    cache: Option<Arc<ReadCache>>,
    fast: Option<FastPath>,
    /// The chain head this writer last stored through the fast path.
    head: Option<(u64, Vec<u8>)>,
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
        let entries_only = jobs.iter().all(|j| j.op.is_none() && j.audit.is_some());
        let (results, lines) = match (audit_keys.as_deref(), self.fast.as_mut()) {
            // The single writer of a SQLite database knows the head: a batch of entries is one
            // transaction on the appender (checked against the stored head, so a head moved
            // behind its back is re-read, never forked).
            // Its replies wait on the sync thread, which makes every append so far durable
            // while this thread goes on committing the next batch.
            (Some(ak), Some(fast)) if entries_only => {
                match append_entries(fast.appender.as_mut(), ak, &jobs, &mut self.head) {
                    Ok(lines) => {
                        let replies = jobs.into_iter().map(|j| j.reply).collect();
                        // If the sync thread is gone, the dropped replies answer "unavailable".
                        let _ = fast.durable.send(Durable { replies, lines });
                        return;
                    }
                    Err(e) => fail_all(&jobs, &e),
                }
            }
            _ => {
                self.head = None;
                commit_batch(self.store.as_ref(), &self.keys, audit_keys.as_deref(), &jobs).await
            }
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
fn ship(sink: Option<&mpsc::Sender<String>>, lines: Vec<String>) {
    if let Some(sink) = sink {
        for line in lines {
            if sink.try_send(line).is_err() {
                tracing::warn!("audit sink queue full or closed: an entry was not shipped to the extra sinks");
            }
        }
    }
}

/// The SQLite fast path for entries: the appender, and the queue of committed batches waiting
/// to be made durable.
struct FastPath {
    appender: Box<dyn AuditAppender>,
    durable: std::sync::mpsc::Sender<Durable>,
}

/// A committed batch of entries whose requests wait until it is durable.
struct Durable {
    replies: Vec<Reply>,
    lines: Vec<String>,
}

/// The sync thread: makes every batch committed so far durable with one sync, then answers
/// them. A failed sync is never retried (the kernel may have dropped the unwritten pages and a
/// later sync would wrongly succeed): every entry from then on fails, fail-closed, until restart.
fn sync_loop(mut sync: Syncer, pending: &std::sync::mpsc::Receiver<Durable>, sink: Option<&mpsc::Sender<String>>) {
    let mut broken: Option<String> = None;
    while let Ok(first) = pending.recv() {
        let waiting: Vec<Durable> = std::iter::once(first).chain(pending.try_iter()).collect();
        if broken.is_none() {
            if let Err(e) = sync() {
                tracing::error!(error = %e, "the audit log could not be synced to disk; audited requests fail until keyward restarts");
                broken = Some(format!("{e} (restart keyward once the disk is healthy)"));
            }
        }
        for batch in waiting {
            match &broken {
                None => {
                    ship(sink, batch.lines);
                    batch.replies.into_iter().for_each(|r| drop(r.send(Ok(WriteReply::Done))));
                }
                Some(msg) => {
                    batch.replies.into_iter().for_each(|r| drop(r.send(Err(CoreError::AuditUnavailable(msg.clone())))));
                }
            }
        }
    }
}

/// The chain head during a batch: read once under its lock, advanced in memory, written once.
struct Chain<'k> {
    keys: &'k AuditKeys,
    head: Option<(u64, Vec<u8>)>,
    rows: Vec<AuditRow>,
}

fn genesis() -> (u64, Vec<u8>) {
    (0, vec![0; crate::audit::HASH_LEN])
}

impl<'k> Chain<'k> {
    fn new(keys: &'k AuditKeys, head: Option<(u64, Vec<u8>)>) -> Self {
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

    fn next(&mut self, entry: &PendingEntry) -> String {
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

/// A batch of entries with no write: chained from the head this writer last stored (read once
/// when unknown) and appended in one durable transaction that checks the stored head is still
/// that one; if something else moved it, the head is read again and the batch chained anew.
fn append_entries(
    appender: &mut dyn AuditAppender,
    keys: &AuditKeys,
    jobs: &[Job],
    head: &mut Option<(u64, Vec<u8>)>,
) -> Result<Vec<String>, StoreError> {
    for _ in 0..3 {
        let start = match head.take() {
            Some(h) => h,
            None => appender.head()?.unwrap_or_else(genesis),
        };
        let mut chain = Chain::new(keys, Some(start.clone()));
        let lines: Vec<String> = jobs.iter().filter_map(|j| j.audit.as_ref()).map(|e| chain.next(e)).collect();
        if appender.append_after(&start, &chain.rows)? {
            *head = chain.head;
            return Ok(lines);
        }
        tracing::warn!("the audit head moved outside this writer; re-reading it");
    }
    Err(StoreError::Conflict)
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
    match tx.commit().await {
        Ok(()) => (results, lines),
        Err(e) => fail_all(e),
    }
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
        if let (Ok(_), Some(entry), Some(chain)) = (&r, &job.audit, chain.as_deref_mut()) {
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn batch(n: usize) -> (Durable, Vec<oneshot::Receiver<Result<WriteReply, CoreError>>>) {
        let (replies, answers): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel()).unzip();
        (Durable { replies, lines: (0..n).map(|i| format!("line {i}")).collect() }, answers)
    }

    fn answered(rx: &mut oneshot::Receiver<Result<WriteReply, CoreError>>) -> Result<WriteReply, CoreError> {
        rx.try_recv().expect("answered once the loop has run")
    }

    #[test]
    fn batches_are_answered_after_one_sync_and_shipped() {
        let syncs = Arc::new(AtomicUsize::new(0));
        let counted = syncs.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (sink, mut shipped) = mpsc::channel(16);
        let ((first, mut a), (second, mut b)) = (batch(2), batch(1));
        tx.send(first).unwrap();
        tx.send(second).unwrap();
        drop(tx);
        sync_loop(
            Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
            &rx,
            Some(&sink),
        );
        assert_eq!(syncs.load(Ordering::SeqCst), 1, "both waiting batches share one sync");
        for rx in a.iter_mut().chain(b.iter_mut()) {
            assert!(matches!(answered(rx), Ok(WriteReply::Done)));
        }
        assert_eq!(shipped.try_recv().unwrap(), "line 0");
    }

    #[test]
    fn a_failed_sync_fails_its_batch_and_every_later_one() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (sink, mut shipped) = mpsc::channel(16);
        let (first, mut a) = batch(2);
        tx.send(first).unwrap();
        let worker = std::thread::spawn(move || {
            sync_loop(
                Box::new(move || {
                    // Fails once; a later sync "succeeds", as after the kernel dropped the pages.
                    match counted.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(StoreError::Database("I/O error".into())),
                        _ => Ok(()),
                    }
                }),
                &rx,
                Some(&sink),
            )
        });
        for rx in &mut a {
            let err = loop {
                match rx.try_recv() {
                    Ok(r) => break r.unwrap_err(),
                    Err(_) => std::thread::yield_now(),
                }
            };
            assert!(matches!(err, CoreError::AuditUnavailable(_)), "{err}");
        }
        let (second, mut b) = batch(1);
        tx.send(second).unwrap();
        drop(tx);
        worker.join().unwrap();
        let err = answered(&mut b[0]).unwrap_err();
        assert!(err.to_string().contains("restart keyward"), "{err}");
        assert!(shipped.try_recv().is_err(), "an entry that never became durable was shipped");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a failed sync is never retried");
    }
}
