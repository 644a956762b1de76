//! The single writer: one task per database that applies changes and audit entries in
//! group-committed batches, so many requests share one transaction and one fsync. A change a
//! request makes commits with its audit entry in the same transaction; the chain's next `seq`
//! and hash are assigned here, under the head's lock. On SQLite, entries with no change go to the
//! audit appender thread instead (`appender.rs`).
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::appender::{EntryQueue, WriteTurn};
use super::command::{Command, Evict, Upkeep};
use super::read_cache::ReadCache;
use crate::audit::PendingEntry;
use crate::{AuditEntry, AuditKeys, AuditRow, AuditTx, CoreError, KeyManager, Store, StoreError, StoreTx};

/// Most jobs applied in one transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// Queue depth before submitters wait (back-pressure).
const QUEUE: usize = 4096;

/// A queued command, its type erased: it keeps its result until the batch is over.
#[async_trait]
trait Job: Send {
    /// Applies the command, keeping the result for [`Job::answer`]; whether it worked.
    async fn apply(&mut self, tx: &mut dyn StoreTx, keys: &KeyManager) -> bool;
    /// Whether it failed on a concurrent change (worth one more try).
    fn conflicted(&self) -> bool;
    /// Replaces a result that cannot stand (its audit entry could not be chained).
    fn fail(&mut self, e: CoreError);
    /// The facts the result adds to the audit entry.
    fn details(&self) -> Option<Map<String, Value>>;
    fn evicts(&self) -> Evict<'_>;
    fn durable(&self) -> bool;
    /// Sends the kept result, or `failure` when the batch did not commit.
    fn answer(self: Box<Self>, failure: Option<CoreError>, keys: &KeyManager);
}

struct Typed<C: Command> {
    cmd: C,
    result: Option<Result<C::Reply, CoreError>>,
    reply: oneshot::Sender<Result<C::Reply, CoreError>>,
}

#[async_trait]
impl<C: Command> Job for Typed<C> {
    async fn apply(&mut self, tx: &mut dyn StoreTx, keys: &KeyManager) -> bool {
        let r = self.cmd.apply(tx, keys).await;
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn conflicted(&self) -> bool {
        matches!(self.result, Some(Err(CoreError::Store(StoreError::Conflict))))
    }

    fn fail(&mut self, e: CoreError) {
        self.result = Some(Err(e));
    }

    fn details(&self) -> Option<Map<String, Value>> {
        match &self.result {
            Some(Ok(r)) => C::audit_details(r),
            _ => None,
        }
    }

    fn evicts(&self) -> Evict<'_> {
        self.cmd.evicts()
    }

    fn durable(&self) -> bool {
        self.cmd.durable()
    }

    fn answer(self: Box<Self>, failure: Option<CoreError>, keys: &KeyManager) {
        let result = match (failure, self.result) {
            (Some(e), _) => Err(e),
            (None, Some(Ok(r))) => {
                C::committed(&r, keys);
                Ok(r)
            }
            (None, Some(Err(e))) => Err(e),
            (None, None) => Err(CoreError::Unavailable),
        };
        let _ = self.reply.send(result);
    }
}

/// One item of a batch: a change (with its audit entry, unless it is upkeep), or an audit entry
/// on its own.
enum Queued {
    Change {
        job: Box<dyn Job>,
        /// The entry, canonicalised; and as given, when the change adds details to it.
        audit: Option<(PendingEntry, Option<Box<AuditEntry>>)>,
    },
    Entry {
        audit: PendingEntry,
        reply: oneshot::Sender<Result<(), CoreError>>,
    },
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Queued::Change { .. } => "Change",
            Queued::Entry { .. } => "Entry",
        })
    }
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Queued>,
    /// Where entries with no change go, when the store has an appender (SQLite).
    entries: Option<EntryQueue>,
}

impl Writer {
    /// Starts the writer. Where the store has a synchronous audit appender (SQLite), entries
    /// with no change go to the appender's thread, and the writer runs on a thread of its own, so
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

