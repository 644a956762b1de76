//! The audit appender thread (SQLite): entries that go with no write — every audited read, every
//! denial — are chained, committed and synced here, apart from the writer, so an audited read
//! never waits behind a write batch or a hop through the writer's runtime.
//!
//! One loop: take every entry waiting, commit them in one transaction, sync once, answer them.
//! Entries that arrive during a sync wait for it and go together in the next round, so the
//! sync costs each request latency, not the server throughput, and the database sees one
//! commit per sync (not one per arrival, which cost a core's worth of page writes). Entries no
//! response waits for (a proxied call's own entry) wait up to a few milliseconds for an urgent
//! entry's round rather than cost a sync of their own.
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use super::writer::{genesis, ship, Chain, MAX_BATCH};
use crate::audit::PendingEntry;
use crate::{AuditAppender, AuditEntry, AuditKeys, CoreError, KeyManager, Store, StoreError};

/// Held while a transaction is open on the database, by the writer around each batch and by
/// the appender around each append: the two take turns instead of meeting SQLite's lock, whose
/// busy handler sleeps a millisecond or more.
pub(crate) type WriteTurn = Arc<Mutex<()>>;

type Answer = oneshot::Sender<Result<(), CoreError>>;

/// How long entries no response waits for are held for an urgent entry to share their round.
const LATER_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// One entry waiting for its commit and sync.
struct Waiting {
    entry: PendingEntry,
    keys: Arc<AuditKeys>,
    answer: Answer,
    /// No response waits for it: it may wait for company.
    later: bool,
}

/// Where requests hand their entries to the appender thread.
#[derive(Debug, Clone)]
pub(crate) struct EntryQueue {
    // Unbounded: every entry's request waits for its answer, so the queue is bounded by the
    // requests in flight (the server's concurrency limit), and sending never blocks a worker.
    entries: std::sync::mpsc::Sender<Waiting>,
    keys: Arc<KeyManager>,
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").finish_non_exhaustive()
    }
}

impl EntryQueue {
    /// Starts the appender thread. Committed entries (canonical JSON lines) are offered to
    /// `sink`, best-effort, once durable.
    pub(crate) fn start(
        appender: Box<dyn AuditAppender>,
        keys: Arc<KeyManager>,
        store: Arc<dyn Store>,
        sink: Option<mpsc::Sender<String>>,
        turn: WriteTurn,
    ) -> Result<Self, CoreError> {
        let (entries, waiting) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("keyward-audit".into())
            .spawn(move || append_loop(appender, &waiting, sink.as_ref(), &turn, LATER_WAIT))
            .map_err(|e| StoreError::Database(format!("cannot start the audit appender: {e}")))?;
        Ok(Self { entries, keys, store })
    }

    /// Appends an entry and waits until it is durably committed. A `later` entry waits up to
    /// [`LATER_WAIT`] for an urgent one to share its round.
    pub(crate) async fn append(&self, entry: AuditEntry, later: bool) -> Result<(), CoreError> {
        // Canonicalised here, on the request's task, so the appender's rounds stay short.
        let entry = PendingEntry::new(entry)?;
        let keys =
            self.keys.audit_keys(self.store.as_ref()).await.map_err(|e| CoreError::AuditUnavailable(e.to_string()))?;
        let (answer, rx) = oneshot::channel();
        self.entries.send(Waiting { entry, keys, answer, later }).map_err(|_| CoreError::Unavailable)?;
        rx.await.map_err(|_| CoreError::Unavailable)?
    }
}

/// The appender thread's loop. A failed sync is never retried (the kernel may have dropped the
/// unwritten pages and a later sync would wrongly succeed): every entry from then on fails,
/// fail-closed, until restart. A failed commit wrote nothing and fails only its own round.
fn append_loop(
    mut appender: Box<dyn AuditAppender>,
    waiting: &std::sync::mpsc::Receiver<Waiting>,
    sink: Option<&mpsc::Sender<String>>,
    turn: &WriteTurn,
    later_wait: std::time::Duration,
) {
    // The head this thread last stored; re-read when unknown or moved by the writer.
    let mut head = None;
    let mut broken: Option<String> = None;
    while let Ok(first) = waiting.recv() {
        let mut round: Vec<Waiting> = std::iter::once(first).chain(waiting.try_iter().take(MAX_BATCH - 1)).collect();
        if round.iter().all(|w| w.later) && round.len() < MAX_BATCH {
            // Nobody waits on these: let the next urgent entry take them along in its sync.
            if let Ok(next) = waiting.recv_timeout(later_wait) {
                round.push(next);
                round.extend(waiting.try_iter().take(MAX_BATCH - round.len()));
            }
        }
        let outcome = match &broken {
            Some(msg) => Err(msg.clone()),
            None => {
                let started = std::time::Instant::now();
                metrics::histogram!("keyward_audit_batch_size").record(round.len() as f64);
                // Every entry carries the same keys: the audit key is fixed for the process.
                let appended = {
                    let _turn = turn.blocking_lock();
                    append_entries(appender.as_mut(), &round[0].keys, &round, &mut head)
                };
                match appended {
                    Err(e) => Err(e.to_string()),
                    Ok(lines) => match appender.sync() {
                        Ok(()) => {
                            metrics::histogram!("keyward_audit_commit_seconds").record(started.elapsed().as_secs_f64());
                            Ok(lines)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the audit log could not be synced to disk; audited requests fail until keyward restarts");
                            let msg = format!("{e} (restart keyward once the disk is healthy)");
                            broken = Some(msg.clone());
                            Err(msg)
                        }
                    },
                }
            }
        };
        match outcome {
            Ok(lines) => {
                ship(sink, lines);
                round.into_iter().for_each(|w| drop(w.answer.send(Ok(()))));
            }
            Err(msg) => {
                round.into_iter().for_each(|w| drop(w.answer.send(Err(CoreError::AuditUnavailable(msg.clone())))));
            }
        }
    }
}

