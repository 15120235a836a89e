//! Group commit across conversations.
//!
//! Each conversation's writer already batches its own posts, but many quiet conversations
//! (direct chats) would still cost a transaction each: on SQLite, one writer and an fsync per
//! commit (`synchronous=FULL`); on MySQL, six round trips per append. Appends therefore
//! queue here; one task drains what has queued and stores it in a single transaction: one
//! fsync and a handful of statements for everything that arrived meanwhile.
//!
//! The common case uses the same statements for the whole batch whatever its size: one
//! `UPDATE` joined with a derived table of every conversation's count reserves their `seq`s
//! (`RETURNING` them on SQLite; MySQL reads them back), one multi-row `INSERT` stores the
//! messages, one joined `UPDATE` moves the senders' read positions and one `INSERT` adds the
//! search feed rows. When that transaction fails (one append is bad: a reused client id, a
//! vanished conversation; or on MySQL a deadlock with another node), the batch runs again with
//! one savepoint per append, so a bad append fails alone. Nobody is answered before the commit
//! is durable.

use crate::checkpoints::Checkpointer;
use crate::dialect::Backend;
use crate::messages::{append_in, insert_statements, newest_per_sender, numbered};
use crate::statement::{BatchTx, Statement};
use crate::{begin_write, store_error};
use hearth_core::StoreError;
use hearth_core::model::{ChatMessage, ConversationKind, ConversationRef, NewMessage};
use sqlx::{AnyConnection, AnyPool};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

pub(crate) struct Append {
    conversation: ConversationRef,
    messages: Vec<NewMessage>,
    now_ms: i64,
    reply: oneshot::Sender<Result<Vec<ChatMessage>, StoreError>>,
}

/// Appends taken into one transaction at most (three bound values each in `reserve_seqs`:
/// far below SQLite's limit of 32,766).
const MAX_APPENDS: usize = 256;
/// How long the queue stays empty before the committer lets go of what it holds between
/// commits ([`Committer::pause`]). Letting go at once cost the SQLite committer a round trip
/// per quiet moment, ~2 ms more ack latency at the median (`dm` at half rate).
const IDLE: Duration = Duration::from_millis(2);
/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 200;

/// The row counts the joined `UPDATE`s are padded to. Each row count is its own SQL text, and
/// a connection keeps 100 prepared statements: with one text per count the commit path kept
/// evicting its own statements and re-preparing them (preparing was 14 % of the SQLite
/// writer's time at half-rate `dm`; padding these two took a third of it off). Padding rows
/// name conversation 0, which does not exist, so they match nothing.
const PADDED_ROWS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// `rows` rounded up to the next padded size.
fn padded(rows: usize) -> usize {
    PADDED_ROWS
        .into_iter()
        .find(|&size| size >= rows)
        .unwrap_or(rows)
}

/// Begins a transaction, stores a whole batch in it with [`store_together`] and commits.
pub(crate) trait Committer {
    async fn commit_together(
        &mut self,
        batch: &[Append],
    ) -> Result<Vec<Vec<ChatMessage>>, StoreError>;

    /// Nothing was queued for [`IDLE`], or the savepoint path (on the writer pool) is next:
    /// let go of anything held between commits.
    fn pause(&mut self) {}
}

/// Commits to MySQL on a connection of its own, kept from one commit to the next with
/// `autocommit` off: the first statement opens the transaction and `COMMIT` ends it. Taking a
/// pool connection and `BEGIN` for each commit cost two round trips more than the statements
/// (the pool pings each connection it hands out, then `BEGIN`): eight instead of six.
struct MySqlCommitter {
    pool: AnyPool,
    /// Detached from the pool: with `autocommit` off it must never serve anyone else.
    connection: Option<AnyConnection>,
}

