//! The search feed and the other reads search needs.
//!
//! [`record`] adds one `message_feed` row per stored message inside the transaction that
//! stores it, so the feed holds exactly the committed messages. Each node's search tailer
//! reads the feed by id; see `hearth-search` for how it copes with ids that commit out of
//! order on MySQL.

use crate::messages::messages_by_key;
use crate::statement::{BatchTx, Statement};
use crate::{SqlStore, store_error, value_tuples};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::files::describe_files;
use hearth_core::model::{ChatMessage, UserRef};
use hearth_core::search::{FeedEntry, FeedStore, Readable};
use sqlx::{Any, Transaction};
use std::collections::HashMap;

/// Rows per statement: keeps every statement well under SQLite's bind-variable limit.
const CHUNK: usize = 200;

/// Feeds newly stored messages (of any conversations) to search; called by the message
/// insert, in the same transaction.
pub(crate) async fn record(
    tx: &mut Transaction<'_, Any>,
    stored: &[&ChatMessage],
) -> Result<(), StoreError> {
    for insert in record_statements(stored) {
        tx.execute(&insert).await?;
    }
    Ok(())
}

/// The `INSERT`s of [`record`].
pub(crate) fn record_statements<'a>(stored: &[&ChatMessage]) -> Vec<Statement<'a>> {
    stored
        .chunks(CHUNK)
        .map(|chunk| {
            let mut insert = Statement::new(format!(
                "INSERT INTO message_feed (conversation_id, seq) VALUES {}",
                value_tuples(chunk.len(), 2)
            ));
            for m in chunk {
                insert.bind(m.conversation_id).bind(m.seq);
            }
            insert
        })
        .collect()
}

/// `'!'` escapes LIKE's wildcards the same way in SQLite and MySQL.
fn like_prefix(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '!' | '%' | '_') {
            escaped.push('!');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

impl SqlStore {
    /// The messages with these keys as `viewer` sees them, their files described: search
    /// finds a file by its name.
    async fn described_messages(
        &self,
        viewer: i64,
        keys: &[(i64, i64)],
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let mut messages = messages_by_key(&self.read, viewer, keys).await?;
        describe_files(self, &mut messages).await?;
        Ok(messages)
    }

    /// Attaches each feed row's message (read now, so edits and recalls are applied).
    async fn with_messages(
        &self,
        rows: Vec<(i64, i64, i64)>,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let keys: Vec<(i64, i64)> = rows.iter().map(|&(_, c, s)| (c, s)).collect();
        let mut messages: HashMap<(i64, i64), ChatMessage> = self
            .described_messages(0, &keys)
            .await?
            .into_iter()
            .map(|m| ((m.conversation_id, m.seq), m))
            .collect();
        // A feed row is written with its message, so each finds one; a row without is skipped.
        Ok(rows
            .into_iter()
            .filter_map(|(id, c, s)| {
                let message = messages.remove(&(c, s))?;
                Some(FeedEntry { id, message })
            })
            .collect())
    }
}

#[async_trait]
impl FeedStore for SqlStore {
    async fn feed_after(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT id, conversation_id, seq FROM message_feed WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        self.with_messages(rows).await
    }

    async fn feed_entries(&self, ids: &[i64]) -> Result<Vec<FeedEntry>, StoreError> {
        let mut rows = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT id, conversation_id, seq FROM message_feed WHERE id IN ({marks}) \
                 ORDER BY id"
            );
            // Only placeholders are formatted into the text.
            let mut query = sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            rows.extend(query.fetch_all(&self.read).await.map_err(store_error)?);
        }
        self.with_messages(rows).await
    }

    async fn feed_head(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM message_feed")
            .fetch_one(&self.read)
            .await
            .map(|id| id.unwrap_or(0))
            .map_err(store_error)
    }

    async fn messages_by_key(
        &self,
        viewer: i64,
        keys: &[(i64, i64)],
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.described_messages(viewer, keys).await
    }

    async fn readable(&self, user: i64) -> Result<Vec<Readable>, StoreError> {
        let rooms = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, slug FROM conversations WHERE kind = 'room'",
        )
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        // The same rule as `Messaging::membership`: a member now, of a live direct/group chat.
        let memberships = sqlx::query_as::<_, (i64, i64)>(
            "SELECT m.conversation_id, m.joined_seq FROM members m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.user_id = ? AND c.kind <> 'room' AND c.dissolved = 0",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rooms
            .into_iter()
            .map(|(conversation_id, slug)| Readable {
                conversation_id,
                joined_seq: 0,
                room: Some(slug),
            })
            .chain(
                memberships
                    .into_iter()
                    .map(|(conversation_id, joined_seq)| Readable {
                        conversation_id,
                        joined_seq,
                        room: None,
                    }),
            )
            .collect())
    }

    async fn find_users(
        &self,
        username_prefix: &str,
        email_prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserRef>, StoreError> {
        let by_email = if email_prefix.is_some() {
            " OR email LIKE ? ESCAPE '!'"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, username FROM users WHERE username_key LIKE ? ESCAPE '!'{by_email} \
             ORDER BY username_key LIMIT ?"
        );
        // Only constant fragments are formatted into the text.
        let mut query = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql))
            .bind(like_prefix(&username_prefix.to_lowercase()));
        if let Some(email) = email_prefix {
            query = query.bind(like_prefix(&email.to_lowercase()));
        }
        let rows = query
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| UserRef { id, username })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_prefix("a_b%c!"), "a!_b!%c!!%");
        assert_eq!(like_prefix("ann@"), "ann@%");
    }
}
