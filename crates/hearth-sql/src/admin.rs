//! Operator tools: user roles and bans, room deletion, counts.

use crate::{Backend, SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::admin::{Counts, RoomInfo, UserInfo, UserRole};
use hearth_core::store::{AdminStore, RoomDeletion};

type UserInfoRow = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<String>,
);

const USER_INFO_COLUMNS: &str = "id, username, email, role, banned_ms, created_ms, avatar_file_id";

fn user_info((id, username, email, role, banned_ms, created_ms, avatar): UserInfoRow) -> UserInfo {
    UserInfo {
        id,
        username,
        email,
        role: UserRole::parse(&role),
        banned_ms,
        created_ms,
        avatar,
    }
}

impl SqlStore {
    async fn count(&self, sql: &'static str) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.read)
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn list_users(&self, prefix: &str, limit: usize) -> Result<Vec<UserInfo>, StoreError> {
        // '!' escapes LIKE's wildcards the same way in SQLite and MySQL.
        let escaped: String = prefix
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '!' | '%' | '_' => vec!['!', c],
                c => vec![c],
            })
            .collect();
        let rows = sqlx::query_as::<_, UserInfoRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_INFO_COLUMNS} FROM users WHERE username_key LIKE ? ESCAPE '!' \
             ORDER BY username_key LIMIT ?"
        )))
        .bind(format!("{escaped}%"))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rows.into_iter().map(user_info).collect())
    }

    async fn user_info(&self, id: i64) -> Result<Option<UserInfo>, StoreError> {
        let row = sqlx::query_as::<_, UserInfoRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_INFO_COLUMNS} FROM users WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(store_error)?;
        Ok(row.map(user_info))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserInfo>, StoreError> {
        let row = sqlx::query_as::<_, UserInfoRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_INFO_COLUMNS} FROM users WHERE username_key = ?"
        )))
        .bind(username.to_lowercase())
        .fetch_optional(&self.read)
        .await
        .map_err(store_error)?;
        Ok(row.map(user_info))
    }

    async fn set_user_role(&self, id: i64, role: UserRole) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET role = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        // MySQL counts only changed rows: setting the role a user has reports 0.
        Ok(done.rows_affected() > 0 || self.user_info(id).await?.is_some())
    }

    async fn set_banned(&self, id: i64, banned_ms: Option<i64>) -> Result<bool, StoreError> {
        // A repeated ban keeps the first date.
        let sql = if banned_ms.is_some() {
            "UPDATE users SET banned_ms = COALESCE(banned_ms, ?) WHERE id = ?"
        } else {
            "UPDATE users SET banned_ms = ? WHERE id = ?"
        };
        let done = sqlx::query(sql)
            .bind(banned_ms)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() > 0 || self.user_info(id).await?.is_some())
    }

    async fn room_infos(&self) -> Result<Vec<RoomInfo>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, String, i64, i64)>(
            "SELECT id, slug, name, last_seq, created_ms FROM conversations \
             WHERE kind = 'room' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(
                |(conversation_id, slug, name, messages, created_ms)| RoomInfo {
                    conversation_id,
                    slug,
                    name,
                    messages,
                    created_ms,
                },
            )
            .collect())
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        // Sequence numbers have no gaps and messages are never deleted one by one, so the sum
        // of every conversation's last seq is the message count, without scanning messages.
        // MySQL's SUM is a DECIMAL, which the Any driver does not read as an integer.
        let messages = match self.backend {
            Backend::Sqlite => "SELECT COALESCE(SUM(last_seq), 0) FROM conversations",
            Backend::MySql => {
                "SELECT CAST(COALESCE(SUM(last_seq), 0) AS SIGNED) FROM conversations"
            }
        };
        Ok(Counts {
            users: self.count("SELECT COUNT(*) FROM users").await?,
            banned_users: self
                .count("SELECT COUNT(*) FROM users WHERE banned_ms IS NOT NULL")
                .await?,
            admins: self
                .count("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .await?,
            rooms: self
                .count("SELECT COUNT(*) FROM conversations WHERE kind = 'room'")
                .await?,
            direct_conversations: self
                .count("SELECT COUNT(*) FROM conversations WHERE kind = 'direct'")
                .await?,
            groups: self
                .count("SELECT COUNT(*) FROM conversations WHERE kind = 'group'")
                .await?,
            messages: self.count(messages).await?,
        })
    }
}

/// [`hearth_core::store::MessageStore::delete_room`]: the room, its messages and whatever
/// hangs off them, in one transaction.
pub(crate) async fn delete_room(
    store: &SqlStore,
    slug: &str,
    force: bool,
) -> Result<RoomDeletion, StoreError> {
    let mut tx = store.begin_write().await?;
    let found = sqlx::query_as::<_, (i64, i64)>(
        "SELECT id, last_seq FROM conversations WHERE kind = 'room' AND slug = ?",
    )
    .bind(slug)
    .fetch_optional(&mut *tx)
    .await
    .map_err(store_error)?;
    let Some((id, last_seq)) = found else {
        return Ok(RoomDeletion::NotFound);
    };
    if last_seq > 0 && !force {
        return Ok(RoomDeletion::HasMessages(last_seq));
    }
    for sql in [
        "DELETE FROM hidden_messages WHERE conversation_id = ?",
        "DELETE FROM members WHERE conversation_id = ?",
        "DELETE FROM join_requests WHERE conversation_id = ?",
        "DELETE FROM transcription_jobs WHERE conversation_id = ?",
        // Search hides a deleted room's hits at once (it is no longer readable); its index
        // entries go at the next rebuild, which reads the feed.
        "DELETE FROM message_feed WHERE conversation_id = ?",
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
    }
    let messages = sqlx::query("DELETE FROM messages WHERE conversation_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?
        .rows_affected();
    let messages = i64::try_from(messages).unwrap_or(i64::MAX);
    // A post may have landed after the check (MySQL runs them in parallel): refuse again
    // rather than delete it unasked. Dropping `tx` rolls back.
    if messages > 0 && !force {
        return Ok(RoomDeletion::HasMessages(messages));
    }
    sqlx::query("DELETE FROM conversations WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
    tx.commit().await.map_err(store_error)?;
    Ok(RoomDeletion::Deleted(messages))
}