/// Chains a round from the head this thread last stored (read when unknown) and appends it in
/// one transaction that checks the stored head is still that one; if the writer moved it, the
/// head is read again and the round chained anew. On failure `head` is left unknown.
fn append_entries(
    appender: &mut dyn AuditAppender,
    keys: &AuditKeys,
    round: &[Waiting],
    head: &mut Option<(u64, Vec<u8>)>,
) -> Result<Vec<String>, StoreError> {
    for _ in 0..3 {
        let start = match head.take() {
            Some(h) => h,
            None => appender.head()?.unwrap_or_else(genesis),
        };
        let mut chain = Chain::new(keys, Some(start.clone()));
        let lines: Vec<String> = round.iter().map(|w| chain.next(&w.entry)).collect();
        if appender.append_after(&start, &chain.rows)? {
            *head = chain.head;
            return Ok(lines);
        }
    }
    Err(StoreError::Conflict)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{channel, Receiver, Sender};

    use keyward_crypto::Key256;

    use super::*;
    use crate::{AuditRow, ChainVerifier};

    /// An in-memory appender that counts appends and syncs and fails on demand.
    #[derive(Default)]
    struct Memory {
        rows: Arc<std::sync::Mutex<Vec<AuditRow>>>,
        syncs: Arc<AtomicUsize>,
        appends: Arc<AtomicUsize>,
        fail_syncs: bool,
        fail_appends: usize,
    }

    impl AuditAppender for Memory {
        fn head(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
            Ok(self.rows.lock().unwrap().last().map(|r| (r.seq, r.hash.clone())))
        }

        fn append_after(&mut self, expected: &(u64, Vec<u8>), rows: &[AuditRow]) -> Result<bool, StoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            if self.fail_appends > 0 {
                self.fail_appends -= 1;
                return Err(StoreError::Database("disk full".into()));
            }
            if self.head()?.unwrap_or_else(genesis) != *expected {
                return Ok(false);
            }
            self.rows.lock().unwrap().extend_from_slice(rows);
            Ok(true)
        }

        fn sync(&mut self) -> Result<(), StoreError> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            match self.fail_syncs {
                true => Err(StoreError::Database("I/O error".into())),
                false => Ok(()),
            }
        }
    }

    type Answer = oneshot::Receiver<Result<(), CoreError>>;

    fn entry(path: &str) -> PendingEntry {
        PendingEntry::new(AuditEntry { path: path.into(), ..AuditEntry::default() }).unwrap()
    }

    fn queue(tx: &Sender<Waiting>, keys: &Arc<AuditKeys>, paths: &[&str]) -> Vec<Answer> {
        paths.iter().map(|p| send(tx, keys, p, false)).collect()
    }

    fn send(tx: &Sender<Waiting>, keys: &Arc<AuditKeys>, path: &str, later: bool) -> Answer {
        let (answer, rx) = oneshot::channel();
        tx.send(Waiting { entry: entry(path), keys: keys.clone(), answer, later }).unwrap();
        rx
    }

    /// Waits for an answer from a loop running on another thread.
    fn answer(rx: &mut Answer) -> Result<(), CoreError> {
        loop {
            match rx.try_recv() {
                Ok(r) => return r,
                Err(oneshot::error::TryRecvError::Empty) => std::thread::yield_now(),
                Err(e) => panic!("never answered: {e}"),
            }
        }
    }

    /// Runs the loop on a thread of its own; it ends once every sender is dropped.
    fn spawn(memory: Memory, rx: Receiver<Waiting>, sink: mpsc::Sender<String>) -> std::thread::JoinHandle<()> {
        let turn = Arc::new(Mutex::new(()));
        std::thread::spawn(move || append_loop(Box::new(memory), &rx, Some(&sink), &turn, TEST_WAIT))
    }

    /// Long enough for the tests' sends to land inside it on a loaded machine.
    const TEST_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

    #[test]
    fn waiting_entries_share_one_commit_and_one_sync_and_are_shipped() {
        let memory = Memory::default();
        let (syncs, appends) = (memory.syncs.clone(), memory.appends.clone());
        let (tx, rx) = channel();
        let keys = Arc::new(AuditKeys::new(&Key256::generate()));
        let mut answers = queue(&tx, &keys, &["a", "b", "c"]);
        drop(tx);
        let (sink, mut shipped) = mpsc::channel(16);
        spawn(memory, rx, sink).join().unwrap();
        assert_eq!((appends.load(Ordering::SeqCst), syncs.load(Ordering::SeqCst)), (1, 1));
        for a in &mut answers {
            answer(a).unwrap();
        }
        for (seq, path) in [(1, "a"), (2, "b"), (3, "c")] {
            let line = shipped.try_recv().unwrap();
            assert!(line.contains(&format!("\"seq\":{seq},")) && line.contains(path), "{line}");
        }
    }

    #[test]
    fn an_entry_nobody_waits_for_rides_with_the_next_urgent_one_or_goes_alone() {
        let memory = Memory::default();
        let (syncs, rows) = (memory.syncs.clone(), memory.rows.clone());
        let (tx, rx) = channel();
        let keys = Arc::new(AuditKeys::new(&Key256::generate()));
        let mut late = send(&tx, &keys, "late", true);
        let handle = spawn(memory, rx, mpsc::channel(16).0);
        std::thread::sleep(TEST_WAIT / 10);
        let mut urgent = send(&tx, &keys, "urgent", false);
        answer(&mut urgent).unwrap();
        answer(&mut late).unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 1, "the late entry took a sync of its own");

        // Alone, it is committed once the wait is over.
        let mut alone = send(&tx, &keys, "alone", true);
        answer(&mut alone).unwrap();
        drop(tx);
        handle.join().unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
        let paths: Vec<bool> = rows.lock().unwrap().iter().map(|r| r.entry.contains("\"late\"")).collect();
        assert_eq!(paths, vec![true, false, false], "rows in arrival order");
    }

    #[test]
    fn entries_chain_on_from_a_head_the_writer_moved() {
        let keys = Arc::new(AuditKeys::new(&Key256::generate()));
        let memory = Memory::default();
        let rows = memory.rows.clone();
        let (tx, rx) = channel();
        let mut first = queue(&tx, &keys, &["r1"]);
        let handle = spawn(memory, rx, mpsc::channel(16).0);
        answer(&mut first[0]).unwrap();
        // The writer commits seq 2 and 3 behind the appender's back.
        {
            let mut stored = rows.lock().unwrap();
            let mut chain = Chain::new(&keys, stored.last().map(|r| (r.seq, r.hash.clone())));
            chain.next(&entry("w2"));
            chain.next(&entry("w3"));
            stored.extend(chain.rows);
        }
        let mut second = queue(&tx, &keys, &["r4"]);
        drop(tx);
        handle.join().unwrap();
        answer(&mut second[0]).unwrap();
        let rows = rows.lock().unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        let mut verifier = ChainVerifier::new(&keys, 4, None);
        rows.iter().for_each(|r| verifier.push(r));
        assert!(!verifier.is_broken(), "the appender forked the chain");
    }

    #[test]
    fn a_failed_commit_fails_its_round_only() {
        let memory = Memory { fail_appends: 1, ..Memory::default() };
        let appends = memory.appends.clone();
        let (tx, rx) = channel();
        let keys = Arc::new(AuditKeys::new(&Key256::generate()));
        let mut first = queue(&tx, &keys, &["a"]);
        let handle = spawn(memory, rx, mpsc::channel(16).0);
        let err = answer(&mut first[0]).unwrap_err();
        assert!(matches!(err, CoreError::AuditUnavailable(_)), "{err}");
        assert!(!err.to_string().contains("restart"), "a failed commit wrote nothing and is not sticky: {err}");
        let mut second = queue(&tx, &keys, &["b"]);
        drop(tx);
        handle.join().unwrap();
        answer(&mut second[0]).unwrap();
        assert_eq!(appends.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_sync_fails_its_round_and_every_later_one_and_is_never_retried() {
        let memory = Memory { fail_syncs: true, ..Memory::default() };
        let syncs = memory.syncs.clone();
        let (tx, rx) = channel();
        let keys = Arc::new(AuditKeys::new(&Key256::generate()));
        let mut first = queue(&tx, &keys, &["a", "b"]);
        let (sink, mut shipped) = mpsc::channel(16);
        let handle = spawn(memory, rx, sink);
        for a in &mut first {
            let err = answer(a).unwrap_err();
            assert!(matches!(err, CoreError::AuditUnavailable(_)), "{err}");
        }
        let mut later = queue(&tx, &keys, &["c"]);
        drop(tx);
        handle.join().unwrap();
        let err = answer(&mut later[0]).unwrap_err();
        assert!(err.to_string().contains("restart keyward"), "{err}");
        assert!(shipped.try_recv().is_err(), "an entry that never became durable was shipped");
        assert_eq!(syncs.load(Ordering::SeqCst), 1, "a failed sync is never retried");
    }
}
