//! Sessions in Redis: one key per session, expiring on its own.

use crate::{Redis, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::store::SessionStore;

pub struct RedisSessions {
    redis: Redis,
}

impl RedisSessions {
    pub fn new(redis: Redis) -> Self {
        RedisSessions { redis }
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn insert_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let ttl_ms = (expires_at_ms - hearth_core::now_ms()).max(1);
        let created: Option<String> = redis::cmd("SET")
            .arg(self.redis.key("session", token_hash))
            .arg(user_id)
            .arg("PX")
            .arg(ttl_ms)
            .arg("NX")
            .query_async(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        // NX refusing means a 256-bit random token collided: treat it as the bug it would be.
        created
            .map(drop)
            .ok_or_else(|| StoreError::Backend("session token already exists".into()))
    }

    async fn session_user(
        &self,
        token_hash: &str,
        _now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        redis::cmd("GET")
            .arg(self.redis.key("session", token_hash))
            .query_async(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        redis::cmd("DEL")
            .arg(self.redis.key("session", token_hash))
            .query_async::<i64>(&mut self.redis.conn.clone())
            .await
            .map(drop)
            .map_err(store_error)
    }
}
