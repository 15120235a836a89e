//! WAL checkpoints off the commit path, for SQLite.
//!
//! In WAL mode every commit appends pages to the log, and a checkpoint copies them back into
//! the database file (and fsyncs it). Left to SQLite, the commit that crosses the threshold
//! runs the checkpoint itself, on the single writer, while every queued send waits: one
//! commit in a few dozen took several times as long as the others. Here a reader connection
//! checkpoints instead (`PASSIVE`: it copies what no reader still needs and never blocks the
//! writer), at most every [`EVERY`] and only after something was committed. The writer keeps a
//! far threshold as a backstop (`Backend::writer_setup`).
//!
//! Copying is not enough to keep the log short: SQLite starts the log over only when a write
//! begins while every frame in it has been copied, and under commits that never pause new
//! frames always arrive while a checkpoint copies — the log grew to the backstop's ~80 MB and
//! the commit that crossed it checkpointed on the writer (10–100 ms). So once the log holds
//! [`SHORTEN_AFTER`] frames, a second checkpoint (`RESTART`) runs on the writer pool's
//! connection, which is also the commit thread's turn at the write lock
//! (`sqlite_commits.rs`): no commit runs meanwhile, it only copies what the first one left,
//! waits up to 10 ms for readers still on the log, and the next commit starts the log over.
//! At half-rate `dm` the log now peaks at ~56 MB and restarts about once a second; the
//! writer's own checkpoint no longer runs. After a look that found the log past
//! [`SHORTEN_AFTER`], the next comes sooner in proportion ([`pause_after`]), so a faster disk
//! and faster commits do not outrun it.

use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const EVERY: Duration = Duration::from_millis(250);

/// Frames in the log (4 KiB pages: 16 MiB) past which a checkpoint takes the writer's turn.
const SHORTEN_AFTER: i64 = 4_096;
const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const RESTART: &str = "PRAGMA wal_checkpoint(RESTART)";
/// How long the restart waits for readers, in ms; then the usual wait for the lock
/// (`Backend::session_setup`).
const READERS_WAIT: &str = "PRAGMA busy_timeout = 10";
const WRITERS_WAIT: &str = "PRAGMA busy_timeout = 5000";

/// Told about commits by the commit queue; checkpoints in its own task.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    committed: Arc<(AtomicBool, Notify)>,
}

impl Checkpointer {
    /// Checkpoints on a `reader` connection, and on the `writer` pool's when the log is long.
    pub(crate) fn start(reader: AnyPool, writer: AnyPool) -> Checkpointer {
        let checkpointer = Checkpointer {
            committed: Arc::default(),
        };
        tokio::spawn(run(reader, writer, checkpointer.committed.clone()));
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

async fn run(reader: AnyPool, writer: AnyPool, committed: Arc<(AtomicBool, Notify)>) {
    let (dirty, wake) = &*committed;
    loop {
        wake.notified().await;
        if !dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        let frames = match checkpoint(&reader, PASSIVE).await {
            Ok(frames) => frames,
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed");
                0
            }
        };
        if frames >= SHORTEN_AFTER
            && let Err(error) = restart(&writer).await
        {
            tracing::warn!(%error, "WAL checkpoint on the writer failed");
        }
        tokio::time::sleep(pause_after(frames)).await;
        // Stops when the store is closed and no commit will come any more.
        if reader.is_closed() {
            return;
        }
    }
}

/// How long to wait before looking again, having found `frames` in the log. A log that grew
/// past [`SHORTEN_AFTER`] within one pause is looked at sooner, in proportion, so the log is
/// caught near that length however fast the disk and the commits are: at a fixed 250 ms a fast
/// host's commits grew it to ~80 MB between looks, the writer's own backstop.
fn pause_after(frames: i64) -> Duration {
    if frames <= SHORTEN_AFTER {
        return EVERY;
    }
    let share = SHORTEN_AFTER as f64 / frames as f64;
    EVERY.mul_f64(share).max(EVERY / 10)
}

/// Copies the rest of the log with the writer's turn held, then waits briefly for readers
/// still reading from the log, so that the next commit starts it over. A reader that takes
/// longer leaves the log as it is until the next time.
async fn restart(writer: &AnyPool) -> Result<(), sqlx::Error> {
    let mut turn = writer.acquire().await?;
    sqlx::query(READERS_WAIT).execute(&mut *turn).await?;
    let restarted = checkpoint(&mut *turn, RESTART).await;
    if let Err(error) = sqlx::query(WRITERS_WAIT).execute(&mut *turn).await {
        // Not back to the usual wait for the lock: a fresh connection gets it.
        drop(turn.detach());
        return Err(error);
    }
    restarted.map(drop)
}

/// Runs `pragma` (a `PRAGMA wal_checkpoint`); the frames in the log.
async fn checkpoint<'c>(
    connection: impl sqlx::Executor<'c, Database = sqlx::Any>,
    pragma: &'static str,
) -> Result<i64, sqlx::Error> {
    // (busy, frames in the log, frames copied); -1s when the database is not in WAL mode.
    let row = sqlx::query(pragma).fetch_one(connection).await?;
    row.try_get(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_that_grew_fast_is_looked_at_sooner() {
        assert_eq!(pause_after(0), EVERY);
        assert_eq!(pause_after(SHORTEN_AFTER), EVERY);
        assert_eq!(pause_after(SHORTEN_AFTER * 2), EVERY / 2);
        assert_eq!(pause_after(SHORTEN_AFTER * 100), EVERY / 10);
    }
}
