//! On SQLite, the reads of re-encryption jobs: a thread of their own, at the lowest CPU priority,
//! with a read-only rusqlite connection of its own.
//!
//! A job reads batch after batch as fast as it can, on a machine whose cores also serve
//! requests. Through the pool, sqlx's SQLite driver hands each row over from its worker thread
//! to the task, which costs the server CPU requests need; here a batch is one local call, and the
//! scheduler gives this thread only the CPU that requests leave idle, so reads and writes during
//! a migration keep their latency and the job takes what is left.
//!
//! The thread runs under Linux's `SCHED_IDLE` policy: a request's thread that wakes takes the
//! core from it at once, where at nice 19 (the fallback where that policy is refused) the
//! scheduler may let it run out its slice first (measured in BENCHMARKS.md, migration).
use std::future::Future;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::FutureExt;
use keyward_core::StoreError;

use crate::db::{lite_err, lite_execute, lite_rows, open_lite, Arg, Exec, Row};

/// The nice value of the lowest priority, the fallback where `SCHED_IDLE` is refused.
const LOWEST_NICE: i32 = 19;

/// Gives the calling thread (only) the lowest CPU priority there is: `SCHED_IDLE` on Linux,
/// otherwise (or where it is refused) nice 19.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
            ThreadSchedulePolicy,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = ?e, "SCHED_IDLE refused for the re-encryption reader"),
        }
    }
    if let Err(e) = rustix::process::nice(LOWEST_NICE) {
        tracing::debug!(error = %e, "cannot lower the re-encryption reader's priority");
    }
}

/// A read-only connection, used synchronously on the scanner's thread.
pub(crate) struct LiteRead(rusqlite::Connection);

#[async_trait]
impl Exec for LiteRead {
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        lite_execute(&self.0, sql, &args)
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        lite_rows(&self.0, sql, &args, usize::MAX)
    }

    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>, StoreError> {
        Ok(lite_rows(&self.0, sql, &args, 1)?.pop())
    }
}

/// The result of queries run through [`Exec`] on a [`LiteRead`]: each is a synchronous call, so
/// their future is ready when first polled.
pub(crate) fn now<T>(read: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    read.now_or_never().unwrap_or_else(|| {
        Err(StoreError::Database("a re-encryption read waited on something other than SQLite".into()))
    })
}

type Task = Box<dyn FnOnce(&mut LiteRead) + Send>;

/// The scanning thread, fed tasks one at a time; it ends (closing its connection) when the
/// scanner is closed or dropped.
#[derive(Debug)]
pub(crate) struct LiteScanner {
    tasks: Mutex<Option<mpsc::Sender<Task>>>,
}

impl LiteScanner {
    /// Opens the (already migrated, WAL-mode) database read-only and starts the thread.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open_lite(path)?;
        conn.execute_batch("PRAGMA query_only=ON").map_err(lite_err)?;
        let (tasks, queue) = mpsc::channel::<Task>();
        std::thread::Builder::new()
            .name("kw-reencrypt-read".into())
            .spawn(move || {
                // Linux keeps a policy and a nice value per thread: this one alone is lowered.
                lower_own_priority();
                let mut db = LiteRead(conn);
                for task in queue {
                    task(&mut db);
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the re-encryption reader: {e}")))?;
        Ok(Self { tasks: Mutex::new(Some(tasks)) })
    }

    /// Runs `read` on the scanning thread and waits for its answer.
    pub(crate) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut LiteRead) -> Result<T, StoreError> + Send + 'static,
    {
        let stopped = || StoreError::Database("the re-encryption reader has stopped".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move |db| {
            let _ = reply.send(read(db));
        });
        let sent = match self.tasks.lock() {
            Ok(tasks) => tasks.as_ref().is_some_and(|t| t.send(task).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(stopped());
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Stops the thread once the tasks already sent are done.
    pub(crate) fn close(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{args, scalar};

    async fn scanner() -> (tempfile::TempDir, LiteScanner) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kw.db");
        let store = crate::connect::test_store(&crate::DatabaseUrl::Sqlite(path.clone()), 1).await;
        keyward_core::Store::close(&store).await;
        let scanner = LiteScanner::start(&path).unwrap();
        (dir, scanner)
    }

    /// The scheduling policy of the calling thread (field 41 of its `stat`).
    fn own_policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(38).unwrap().parse().unwrap()
    }

    /// Linux's `SCHED_IDLE`.
    const SCHED_IDLE: u32 = 5;

    #[tokio::test]
    async fn reads_run_on_a_thread_of_the_lowest_priority_and_cannot_write() {
        let (_dir, scanner) = scanner().await;
        let before = own_policy();
        let (policy, one) =
            scanner.run(|db| Ok((own_policy(), now(scalar::<i64>(db, "SELECT $1 + 1", args![41i64]))?))).await.unwrap();
        assert_eq!(policy, SCHED_IDLE);
        assert_eq!(one, 42);
        assert_ne!(own_policy(), SCHED_IDLE, "the caller's thread was lowered too");
        assert_eq!(own_policy(), before);

        let err = scanner.run(|db| now(db.execute("DELETE FROM mounts", vec![]))).await.unwrap_err().to_string();
        assert!(err.contains("readonly"), "{err}");
    }

    #[tokio::test]
    async fn a_closed_scanner_says_so() {
        let (_dir, scanner) = scanner().await;
        scanner.close();
        let err = scanner.run(|db| now(scalar::<i64>(db, "SELECT 1", vec![]))).await.unwrap_err();
        assert!(err.to_string().contains("stopped"), "{err}");
    }
}