/// A connection taken out of `pool` for good, with `autocommit` off.
async fn commit_connection(pool: &AnyPool) -> Result<AnyConnection, StoreError> {
    let mut connection = pool.acquire().await.map_err(store_error)?.detach();
    sqlx::query("SET autocommit = 0")
        .execute(&mut connection)
        .await
        .map_err(store_error)?;
    Ok(connection)
}

/// How a commit on the kept connection failed.
enum Failed {
    /// A statement before `COMMIT`: nothing was committed. `usable`: the `ROLLBACK` went
    /// through, so the connection can serve the next batch; if not, it is dead.
    BeforeCommit { error: StoreError, usable: bool },
    /// `COMMIT` itself: whether it took effect is unknown, so the batch is not run again.
    AtCommit(StoreError),
}

/// The batch's statements, then `COMMIT`.
async fn commit_on(
    connection: &mut AnyConnection,
    batch: &[Append],
) -> Result<Vec<Vec<ChatMessage>>, Failed> {
    let stored = match store_together(connection, Backend::MySql, batch).await {
        Ok(stored) => stored,
        Err(error) => {
            let usable = sqlx::query("ROLLBACK")
                .execute(&mut *connection)
                .await
                .is_ok();
            return Err(Failed::BeforeCommit { error, usable });
        }
    };
    sqlx::query("COMMIT")
        .execute(&mut *connection)
        .await
        .map_err(|error| Failed::AtCommit(store_error(error)))?;
    Ok(stored)
}

impl Committer for MySqlCommitter {
    async fn commit_together(
        &mut self,
        batch: &[Append],
    ) -> Result<Vec<Vec<ChatMessage>>, StoreError> {
        // A kept connection may have died while idle (the server restarted, `wait_timeout`):
        // its first statement fails, nothing was committed, and the batch runs again on a
        // fresh connection. A failed `COMMIT` is not retried: it may have taken effect, and
        // the appends' answers say it failed (as any failed commit does).
        let mut kept = self.connection.is_some();
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => commit_connection(&self.pool).await?,
        };
        loop {
            match commit_on(&mut connection, batch).await {
                Ok(stored) => {
                    self.connection = Some(connection);
                    return Ok(stored);
                }
                Err(Failed::BeforeCommit {
                    error,
                    usable: true,
                }) => {
                    self.connection = Some(connection);
                    return Err(error);
                }
                Err(Failed::BeforeCommit { usable: false, .. }) if kept => {
                    kept = false;
                    connection = commit_connection(&self.pool).await?;
                }
                Err(Failed::BeforeCommit { error, .. } | Failed::AtCommit(error)) => {
                    return Err(error);
                }
            }
        }
    }
}

pub(crate) struct CommitQueue {
    queue: mpsc::Sender<Append>,
}

impl CommitQueue {
    /// Starts committing to a SQLite file, in a thread of its own that holds its own
    /// connection and runs each commit's statements itself, one after the other without
    /// waiting on anything. Through sqlx each statement was a round trip to the connection's
    /// worker thread and back to the committing task: on two busy cores each of those waits
    /// was a wake-up and often a wait for a core, and `BEGIN`, which does nothing, took
    /// 0.2–0.5 ms. `pool` is the single-connection writer pool every other write uses: its
    /// connection is the commit thread's turn at the write lock (`sqlite_commits.rs`), and
    /// it serves the savepoint path.
    pub(crate) fn start_sqlite(
        file: &Path,
        pool: AnyPool,
        checkpoints: Checkpointer,
    ) -> Result<CommitQueue, crate::SqlError> {
        let connection = crate::sqlite_commits::open(file)?;
        let (tx, rx) = mpsc::channel(4 * MAX_APPENDS);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("hearth-commits".into())
            .spawn(move || {
                let committer =
                    crate::sqlite_commits::SqliteCommitter::new(connection, pool.clone());
                runtime.block_on(run(committer, pool, Backend::Sqlite, rx, Some(checkpoints)))
            })?;
        Ok(CommitQueue { queue: tx })
    }

