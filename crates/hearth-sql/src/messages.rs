//! Messages of every conversation, and the room list.
//!
//! `seq` is allocated by bumping `conversations.last_seq` inside the transaction that inserts
//! the messages: the row lock (MySQL) or the single writer (SQLite) serializes allocators, and
//! a rolled-back transaction gives its numbers back, so there are never gaps.

use crate::inbox::append_events;
use crate::statement::{BatchTx, Statement};
use crate::{Backend, SqlStore, store_error, value_tuples};
use async_trait::async_trait;
use hearth_core::model::{
    Attachment, ChatMessage, ConversationKind, ConversationRef, MessageId, MessageKind, NewMessage,
    Room, UserRef, repeats_seq, without_repeated_words,
};
use hearth_core::store::{MessageStore, NewEvent, RoomDeletion};
use hearth_core::{StoreError, now_ms};
use hearth_proto::native::InboxEvent;
use sqlx::{Any, Transaction};
use std::collections::HashMap;

/// Rows per INSERT statement: keeps every statement well under SQLite's bind-variable limit.
const ROWS_PER_INSERT: usize = 200;

type RoomRow = (i64, String, String);

/// The columns every message read selects, in [`MessageRow`] order. `h.seq` is the viewer's
/// hidden marker; queries without a viewer select `NULL` for it. `m.file_id` comes last, after
/// it.
const MESSAGE_COLUMNS: &str = "m.conversation_id, m.seq, m.ms, m.sender_id, u.username, m.kind, \
     m.content, m.reply_to, m.client_msg_id, m.edited_ms, m.recalled, m.transcript";

/// Reads a page of one conversation: the page is cut from the primary key first (a derived
/// table), and only its rows are joined to `users`. Joining first lets MySQL's planner walk
/// the sender index instead and sort every message of a busy sender — seconds per page at a
/// million messages.
fn page_sql(order: &str, bound: &str, hidden: bool) -> String {
    let (hidden_column, hidden_join) = if hidden {
        (
            "h.seq",
            "LEFT JOIN hidden_messages h ON h.user_id = ? AND h.conversation_id = m.conversation_id \
             AND h.seq = m.seq",
        )
    } else {
        ("NULL", "")
    };
    format!(
        "SELECT {MESSAGE_COLUMNS}, {hidden_column}, m.file_id FROM \
         (SELECT * FROM messages WHERE conversation_id = ? AND seq {bound} ? \
          ORDER BY seq {order} LIMIT ?) m \
         JOIN users u ON u.id = m.sender_id {hidden_join} ORDER BY m.seq {order}"
    )
}