    async fn enqueue<C: Command>(&self, cmd: C, audit: Option<AuditEntry>) -> Result<C::Reply, CoreError> {
        // Canonicalised here, on the request's task, so the writer's batches stay short; kept as
        // given too when the change's own facts join it.
        let audit = match audit {
            Some(entry) => {
                let given = C::ADDS_DETAILS.then(|| Box::new(entry.clone()));
                Some((PendingEntry::new(entry)?, given))
            }
            None => None,
        };
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Typed { cmd, result: None, reply });
        self.queue.send(Queued::Change { job, audit }).await.map_err(|_| CoreError::Unavailable)?;
        rx.await.map_err(|_| CoreError::Unavailable)?
    }

    /// Queues a change a request makes, with the request's audit entry, and waits until both
    /// have committed in one transaction (or neither has).
    pub(crate) async fn submit<C: Command>(&self, cmd: C, audit: AuditEntry) -> Result<C::Reply, CoreError> {
        self.enqueue(cmd, Some(audit)).await
    }

    /// Queues upkeep no request asked for (see [`Upkeep`]) and waits until it has committed.
    pub(crate) async fn maintain<C: Upkeep>(&self, cmd: C) -> Result<C::Reply, CoreError> {
        self.enqueue(cmd, None).await
    }

    /// Appends an audit entry and waits until it is durably committed; a `later` one is not
    /// urgent (see [`crate::Keyward::audit_later`]).
    pub async fn audit(&self, entry: AuditEntry, later: bool) -> Result<(), CoreError> {
        if let Some(entries) = &self.entries {
            return entries.append(entry, later).await;
        }
        let audit = PendingEntry::new(entry)?;
        let (reply, rx) = oneshot::channel();
        self.queue.send(Queued::Entry { audit, reply }).await.map_err(|_| CoreError::Unavailable)?;
        rx.await.map_err(|_| CoreError::Unavailable)?
    }
}

