//! Group commit across conversations, for SQLite.
//!
//! SQLite has one writer and pays an fsync per commit (`synchronous=FULL`). Each conversation's
//! writer already batches its own posts, but many quiet conversations (direct chats) would
//! still cost one fsync each. Appends therefore queue here; one task drains what has queued,
//! runs each append in its own savepoint of a single transaction, and commits once: one fsync
//! for everything that arrived meanwhile. A failing append rolls back to its savepoint and
//! fails alone. Nobody is answered before the commit is on disk.
//!
//! MySQL needs none of this: appends run in parallel transactions and InnoDB groups their
//! log flushes itself.

use crate::messages::append_in;
use crate::store_error;
use hearth_core::StoreError;
use hearth_core::model::{ChatMessage, ConversationRef, NewMessage};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

struct Append {
    conversation: ConversationRef,
    messages: Vec<NewMessage>,
    now_ms: i64,
    reply: oneshot::Sender<Result<Vec<ChatMessage>, StoreError>>,
}

/// Appends taken into one transaction at most.
const MAX_APPENDS: usize = 256;

pub(crate) struct CommitQueue {
    queue: mpsc::Sender<Append>,
}

impl CommitQueue {
    pub(crate) fn start(pool: AnyPool) -> CommitQueue {
        let (tx, rx) = mpsc::channel(4 * MAX_APPENDS);
        tokio::spawn(run(pool, rx));
        CommitQueue { queue: tx }
    }

    pub(crate) async fn append(
        &self,
        conversation: ConversationRef,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("commit queue stopped".into());
        self.queue
            .send(Append {
                conversation,
                messages,
                now_ms,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(pool: AnyPool, mut queue: mpsc::Receiver<Append>) {
    let mut batch = Vec::with_capacity(MAX_APPENDS);
    while queue.recv_many(&mut batch, MAX_APPENDS).await > 0 {
        match commit(&pool, &mut batch).await {
            Ok(results) => {
                for (append, result) in batch.drain(..).zip(results) {
                    let _ = append.reply.send(result);
                }
            }
            Err(error) => {
                for append in batch.drain(..) {
                    let _ = append.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// One transaction, one savepoint per append; the results once the commit returned.
async fn commit(
    pool: &AnyPool,
    batch: &mut [Append],
) -> Result<Vec<Result<Vec<ChatMessage>, StoreError>>, StoreError> {
    let mut tx = pool.begin().await.map_err(store_error)?;
    let mut results = Vec::with_capacity(batch.len());
    for append in batch.iter_mut() {
        let mut savepoint = sqlx::Acquire::begin(&mut *tx).await.map_err(store_error)?;
        let messages = std::mem::take(&mut append.messages);
        match append_in(
            &mut savepoint,
            &append.conversation,
            messages,
            append.now_ms,
        )
        .await
        {
            Ok(stored) => {
                savepoint.commit().await.map_err(store_error)?;
                results.push(Ok(stored));
            }
            Err(StoreError::Unavailable(reason)) => return Err(StoreError::Unavailable(reason)),
            // Dropping the savepoint rolls this append back; the others stand.
            Err(error) => results.push(Err(error)),
        }
    }
    tx.commit().await.map_err(store_error)?;
    Ok(results)
}
