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
}
