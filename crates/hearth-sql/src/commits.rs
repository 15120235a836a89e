//! Group commit across conversations, for SQLite.
//!
//! SQLite has one writer and pays an fsync per commit (`synchronous=FULL`). Each conversation's
//! writer already batches its own posts, but many quiet conversations (direct chats) would
//! still cost one fsync each. Appends therefore queue here; one task drains what has queued
//! and stores it in a single transaction: one fsync for everything that arrived meanwhile.
//!
//! Each statement through the driver costs tens of microseconds, so the common case shares
//! them: one `UPDATE … RETURNING` per append reserves its `seq`s, then one multi-row `INSERT`
//! stores every append's messages and one more their search feed rows. When that transaction
//! fails (one append is bad: a reused client id, a vanished conversation), the batch runs again
//! with one savepoint per append, so the bad append fails alone. Nobody is answered before the
//! commit is on disk.
//!
//! MySQL needs none of this: appends run in parallel transactions and InnoDB groups their
//! log flushes itself.

use crate::messages::{advance_senders, append_in, insert_rows, numbered, reserve_seqs};
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

/// The batch in one transaction; the results once the commit returned.
async fn commit(
    pool: &AnyPool,
    batch: &mut [Append],
) -> Result<Vec<Result<Vec<ChatMessage>, StoreError>>, StoreError> {
    match commit_together(pool, batch).await {
        Ok(stored) => Ok(stored.into_iter().map(Ok).collect()),
        Err(StoreError::Unavailable(reason)) => Err(StoreError::Unavailable(reason)),
        Err(error) => {
            tracing::debug!(%error, appends = batch.len(), "shared commit failed; one savepoint per append");
            commit_apart(pool, batch).await
        }
    }
}

/// The common case: statements shared by the whole batch. Fails as a whole.
async fn commit_together(
    pool: &AnyPool,
    batch: &[Append],
) -> Result<Vec<Vec<ChatMessage>>, StoreError> {
    let mut tx = pool.begin().await.map_err(store_error)?;
    let mut stored = Vec::with_capacity(batch.len());
    for append in batch {
        let count = append.messages.len() as i64;
        let (last_seq, ms) =
            reserve_seqs(&mut tx, append.conversation.id, count, append.now_ms).await?;
        // Cloned: a failed batch runs again from the same appends.
        let messages = numbered(
            &append.conversation,
            append.messages.clone(),
            last_seq - count + 1,
            ms,
        );
        advance_senders(&mut tx, &append.conversation, &messages).await?;
        stored.push(messages);
    }
    let rows: Vec<&ChatMessage> = stored.iter().flatten().collect();
    insert_rows(&mut tx, &rows).await?;
    crate::feed::record(&mut tx, &rows).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(stored)
}

/// One savepoint per append, so that a bad one rolls back and fails alone.
async fn commit_apart(
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
