//! Accounts.

use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::model::{NewUser, User, UserRef};
use hearth_core::store::UserStore;
use hearth_core::{StoreError, now_ms};

type UserRow = (i64, String, String, Option<String>);

/// The columns of a [`UserRow`], in order.
const USER_COLUMNS: &str = "id, username, email, avatar_file_id";

fn user((id, username, email, avatar): UserRow) -> User {
    User {
        id,
        username,
        email,
        avatar,
    }
}

impl SqlStore {
    /// After a unique-index violation: which of the two indexes was it? Asking beats parsing
    /// the two backends' different error messages.
    async fn conflict(&self, new: &NewUser) -> StoreError {
        let taken =
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE username_key = ?")
                .bind(new.username.to_lowercase())
                .fetch_one(&self.read)
                .await;
        match taken {
            Ok(n) if n > 0 => StoreError::UsernameTaken,
            Ok(_) => StoreError::EmailTaken,
            Err(e) => store_error(e),
        }
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, new: NewUser) -> Result<User, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO users (username, username_key, email, password_hash, created_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&new.username)
        .bind(new.username.to_lowercase())
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(now_ms())
        .execute(&self.write)
        .await;
        match inserted {
            // `last_insert_id` is not reported by every driver behind `Any`; the email is
            // unique, so ask for the id by it (on the writer, which has just written it).
            Ok(_) => {
                let id = sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE email = ?")
                    .bind(&new.email)
                    .fetch_one(&self.write)
                    .await
                    .map_err(store_error)?;
                Ok(User {
                    id,
                    username: new.username,
                    email: new.email,
                    avatar: None,
                })
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(self.conflict(&new).await)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn set_username(&self, id: i64, username: &str) -> Result<bool, StoreError> {
        let renamed = sqlx::query("UPDATE users SET username = ?, username_key = ? WHERE id = ?")
            .bind(username)
            .bind(username.to_lowercase())
            .bind(id)
            .execute(&self.write)
            .await;
        match renamed {
            Ok(done) => Ok(done.rows_affected() > 0 || self.user(id).await?.is_some()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::UsernameTaken)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn set_password_hash(&self, id: i64, password_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&self.write)
            .await
            .map(drop)
            .map_err(store_error)
    }

    async fn set_avatar(&self, id: i64, file_id: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET avatar_file_id = ? WHERE id = ?")
            .bind(file_id)
            .bind(id)
            .execute(&self.write)
            .await
            .map(drop)
            .map_err(store_error)
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?");
        let row = sqlx::query_as::<_, (i64, String, String, Option<String>, String)>(
            sqlx::AssertSqlSafe(sql),
        )
        .bind(email)
        .fetch_optional(&self.read)
        .await
        .map_err(store_error)?;
        Ok(row
            .map(|(id, username, email, avatar, hash)| (user((id, username, email, avatar)), hash)))
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<UserRef>, StoreError> {
        // '!' escapes LIKE's wildcards the same way in SQLite and MySQL.
        let escaped: String = prefix
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '!' | '%' | '_' => vec!['!', c],
                c => vec![c],
            })
            .collect();
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, username FROM users WHERE username_key LIKE ? ESCAPE '!' OR email = ? \
             ORDER BY username_key LIMIT ?",
        )
        .bind(format!("{escaped}%"))
        .bind(prefix.to_ascii_lowercase())
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| UserRef { id, username })
            .collect())
    }

    async fn set_last_seen(&self, user_id: i64, ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_seen_ms = ? WHERE id = ?")
            .bind(ms)
            .bind(user_id)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn last_seen(&self, user_id: i64) -> Result<Option<i64>, StoreError> {
        let seen =
            sqlx::query_scalar::<_, Option<i64>>("SELECT last_seen_ms FROM users WHERE id = ?")
                .bind(user_id)
                .fetch_optional(&self.read)
                .await
                .map_err(store_error)?;
        Ok(seen.flatten())
    }

    async fn active_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ? AND banned_ms IS NULL");
        let row = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(user))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map(drop)
            .map_err(store_error)
    }

    async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(user))
    }
}
