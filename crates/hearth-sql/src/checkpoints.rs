//! WAL checkpoints off the commit path, for SQLite.
//!
//! In WAL mode every commit appends pages to the log, and a checkpoint copies them back into
//! the database file (and fsyncs it). Left to SQLite, the commit that crosses the threshold
//! runs the checkpoint itself, on the single writer, while every queued send waits: one
//! commit in a few dozen took several times as long as the others. Here a reader connection
//! checkpoints instead (`PASSIVE`: it copies what no reader still needs and never blocks the
//! writer), at most every [`EVERY`] and only after something was committed. The writer keeps a
//! far threshold as a backstop (`Backend::writer_setup`).

use sqlx::AnyPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const EVERY: Duration = Duration::from_millis(250);

/// Told about commits by the commit queue; checkpoints in its own task.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    committed: Arc<(AtomicBool, Notify)>,
}

impl Checkpointer {
    pub(crate) fn start(pool: AnyPool) -> Checkpointer {
        let checkpointer = Checkpointer {
            committed: Arc::default(),
        };
        tokio::spawn(run(pool, checkpointer.committed.clone()));
        checkpointer
    }

    /// Something was committed: the log grew.
    pub(crate) fn committed(&self) {
        let (dirty, wake) = &*self.committed;
        if !dirty.swap(true, Ordering::Relaxed) {
            wake.notify_one();
        }
    }
}

async fn run(pool: AnyPool, committed: Arc<(AtomicBool, Notify)>) {
    let (dirty, wake) = &*committed;
    loop {
        wake.notified().await;
        if !dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
        tokio::time::sleep(EVERY).await;
        // Stops when the store is closed and no commit will come any more.
        if pool.is_closed() {
            return;
        }
    }
}
