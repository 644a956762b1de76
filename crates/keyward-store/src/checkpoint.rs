//! On SQLite, the checkpoints: copying the write-ahead log back into the database, on a thread
//! and a connection of their own.
//!
//! SQLite's default runs a checkpoint inside whichever commit takes the log past 1,000 pages. On
//! keyward's own connections that is the audit appender's or the writer's commit, so every
//! request waiting for that round also waited for the copy and its two syncs (the log, then the
//! database) — several times a second under sustained audited load, the audited read's tail
//! (measured in BENCHMARKS.md, the audited tail). Those connections turn automatic checkpoints
//! off ([`crate::db::LiteConn`]) and this thread runs a passive checkpoint every
//! [`CHECKPOINT_EVERY`] instead: it never takes the write lock, so commits and their syncs go
//! on while it copies (one with nothing new in the log returns at once, with no sync).
//!
//! A log is only started again from its beginning by a write that finds all of it copied, which
//! under sustained writes a passive checkpoint never leaves behind: the log would grow without
//! end. So once it holds [`RESTART_AT`] pages, the thread follows the passive checkpoint with a
//! restarting one, which holds writers back only while it copies the few pages written since and
//! waits for readers to leave the log — about a millisecond, once per [`RESTART_AT`] pages.
//! It waits for locks at most [`GIVE_UP_AFTER`] (a long reader, such as a backup, would
//! otherwise hold every writer back with it): then it gives up and tries again next round.
//! Connections of the pool keep SQLite's automatic checkpoints, should they ever write while
//! this thread is stopped.
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use keyward_core::StoreError;

use crate::db::{lite_err, open_lite};

/// How often the log is checkpointed.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The log's length, in pages, past which a checkpoint restarts it (32 MiB of 4 KiB pages).
pub(crate) const RESTART_AT: i64 = 8_192;

/// How long the checkpointer waits for a lock (writers wait behind a restarting checkpoint).
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_millis(5);

/// The step of the checkpointer's wait for a lock.
const LOCK_STEP: Duration = Duration::from_micros(50);

/// The checkpointer's busy handler: tries again every [`LOCK_STEP`] until [`GIVE_UP_AFTER`].
fn wait_briefly(tries: i32) -> bool {
    let waited = LOCK_STEP.saturating_mul(u32::try_from(tries).unwrap_or(u32::MAX));
    (waited < GIVE_UP_AFTER).then(|| std::thread::sleep(LOCK_STEP)).is_some()
}

/// The checkpointing thread; stopped by [`Checkpointer::close`] (or when dropped).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
}

impl Checkpointer {
    /// Opens a connection to the (already migrated, WAL-mode) database and starts the thread.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open_lite(path)?;
        conn.busy_handler(Some(wait_briefly)).map_err(lite_err)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("keyward-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    match checkpoint(&conn) {
                        Ok(()) => failing = false,
                        // Logged once per run of failures (a full disk fails every round).
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "cannot checkpoint the SQLite write-ahead log");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the checkpointing thread: {e}")))?;
        Ok(Self { stop: Mutex::new(Some(stop)) })
    }

    /// Stops the thread (after the checkpoint under way, if any).
    pub(crate) fn close(&self) {
        if let Ok(mut stop) = self.stop.lock() {
            stop.take();
        }
    }
}

/// A passive checkpoint, copying what it can without waiting for a lock, and a restarting one
/// once the log is [`RESTART_AT`] pages long.
fn checkpoint(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    // (busy, pages in the log, pages copied)
    let pages: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).map_err(lite_err)?;
    if pages >= RESTART_AT {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())).map_err(lite_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::LiteConn;

    fn db_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("kw.db")).unwrap().len()
    }

    /// keyward's own connections never checkpoint in their commits; the thread does it for them.
    #[tokio::test]
    async fn the_thread_checkpoints_what_commits_leave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kw.db");
        let store = crate::connect::test_store(&crate::DatabaseUrl::Sqlite(path.clone()), 1).await;
        keyward_core::Store::close(&store).await;
        let own = LiteConn::open(&path).unwrap();
        own.conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        for _ in 0..1_500 {
            own.conn.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
        }
        let auto: i64 = own.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap();
        assert_eq!(auto, 0, "keyward's own connection checkpoints in its commits");
        let before = db_bytes(dir.path());
        assert!(before < 1_000 * 4096, "a commit checkpointed the log: the database holds {before} bytes");

        let thread = Checkpointer::start(&path).unwrap();
        // Its first round comes after CHECKPOINT_EVERY; a loaded machine may take longer.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while db_bytes(dir.path()) < 1_500 * 4000 && std::time::Instant::now() < deadline {
            std::thread::sleep(CHECKPOINT_EVERY);
        }
        thread.close();
        let after = db_bytes(dir.path());
        assert!(after > 1_500 * 4000, "the thread did not checkpoint: the database holds {after} bytes");
    }

    /// A restarting checkpoint waits for a reader only briefly, so writers, which wait behind
    /// it, are not held back for as long as a reader (a backup, say) reads.
    #[test]
    fn a_long_reader_holds_no_writer_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kw.db");
        let own = {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (b BLOB)").unwrap();
            LiteConn::open(&path).unwrap()
        };
        for _ in 0..(RESTART_AT + 100) {
            own.conn.execute("INSERT INTO t VALUES (zeroblob(3000))", []).unwrap();
        }
        let reader = open_lite(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        let conn = open_lite(&path).unwrap();
        conn.busy_handler(Some(wait_briefly)).unwrap();
        let began = std::time::Instant::now();
        checkpoint(&conn).unwrap();
        let held = began.elapsed();
        assert!(held < Duration::from_secs(1), "the checkpoint waited {held:?} for the reader");
        own.conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        reader.execute_batch("COMMIT").unwrap();
    }
}