async fn run(mut state: State, mut rx: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // What waits behind this batch, its size and how long it takes to commit (with its fsync).
        metrics::gauge!("keyward_writer_queue_depth").set(rx.len() as f64);
        metrics::histogram!("keyward_writer_batch_size").record(batch.len() as f64);
        let started = std::time::Instant::now();
        let size = batch.len();
        state.apply(std::mem::take(&mut batch)).await;
        let took = started.elapsed().as_secs_f64();
        metrics::histogram!("keyward_writer_commit_seconds").record(took);
        if state.turn.is_none() {
            // No appender of its own (PostgreSQL): entries commit in the writer's batches.
            metrics::histogram!("keyward_audit_batch_size").record(size as f64);
            metrics::histogram!("keyward_audit_commit_seconds").record(took);
        }
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

fn audited(q: &Queued) -> bool {
    match q {
        Queued::Change { audit, .. } => audit.is_some(),
        Queued::Entry { .. } => true,
    }
}

/// The error a queued item gets when its batch failed: an audited one could not be recorded.
fn failure(q: &Queued, msg: &str) -> CoreError {
    match audited(q) {
        true => CoreError::AuditUnavailable(msg.to_owned()),
        false => CoreError::Store(StoreError::Database(msg.to_owned())),
    }
}

impl State {
    /// Commits one batch and answers its items.
    async fn apply(&mut self, batch: Vec<Queued>) {
        let audit_keys = if batch.iter().any(audited) {
            match self.keys.audit_keys(self.store.as_ref()).await {
                Ok(k) => Some(k),
                Err(e) => return answer_all(batch, &e.to_string(), &self.keys),
            }
        } else {
            None
        };
        let mut batch = batch;
        let outcome = {
            let _turn = match &self.turn {
                Some(turn) => Some(turn.lock().await),
                None => None,
            };
            commit_batch(self.store.as_ref(), &self.keys, audit_keys.as_deref(), &mut batch).await
        };
        let lines = match outcome {
            Ok(lines) => lines,
            Err(e) => return answer_all(batch, &e.to_string(), &self.keys),
        };
        if let Some(cache) = &self.cache {
            for q in &batch {
                if let Queued::Change { job, .. } = q {
                    cache.invalidate(&job.evicts());
                }
            }
        }
        ship(self.sink.as_ref(), lines);
        for q in batch {
            match q {
                Queued::Change { job, .. } => job.answer(None, &self.keys),
                Queued::Entry { reply, .. } => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }
}

/// Answers every item of a batch that did not commit.
fn answer_all(batch: Vec<Queued>, msg: &str, keys: &KeyManager) {
    for q in batch {
        let e = failure(&q, msg);
        match q {
            Queued::Change { job, .. } => job.answer(Some(e), keys),
            Queued::Entry { reply, .. } => {
                let _ = reply.send(Err(e));
            }
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
    async fn push(&mut self, tx: &mut dyn AuditTx, entry: &PendingEntry) -> Result<String, StoreError> {
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

/// Applies each item under its own savepoint (a failing change does not undo the others), then
/// commits once; the committed entries' lines come back. If the transaction cannot start or
/// commit, the batch fails as a whole.
async fn commit_batch(
    store: &dyn Store,
    keys: &KeyManager,
    audit: Option<&AuditKeys>,
    batch: &mut [Queued],
) -> Result<Vec<String>, StoreError> {
    let mut tx = store.begin_write(false).await?;
    let mut lines = Vec::new();
    let mut chain = audit.map(|k| Chain::new(k, None));
    for q in batch.iter_mut() {
        lines.extend(apply_one(tx.as_mut(), keys, chain.as_mut(), q).await?);
    }
    // The batch's audit rows go in with the changes they describe: if they cannot be stored,
    // nothing of the batch commits.
    if let Some(chain) = &chain {
        tx.append_audit(&chain.rows).await?;
    }
    if must_sync(batch) {
        tx.commit().await?;
    } else {
        tx.commit_unsynced().await?;
    }
    Ok(lines)
}

/// Whether a batch's commit must be durable before it is answered: unless it holds nothing but
/// upkeep that may be redone (a re-encryption batch), with no audit entry.
fn must_sync(batch: &[Queued]) -> bool {
    batch.iter().any(|q| match q {
        Queued::Change { job, audit } => audit.is_some() || job.durable(),
        Queued::Entry { .. } => true,
    })
}

/// Runs one item inside a savepoint, retrying a change once on a concurrent-change conflict;
/// its entry's line comes back when it is chained. The error is a storage failure that dooms the
/// whole batch (a change's own failure stays in its job, to be answered).
async fn apply_one(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    mut chain: Option<&mut Chain<'_>>,
    q: &mut Queued,
) -> Result<Option<String>, StoreError> {
    let (job, audit) = match q {
        // An entry on its own needs no savepoint: nothing can fail before the batch insert.
        Queued::Entry { audit, .. } => {
            return match chain {
                Some(chain) => Ok(Some(chain.push(tx, audit).await?)),
                None => Ok(None),
            }
        }
        Queued::Change { job, audit } => (job, audit),
    };
    let mut attempt = 0;
    loop {
        tx.savepoint().await?;
        let mut ok = job.apply(tx, keys).await;
        let mut line = None;
        if let (true, Some((pending, given)), Some(chain)) = (ok, audit.as_ref(), chain.as_deref_mut()) {
            // A change's own facts (keys shredded, tokens revoked…) join the entry it commits with.
            let detailed = match (given, job.details()) {
                (Some(entry), Some(d)) => {
                    let mut e = AuditEntry::clone(entry);
                    e.details.extend(d);
                    Some(PendingEntry::new(e))
                }
                _ => None,
            };
            let chained = match &detailed {
                Some(Ok(p)) => chain.push(tx, p).await.map_err(|e| CoreError::AuditUnavailable(e.to_string())),
                Some(Err(e)) => Err(CoreError::AuditUnavailable(e.to_string())),
                None => chain.push(tx, pending).await.map_err(|e| CoreError::AuditUnavailable(e.to_string())),
            };
            match chained {
                Ok(l) => line = Some(l),
                Err(e) => {
                    job.fail(e);
                    ok = false;
                }
            }
        }
        if ok {
            tx.release_savepoint().await?;
            return Ok(line);
        }
        tx.rollback_to_savepoint().await?;
        tx.release_savepoint().await?;
        attempt += 1;
        if attempt < 2 && job.conflicted() {
            continue;
        }
        return Ok(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{MigrateBatch, RotateDek};
    use crate::ResealedBatch;

    fn change<C: Command>(cmd: C, audited: bool) -> Queued {
        let audit = audited.then(|| {
            (PendingEntry::new(AuditEntry { operation: "test".into(), ..AuditEntry::default() }).unwrap(), None)
        });
        let (reply, _rx) = oneshot::channel();
        Queued::Change { job: Box::new(Typed { cmd, result: None, reply }), audit }
    }

    fn reencryption() -> MigrateBatch {
        MigrateBatch(ResealedBatch {
            job: uuid::Uuid::new_v4(),
            from: (String::new(), 0),
            to: None,
            rows: Vec::new(),
            sealed_under: Vec::new(),
            failure: None,
            owner: "test".into(),
        })
    }

    #[test]
    fn only_a_reencryption_batch_on_its_own_commits_unsynced() {
        assert!(!must_sync(&[change(reencryption(), false)]));
        assert!(must_sync(&[change(reencryption(), true)]), "an audit entry must be durable");
        assert!(must_sync(&[change(RotateDek { mount: "secret".into() }, true)]), "a change must be durable");
        let (reply, _rx) = oneshot::channel();
        let entry = Queued::Entry {
            audit: PendingEntry::new(AuditEntry { operation: "test".into(), ..AuditEntry::default() }).unwrap(),
            reply,
        };
        assert!(must_sync(&[change(reencryption(), false), entry]), "an entry on its own must be durable");
    }
}