    /// Starts committing to MySQL: a task on the shared runtime (the connections' sockets are
    /// registered with it).
    pub(crate) fn start_mysql(pool: AnyPool) -> CommitQueue {
        let (tx, rx) = mpsc::channel(4 * MAX_APPENDS);
        let committer = MySqlCommitter {
            pool: pool.clone(),
            connection: None,
        };
        tokio::spawn(run(committer, pool, Backend::MySql, rx, None));
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

async fn run(
    mut committer: impl Committer,
    pool: AnyPool,
    backend: Backend,
    mut queue: mpsc::Receiver<Append>,
    checkpoints: Option<Checkpointer>,
) {
    let mut batch = Vec::with_capacity(MAX_APPENDS);
    loop {
        let received = match timeout(IDLE, queue.recv_many(&mut batch, MAX_APPENDS)).await {
            Ok(received) => received,
            Err(_idle) => {
                committer.pause();
                queue.recv_many(&mut batch, MAX_APPENDS).await
            }
        };
        if received == 0 {
            return;
        }
        let results = commit(&mut committer, &pool, backend, &mut batch).await;
        if let Some(checkpoints) = &checkpoints {
            checkpoints.committed();
        }
        match results {
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
    committer: &mut impl Committer,
    pool: &AnyPool,
    backend: Backend,
    batch: &mut [Append],
) -> Result<Vec<Result<Vec<ChatMessage>, StoreError>>, StoreError> {
    match committer.commit_together(batch).await {
        Ok(stored) => Ok(stored.into_iter().map(Ok).collect()),
        Err(StoreError::Unavailable(reason)) => Err(StoreError::Unavailable(reason)),
        Err(error) => {
            tracing::debug!(%error, appends = batch.len(), "shared commit failed; one savepoint per append");
            committer.pause();
            commit_apart(pool, backend, batch).await
        }
    }
}

/// The common case: statements shared by the whole batch, in the caller's transaction.
/// Fails as a whole.
pub(crate) async fn store_together(
    tx: &mut impl BatchTx,
    backend: Backend,
    batch: &[Append],
) -> Result<Vec<Vec<ChatMessage>>, StoreError> {
    let reserved = reserve_seqs(tx, backend, batch).await?;
    let mut stored = Vec::with_capacity(batch.len());
    for append in batch {
        let count = append.messages.len() as i64;
        let &(last_seq, ms) = reserved
            .get(&append.conversation.id)
            .ok_or_else(|| StoreError::Backend("no such conversation".into()))?;
        // Cloned: a failed batch runs again from the same appends.
        let messages = append.messages.clone();
        stored.push(numbered(
            &append.conversation,
            messages,
            last_seq - count + 1,
            ms,
        ));
    }
    let rows: Vec<&ChatMessage> = stored.iter().flatten().collect();
    for insert in insert_statements(&rows) {
        tx.execute(&insert).await?;
    }
    for update in advance_statements(backend, batch, &stored) {
        tx.execute(&update).await?;
    }
    // Last, so that on MySQL the feed id is taken as close to the commit as possible.
    for insert in crate::feed::record_statements(&rows) {
        tx.execute(&insert).await?;
    }
    Ok(stored)
}

/// Reserves each append's `seq`s in its conversation (one statement, plus a read on MySQL,
/// whose `UPDATE` returns nothing); returns every conversation's new `last_seq` and time.
/// Needs one append per conversation — what the per-conversation writers send; anything else
/// is left to the savepoint path. Rows are locked in conversation id order, so two nodes'
/// batches cannot deadlock over them.
async fn reserve_seqs(
    tx: &mut impl BatchTx,
    backend: Backend,
    batch: &[Append],
) -> Result<HashMap<i64, (i64, i64)>, StoreError> {
    let mut appends: Vec<&Append> = batch.iter().collect();
    appends.sort_unstable_by_key(|a| a.conversation.id);
    if appends
        .windows(2)
        .any(|w| w[0].conversation.id == w[1].conversation.id)
    {
        return Err(StoreError::Backend(
            "two appends to one conversation".into(),
        ));
    }
    let rows = padded(appends.len());
    let mut sql = backend.update_from_rows(
        "conversations",
        &["id", "n", "ms"],
        rows,
        "conversations.id = v.id",
        "last_seq = last_seq + v.n, \
         last_ms = CASE WHEN last_ms > v.ms THEN last_ms ELSE v.ms END",
        None,
    );
    if backend == Backend::Sqlite {
        sql.push_str(" RETURNING id, last_seq, last_ms");
    }
    let mut update = Statement::new(sql);
    for append in &appends {
        update
            .bind(append.conversation.id)
            .bind(append.messages.len() as i64)
            .bind(append.now_ms);
    }
    for _ in appends.len()..rows {
        update.bind(0_i64).bind(0_i64).bind(0_i64);
    }
    // On MySQL the update returns no rows: they are read back below.
    let returned = tx.fetch_triples(&update).await?;
    let rows = match backend {
        Backend::Sqlite => returned,
        Backend::MySql => {
            let mut select = Statement::new(format!(
                "SELECT id, last_seq, last_ms FROM conversations WHERE id IN ({})",
                vec!["?"; rows].join(", ")
            ));
            for append in &appends {
                select.bind(append.conversation.id);
            }
            for _ in appends.len()..rows {
                select.bind(0_i64);
            }
            tx.fetch_triples(&select).await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(id, last_seq, ms)| (id, (last_seq, ms)))
        .collect())
}

/// A sender has read up to their own message: one statement for every direct and group
/// conversation of the batch (rooms keep no read positions). The per-conversation form is
/// `messages::advance_senders`.
fn advance_statements(
    backend: Backend,
    batch: &[Append],
    stored: &[Vec<ChatMessage>],
) -> Vec<Statement<'static>> {
    let mut newest: Vec<(i64, i64, i64)> = batch
        .iter()
        .zip(stored)
        .filter(|(append, _)| append.conversation.kind != ConversationKind::Room)
        .flat_map(|(append, messages)| {
            newest_per_sender(messages)
                .into_iter()
                .map(|(sender, seq)| (append.conversation.id, sender, seq))
        })
        .collect();
    newest.sort_unstable();
    newest
        .chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let rows = padded(chunk.len());
            let mut update = Statement::new(backend.update_from_rows(
                "members",
                &["c", "u", "s"],
                rows,
                "members.conversation_id = v.c AND members.user_id = v.u",
                "read_seq = v.s",
                Some("members.read_seq < v.s"),
            ));
            for &(conversation, sender, seq) in chunk {
                update.bind(conversation).bind(sender).bind(seq);
            }
            for _ in chunk.len()..rows {
                update.bind(0_i64).bind(0_i64).bind(0_i64);
            }
            update
        })
        .collect()
}

/// One savepoint per append, so that a bad one rolls back and fails alone.
async fn commit_apart(
    pool: &AnyPool,
    backend: Backend,
    batch: &mut [Append],
) -> Result<Vec<Result<Vec<ChatMessage>, StoreError>>, StoreError> {
    let mut tx = begin_write(pool, backend).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_round_up_to_a_few_sizes() {
        assert_eq!(padded(1), 1);
        assert_eq!(padded(3), 4);
        assert_eq!(padded(129), 256);
        assert_eq!(padded(MAX_APPENDS), MAX_APPENDS);
        // Every chunk of read positions fits a padded size, and so does every batch.
        assert!(padded(ROWS_PER_STATEMENT) >= ROWS_PER_STATEMENT);
        assert_eq!(padded(MAX_APPENDS + 1), MAX_APPENDS + 1);
        let shapes: std::collections::HashSet<usize> = (1..=MAX_APPENDS).map(padded).collect();
        assert_eq!(shapes.len(), PADDED_ROWS.len());
    }
}
