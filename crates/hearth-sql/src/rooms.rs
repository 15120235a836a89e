//! Rooms and their messages.
//!
//! `seq` is allocated by bumping `conversations.last_seq` inside the transaction that inserts
//! the messages: the row lock (MySQL) or the single writer (SQLite) serializes allocators, and
//! a rolled-back transaction gives its numbers back, so there are never gaps.

use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::model::{ChatMessage, MessageId, NewMessage, Room, UserRef};
use hearth_core::store::RoomStore;
use hearth_core::{StoreError, now_ms};

/// Rows per INSERT statement: keeps every statement well under SQLite's bind-variable limit.
const ROWS_PER_INSERT: usize = 200;

type RoomRow = (i64, String, String);
type MessageRow = (i64, i64, i64, String, String);

fn room((conversation_id, slug, name): RoomRow) -> Room {
    Room {
        conversation_id,
        slug,
        name,
    }
}

#[async_trait]
impl RoomStore for SqlStore {
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

    async fn append_messages(
        &self,
        room: &Room,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let count = messages.len() as i64;
        let mut tx = self.write.begin().await.map_err(store_error)?;
        sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + ?, \
             last_ms = CASE WHEN last_ms > ? THEN last_ms ELSE ? END WHERE id = ?",
        )
        .bind(count)
        .bind(now_ms)
        .bind(now_ms)
        .bind(room.conversation_id)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        let (last_seq, ms) = sqlx::query_as::<_, (i64, i64)>(
            "SELECT last_seq, last_ms FROM conversations WHERE id = ?",
        )
        .bind(room.conversation_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let first_seq = last_seq - count + 1;
        let stored: Vec<ChatMessage> = messages
            .into_iter()
            .zip(first_seq..)
            .map(|(m, seq)| ChatMessage {
                seq,
                ms,
                sender: m.sender,
                content: m.content,
            })
            .collect();
        for chunk in stored.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO messages (conversation_id, seq, ms, sender_id, content) VALUES ",
            );
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 {
                    "(?, ?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?, ?)"
                });
            }
            // Built only from the constant fragments above: no data in the SQL text.
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                insert = insert
                    .bind(room.conversation_id)
                    .bind(m.seq)
                    .bind(m.ms)
                    .bind(m.sender.id)
                    .bind(m.content.as_str());
            }
            insert.execute(&mut *tx).await.map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(stored)
    }

    async fn messages_before(
        &self,
        room: &Room,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let rows = sqlx::query_as::<_, MessageRow>(
            "SELECT m.seq, m.ms, m.sender_id, u.username, m.content \
             FROM messages m JOIN users u ON u.id = m.sender_id \
             WHERE m.conversation_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
        )
        .bind(room.conversation_id)
        .bind(before.map_or(i64::MAX, |id| id.seq))
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(seq, ms, id, username, content)| ChatMessage {
                seq,
                ms,
                sender: UserRef { id, username },
                content,
            })
            .collect())
    }
}
