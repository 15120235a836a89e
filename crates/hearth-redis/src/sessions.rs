//! Sessions in Redis: one key per session, expiring on its own, and per user the set of their
//! session hashes (`user-sessions:<id>`, expiring with the newest session) so that all of a
//! user's sessions can be revoked at once.

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
        let user_sessions = self.redis.key("user-sessions", user_id);
        // Every session has the same lifetime, so the newest one's expiry covers the set.
        let (created,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(self.redis.key("session", token_hash))
            .arg(user_id)
            .arg("PX")
            .arg(ttl_ms)
            .arg("NX")
            .cmd("SADD")
            .arg(&user_sessions)
            .arg(token_hash)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&user_sessions)
            .arg(ttl_ms)
            .ignore()
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

    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        let user_sessions = self.redis.key("user-sessions", user_id);
        let mut conn = self.redis.conn.clone();
        let hashes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&user_sessions)
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        let mut deleted = 0;
        if !hashes.is_empty() {
            let keys: Vec<String> = hashes
                .iter()
                .map(|h| self.redis.key("session", h))
                .collect();
            deleted = redis::cmd("DEL")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await
                .map_err(store_error)?;
        }
        redis::cmd("DEL")
            .arg(&user_sessions)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(deleted)
    }

    /// Counted with `SCAN` (incremental, never blocks Redis): for the admin's `stats`, not
    /// for anything frequent.
    async fn count_sessions(&self, _now_ms: i64) -> Result<Option<u64>, StoreError> {
        let pattern = self.redis.key("session", "*");
        let mut conn = self.redis.conn.clone();
        let mut cursor: u64 = 0;
        let mut count: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(store_error)?;
            count += keys.len() as u64;
            if next == 0 {
                return Ok(Some(count));
            }
            cursor = next;
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }
}
