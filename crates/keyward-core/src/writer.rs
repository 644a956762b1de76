//! The single writer: one task per database that applies writes in group-committed batches,
//! so many requests share one transaction and one fsync.
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::ops::apply;
use crate::{CoreError, KeyManager, Store, StoreError, StoreTx, WriteOp, WriteReply};

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 256;
/// Queue depth before submitters wait (back-pressure).
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<WriteReply, CoreError>>;

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<(WriteOp, Reply)>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Store>, keys: Arc<KeyManager>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, keys, rx));
        Self { queue }
    }

    /// Queues a write and waits until its batch has committed (or failed).
    pub async fn submit(&self, op: WriteOp) -> Result<WriteReply, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((op, tx)).await.map_err(|_| CoreError::Unavailable)?;
        rx.await.map_err(|_| CoreError::Unavailable)?
    }
}

async fn run(store: Arc<dyn Store>, keys: Arc<KeyManager>, mut rx: mpsc::Receiver<(WriteOp, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let results = commit_batch(store.as_ref(), &keys, &jobs).await;
        for ((_, reply), result) in jobs.into_iter().zip(results) {
            if let Ok(WriteReply::MountDeleted { id, .. }) = &result {
                keys.evict_mount(*id);
            }
            let _ = reply.send(result);
        }
    }
}

/// Applies each op under its own savepoint (a failing op does not undo the others), then
/// commits once. If the transaction cannot start or commit, every op fails with that error.
async fn commit_batch(
    store: &dyn Store,
    keys: &KeyManager,
    jobs: &[(WriteOp, Reply)],
) -> Vec<Result<WriteReply, CoreError>> {
    let fail_all = |e: StoreError| {
        let msg = e.to_string();
        jobs.iter().map(|_| Err(CoreError::Store(StoreError::Database(msg.clone())))).collect()
    };
    let mut tx = match store.begin_write(false).await {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut results = Vec::with_capacity(jobs.len());
    for (op, _) in jobs {
        match apply_one(tx.as_mut(), keys, op).await {
            Ok(r) => results.push(r),
            Err(e) => return fail_all(e),
        }
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => fail_all(e),
    }
}

/// Runs one op inside a savepoint, retrying once on a concurrent-change conflict. The outer
/// error is a storage failure that dooms the whole batch.
async fn apply_one(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    op: &WriteOp,
) -> Result<Result<WriteReply, CoreError>, StoreError> {
    let mut attempt = 0;
    loop {
        tx.savepoint().await?;
        let r = apply(tx, keys, op).await;
        match r {
            Ok(reply) => {
                tx.release_savepoint().await?;
                return Ok(Ok(reply));
            }
            Err(e) => {
                tx.rollback_to_savepoint().await?;
                tx.release_savepoint().await?;
                attempt += 1;
                if attempt < 2 && matches!(e, CoreError::Store(StoreError::Conflict)) {
                    continue;
                }
                return Ok(Err(e));
            }
        }
    }
}
