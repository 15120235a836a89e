//! Redis for Hearth's cluster mode.
//!
//! * [`RedisSessions`] — sessions as `SET <prefix>session:<sha256> <user id> EX <ttl> NX`, so
//!   they expire by themselves and every node sees the same ones.
//! * [`StreamCachedRooms`] — one Redis Stream per room holding its recent messages (trimmed
//!   with `MAXLEN ~`), in front of the SQL store that keeps every message durably. Stream
//!   entry ids are the wire message ids (`<ms>-<seq>`), as in the reference chat room.
//! * [`RedisLoginThrottle`] — the per-account login rate and lock-out, shared by every node.
//!
//! Every call is bounded by a response timeout, so a Redis outage turns into a quick
//! "unavailable" error rather than a hung request; the connection manager reconnects on its
//! own when Redis is back.

mod bus;
mod logins;
mod presence;
mod sessions;
mod streams;

pub use bus::RedisBus;
pub use logins::RedisLoginThrottle;
pub use presence::RedisPresence;
pub use sessions::RedisSessions;
pub use streams::StreamCachedRooms;

use hearth_core::StoreError;
use hearth_core::store::Stores;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Cluster mode's stores: `durable` (MySQL) for everything, with sessions moved to Redis and
/// room messages cached in per-room streams of about `stream_max_len` entries.
pub fn cluster_stores(durable: Stores, redis: Redis, stream_max_len: usize) -> Stores {
    Stores {
        sessions: Arc::new(RedisSessions::new(redis.clone())),
        messages: Arc::new(StreamCachedRooms::new(
            durable.messages,
            redis,
            stream_max_len,
        )),
        ..durable
    }
}

/// A shared, self-reconnecting connection plus the key prefix that namespaces one deployment.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
}

impl Redis {
    pub async fn connect(url: &str, prefix: &str) -> Result<Redis, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Redis {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// `<prefix><kind>:<id>`, e.g. `hearth:session:9f86…`.
    pub(crate) fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(store_error)
    }
}

pub(crate) fn store_error(error: redis::RedisError) -> StoreError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        StoreError::Unavailable(format!("redis: {error}"))
    } else {
        StoreError::Backend(format!("redis: {error}"))
    }
}