type MessageRow = (
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn message(row: MessageRow) -> ChatMessage {
    let (conversation_id, seq, ms, sender_id, username, kind, content, reply_to) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
    let (client_msg_id, edited_ms, recalled, transcript, hidden) =
        (row.8, row.9, row.10, row.11, row.12);
    ChatMessage {
        conversation_id,
        seq,
        ms,
        sender: UserRef {
            id: sender_id,
            username,
        },
        kind: MessageKind::parse(&kind).unwrap_or(MessageKind::Text),
        content,
        reply_to,
        client_msg_id,
        edited_ms,
        recalled: recalled != 0,
        hidden: hidden.is_some(),
        // Described by the messaging service, which looks up a page's files at once.
        file: row.13.map(|id| Attachment { id, meta: None }),
        transcript,
    }
}

fn room((conversation_id, slug, name): RoomRow) -> Room {
    Room {
        conversation_id,
        slug,
        name,
    }
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn upsert_room(&self, slug: &str, name: &str) -> Result<Room, StoreError> {
        sqlx::query(self.backend.upsert_room())
            .bind(slug)
            .bind(name)
            .bind(now_ms())
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        let row = sqlx::query_as::<_, RoomRow>(
            "SELECT id, slug, name FROM conversations WHERE kind = 'room' AND slug = ?",
        )
        .bind(slug)
        .fetch_one(&self.write)
        .await
        .map_err(store_error)?;
        Ok(room(row))
    }

    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        let rows = sqlx::query_as::<_, RoomRow>(
            "SELECT id, slug, name FROM conversations WHERE kind = 'room' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rows.into_iter().map(room).collect())
    }

    async fn delete_room(&self, slug: &str, force: bool) -> Result<RoomDeletion, StoreError> {
        crate::admin::delete_room(self, slug, force).await
    }

    async fn last_seq(&self, conversation_id: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT last_seq FROM conversations WHERE id = ?")
            .bind(conversation_id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)
            .map(|seq| seq.unwrap_or(0))
    }

    async fn append_messages(
        &self,
        conversation: &ConversationRef,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.commits
            .append(conversation.clone(), messages, now_ms)
            .await
    }

    async fn messages_before(
        &self,
        conversation: &ConversationRef,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let rows =
            sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(page_sql("DESC", "<", false)))
                .bind(conversation.id)
                .bind(before.map_or(i64::MAX, |id| id.seq))
                .bind(limit as i64)
                .fetch_all(&self.read)
                .await
                .map_err(store_error)?;
        Ok(rows.into_iter().map(message).collect())
    }

    async fn sent_messages(
        &self,
        sender: i64,
        client_msg_ids: &[String],
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let mut found = Vec::new();
        // One indexed lookup per id: retries are rare and batches small.
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, NULL, m.file_id FROM messages m \
             JOIN users u ON u.id = m.sender_id WHERE m.sender_id = ? AND m.client_msg_id = ?"
        );
        for id in client_msg_ids {
            let row = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(sender)
                .bind(id)
                // Readers see every committed append (WAL): no need to queue behind the writer.
                .fetch_optional(&self.read)
                .await
                .map_err(store_error)?;
            found.extend(row.map(message));
        }
        Ok(found)
    }

    async fn messages_after(
        &self,
        conversation_id: i64,
        viewer: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        // Bind order follows the text: the page's bounds come first, the viewer in the join.
        let rows = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(page_sql("ASC", ">", true)))
            .bind(conversation_id)
            .bind(after)
            .bind(limit as i64)
            .bind(viewer)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(message).collect())
    }

    async fn message(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, NULL, m.file_id FROM messages m \
             JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = ? AND m.seq = ?"
        );
        let row = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .bind(seq)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(message))
    }

    async fn recall(&self, conversation_id: i64, seq: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE messages SET recalled = 1, content = '', transcript = NULL \
             WHERE conversation_id = ? AND seq = ? AND recalled = 0",
        )
        .bind(conversation_id)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        withhold_repeats(&mut tx, self.backend, conversation_id, seq).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    async fn withhold_repeats(&self, conversation_id: i64, seq: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = withhold_repeats(&mut tx, self.backend, conversation_id, seq).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(changed)
    }

    async fn withheld_seqs(
        &self,
        viewer: i64,
        conversation_id: i64,
        seqs: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        let mut withheld = Vec::new();
        for chunk in seqs.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT m.seq FROM messages m WHERE m.conversation_id = ? AND m.seq IN ({}) \
                 AND (m.recalled = 1 OR EXISTS (SELECT 1 FROM hidden_messages h \
                 WHERE h.user_id = ? AND h.conversation_id = m.conversation_id AND h.seq = m.seq))",
                vec!["?"; chunk.len()].join(", ")
            );
            // Only placeholders are formatted into the text.
            let mut query =
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(conversation_id);
            for &seq in chunk {
                query = query.bind(seq);
            }
            let rows = query
                .bind(viewer)
                .fetch_all(&self.read)
                .await
                .map_err(store_error)?;
            withheld.extend(rows);
        }
        Ok(withheld)
    }

    async fn edit(
        &self,
        conversation_id: i64,
        seq: i64,
        content: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET content = ?, edited_ms = ? \
             WHERE conversation_id = ? AND seq = ? AND recalled = 0",
        )
        .bind(content)
        .bind(now_ms)
        .bind(conversation_id)
        .bind(seq)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn hide(
        &self,
        user_id: i64,
        conversation_id: i64,
        seq: i64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "{} INTO hidden_messages (user_id, conversation_id, seq) VALUES (?, ?, ?)",
            self.backend.insert_ignore()
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(conversation_id)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if done.rows_affected() == 0 {
            // Already hidden: nothing new to tell.
            return Ok(Vec::new());
        }
        let written = append_events(&mut tx, events, now_ms()).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(written)
    }
}

