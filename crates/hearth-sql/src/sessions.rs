//! Sessions, keyed by token hash, with an expiry checked on every read.

use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::store::SessionStore;
use hearth_core::{StoreError, now_ms};

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        // Expired rows are useless; sweeping them here keeps the table bounded without a timer.
        sqlx::query("DELETE FROM sessions WHERE expires_ms < ?")
            .bind(now_ms())
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_ms) VALUES (?, ?, ?)")
            .bind(token_hash)
            .bind(user_id)
            .bind(expires_at_ms)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar::<_, i64>(
            "SELECT user_id FROM sessions WHERE token_hash = ? AND expires_ms > ?",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.read)
        .await
        .map_err(store_error)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.write)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    async fn count_sessions(&self, now_ms: i64) -> Result<Option<u64>, StoreError> {
        let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions WHERE expires_ms > ?")
            .bind(now_ms)
            .fetch_one(&self.read)
            .await
            .map_err(store_error)?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map(drop)
            .map_err(store_error)
    }
}