/// Stores messages inside the caller's transaction: allocates their `seq`s from the
/// conversation row, inserts them, and moves each sender's read position past their own.
pub(crate) async fn append_in(
    tx: &mut Transaction<'_, Any>,
    conversation: &ConversationRef,
    messages: Vec<NewMessage>,
    now_ms: i64,
) -> Result<Vec<ChatMessage>, StoreError> {
    let count = messages.len() as i64;
    sqlx::query(
        "UPDATE conversations SET last_seq = last_seq + ?, \
         last_ms = CASE WHEN last_ms > ? THEN last_ms ELSE ? END WHERE id = ?",
    )
    .bind(count)
    .bind(now_ms)
    .bind(now_ms)
    .bind(conversation.id)
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    let (last_seq, ms) =
        sqlx::query_as::<_, (i64, i64)>("SELECT last_seq, last_ms FROM conversations WHERE id = ?")
            .bind(conversation.id)
            .fetch_one(&mut **tx)
            .await
            .map_err(store_error)?;
    let stored = numbered(conversation, messages, last_seq - count + 1, ms);
    let rows: Vec<&ChatMessage> = stored.iter().collect();
    insert_rows(tx, &rows).await?;
    advance_senders(tx, conversation, &stored).await?;
    // Last, so that on MySQL the feed id is taken as close to the commit as possible (ids
    // committing out of order are waited for, but only for a while).
    crate::feed::record(tx, &rows).await?;
    Ok(stored)
}

/// The messages as stored: `seq`s from `first_seq` on, all at time `ms`.
pub(crate) fn numbered(
    conversation: &ConversationRef,
    messages: Vec<NewMessage>,
    first_seq: i64,
    ms: i64,
) -> Vec<ChatMessage> {
    messages
        .into_iter()
        .zip(first_seq..)
        .map(|(m, seq)| ChatMessage {
            conversation_id: conversation.id,
            seq,
            ms,
            sender: m.sender,
            kind: m.kind,
            content: m.content,
            reply_to: m.reply_to,
            client_msg_id: m.client_msg_id,
            edited_ms: None,
            recalled: false,
            hidden: false,
            file: m.file.map(|f| Attachment {
                id: f.id.clone(),
                meta: Some(Box::new(f)),
            }),
            transcript: None,
        })
        .collect()
}

/// Inserts the rows of stored messages, of any conversations, a few hundred per statement.
pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    stored: &[&ChatMessage],
) -> Result<(), StoreError> {
    for insert in insert_statements(stored) {
        tx.execute(&insert).await?;
    }
    Ok(())
}

/// The `INSERT`s of [`insert_rows`], a few hundred rows each.
pub(crate) fn insert_statements<'a>(stored: &[&'a ChatMessage]) -> Vec<Statement<'a>> {
    stored
        .chunks(ROWS_PER_INSERT)
        .map(|chunk| {
            let mut insert = Statement::new(format!(
                "INSERT INTO messages (conversation_id, seq, ms, sender_id, content, kind, \
                 reply_to, client_msg_id, file_id) VALUES {}",
                value_tuples(chunk.len(), 9)
            ));
            for m in chunk {
                insert
                    .bind(m.conversation_id)
                    .bind(m.seq)
                    .bind(m.ms)
                    .bind(m.sender.id)
                    .bind(m.content.as_str())
                    .bind(m.kind.as_str())
                    .bind(m.reply_to)
                    .bind(m.client_msg_id.as_deref())
                    .bind(m.file.as_ref().map(|f| f.id.as_str()));
            }
            insert
        })
        .collect()
}

/// Each sender of `messages` (of one conversation) and the `seq` of their newest one.
pub(crate) fn newest_per_sender(messages: &[ChatMessage]) -> HashMap<i64, i64> {
    messages.iter().map(|m| (m.sender.id, m.seq)).collect()
}

/// A sender has read up to their own message (direct and group conversations; rooms keep no
/// read positions).
pub(crate) async fn advance_senders(
    tx: &mut Transaction<'_, Any>,
    conversation: &ConversationRef,
    stored: &[ChatMessage],
) -> Result<(), StoreError> {
    if conversation.kind == ConversationKind::Room {
        return Ok(());
    }
    for (sender, seq) in newest_per_sender(stored) {
        sqlx::query(
            "UPDATE members SET read_seq = ? \
             WHERE conversation_id = ? AND user_id = ? AND read_seq < ?",
        )
        .bind(seq)
        .bind(conversation.id)
        .bind(sender)
        .bind(seq)
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    }
    Ok(())
}

/// Drops the words of message `seq` from the system events after it that repeat them (see
/// [`hearth_core::model::repeats_seq`]). The `LIKE` only narrows the scan; each candidate is
/// parsed to be sure (`"seq":1` also matches `"seq":12`). The read locks what it scanned
/// (MySQL), so an event being appended meanwhile waits for this transaction, and then finds
/// the message recalled when it checks (`Messaging::withhold_if_recalled`).
async fn withhold_repeats(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    conversation_id: i64,
    seq: i64,
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT seq, content FROM messages \
         WHERE conversation_id = ? AND seq > ? AND kind = 'system' AND content LIKE ?{}",
        backend.locking_read()
    );
    // Only a constant fragment is formatted into the text.
    let candidates = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql))
        .bind(conversation_id)
        .bind(seq)
        .bind(format!("%\"seq\":{seq}%"))
        .fetch_all(&mut **tx)
        .await
        .map_err(store_error)?;
    let mut changed = 0;
    for (event_seq, content) in candidates {
        if repeats_seq(&content) != Some(seq) {
            continue;
        }
        let Some(withheld) = without_repeated_words(&content) else {
            continue;
        };
        sqlx::query("UPDATE messages SET content = ? WHERE conversation_id = ? AND seq = ?")
            .bind(withheld)
            .bind(conversation_id)
            .bind(event_seq)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        changed += 1;
    }
    Ok(changed)
}

/// Messages by `(conversation_id, seq)`, as `viewer` sees them (0: nobody's hidden marks);
/// for search, which reads the feed's messages and its hits this way.
pub(crate) async fn messages_by_key(
    pool: &sqlx::AnyPool,
    viewer: i64,
    keys: &[(i64, i64)],
) -> Result<Vec<ChatMessage>, StoreError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let wanted = vec!["(m.conversation_id = ? AND m.seq = ?)"; chunk.len()].join(" OR ");
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, h.seq, m.file_id FROM messages m JOIN users u ON u.id = m.sender_id \
             LEFT JOIN hidden_messages h ON h.user_id = ? AND h.conversation_id = m.conversation_id \
             AND h.seq = m.seq WHERE {wanted}"
        );
        // Only constant fragments and placeholders are formatted into the text.
        let mut query = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql)).bind(viewer);
        for &(conversation_id, seq) in chunk {
            query = query.bind(conversation_id).bind(seq);
        }
        let rows = query.fetch_all(pool).await.map_err(store_error)?;
        found.extend(rows.into_iter().map(message));
    }
    Ok(found)
}
