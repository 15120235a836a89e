//! Presence shared by every node, with per-node heartbeats.
//!
//! * `<prefix>node:<id>` — exists while the node is alive (`SET … PX ttl`, refreshed every
//!   third of the ttl); `<prefix>nodes` — the set of node ids;
//! * `<prefix>presence:<user>` — hash `<node>|<platform>` → open sockets;
//! * `<prefix>node-users:<node>` — the users a node has sockets of.
//!
//! A user is online when any field of their hash belongs to a live node. A node killed with
//! `kill -9` stops refreshing its key; within the ttl its users stop counting, and the first
//! node to notice ([`PresenceStore::reap`]) clears its fields and reports who went offline.
//! A node that lost Redis for longer than the ttl re-announces its sockets when it is back.

use crate::{Redis, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::bus::PresenceStore;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct RedisPresence {
    redis: Redis,
    node: String,
    ttl: Duration,
    /// This node's sockets, to re-announce after an outage: (user, platform) → count.
    local: Mutex<HashMap<(i64, &'static str), i64>>,
}

impl RedisPresence {
    /// Registers this node and keeps its heartbeat going for as long as the value lives.
    pub async fn start(redis: Redis, ttl: Duration) -> Result<Arc<RedisPresence>, StoreError> {
        let node = format!("{:016x}", rand_id());
        let presence = Arc::new(RedisPresence {
            redis,
            node,
            ttl,
            local: Mutex::default(),
        });
        presence.beat().await?;
        let weak = Arc::downgrade(&presence);
        tokio::spawn(async move {
            let mut healthy = true;
            loop {
                tokio::time::sleep(ttl / 3).await;
                let Some(presence) = weak.upgrade() else {
                    return;
                };
                match presence.beat().await {
                    Ok(()) if !healthy => {
                        healthy = presence.reannounce().await.is_ok();
                    }
                    Ok(()) => {}
                    Err(error) => {
                        tracing::warn!(%error, "presence heartbeat failed");
                        healthy = false;
                    }
                }
            }
        });
        Ok(presence)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    async fn beat(&self) -> Result<(), StoreError> {
        redis::pipe()
            .cmd("SET")
            .arg(self.redis.key("node", &self.node))
            .arg(1)
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .ignore()
            .cmd("SADD")
            .arg(self.redis.key("nodes", "all"))
            .arg(&self.node)
            .ignore()
            .query_async::<()>(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)
    }

    /// Writes this node's sockets again (after an outage a peer may have reaped them).
    async fn reannounce(&self) -> Result<(), StoreError> {
        let local: Vec<((i64, &'static str), i64)> = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        let mut pipe = redis::pipe();
        for ((user, platform), count) in local {
            pipe.cmd("HSET")
                .arg(self.redis.key("presence", user))
                .arg(self.field(platform))
                .arg(count)
                .ignore()
                .cmd("SADD")
                .arg(self.redis.key("node-users", &self.node))
                .arg(user)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)
    }

    fn field(&self, platform: &str) -> String {
        format!("{}|{platform}", self.node)
    }

    fn count_locally(&self, user: i64, platform: &'static str, delta: i64) -> i64 {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let count = local.entry((user, platform)).or_insert(0);
        *count += delta;
        let now = *count;
        if now <= 0 {
            local.remove(&(user, platform));
        }
        now
    }

    fn has_local_sockets(&self, user: i64) -> bool {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .any(|(u, _)| *u == user)
    }

    /// The user's `(platform, sockets)` on live nodes.
    async fn live(&self, user: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let fields: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.redis.key("presence", user))
            .query_async(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        let nodes: HashSet<&str> = fields.keys().filter_map(|f| f.split('|').next()).collect();
        let mut alive = HashSet::new();
        for node in nodes {
            let exists: i64 = redis::cmd("EXISTS")
                .arg(self.redis.key("node", node))
                .query_async(&mut self.redis.conn.clone())
                .await
                .map_err(store_error)?;
            if exists > 0 {
                alive.insert(node.to_owned());
            }
        }
        Ok(fields
            .into_iter()
            .filter_map(|(field, count)| {
                let (node, platform) = field.split_once('|')?;
                (alive.contains(node) && count > 0).then(|| (platform.to_owned(), count))
            })
            .collect())
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn connected(&self, user: i64, platform: &'static str) -> Result<bool, StoreError> {
        self.count_locally(user, platform, 1);
        redis::pipe()
            .cmd("HINCRBY")
            .arg(self.redis.key("presence", user))
            .arg(self.field(platform))
            .arg(1)
            .ignore()
            .cmd("SADD")
            .arg(self.redis.key("node-users", &self.node))
            .arg(user)
            .ignore()
            .query_async::<()>(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        let sockets: i64 = self.live(user).await?.iter().map(|(_, n)| n).sum();
        Ok(sockets == 1)
    }

    async fn disconnected(&self, user: i64, platform: &'static str) -> Result<bool, StoreError> {
        let left = self.count_locally(user, platform, -1);
        let key = self.redis.key("presence", user);
        let mut pipe = redis::pipe();
        if left <= 0 {
            pipe.cmd("HDEL")
                .arg(&key)
                .arg(self.field(platform))
                .ignore();
        } else {
            pipe.cmd("HSET")
                .arg(&key)
                .arg(self.field(platform))
                .arg(left)
                .ignore();
        }
        if !self.has_local_sockets(user) {
            pipe.cmd("SREM")
                .arg(self.redis.key("node-users", &self.node))
                .arg(user)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        Ok(self.live(user).await?.is_empty())
    }

    async fn platforms(&self, user: i64) -> Result<Vec<String>, StoreError> {
        let mut platforms: Vec<String> =
            self.live(user).await?.into_iter().map(|(p, _)| p).collect();
        platforms.sort();
        platforms.dedup();
        Ok(platforms)
    }

    async fn reap(&self) -> Result<Vec<i64>, StoreError> {
        let nodes_key = self.redis.key("nodes", "all");
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&nodes_key)
            .query_async(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        let mut offline = Vec::new();
        for node in nodes.into_iter().filter(|n| *n != self.node) {
            let alive: i64 = redis::cmd("EXISTS")
                .arg(self.redis.key("node", &node))
                .query_async(&mut self.redis.conn.clone())
                .await
                .map_err(store_error)?;
            if alive > 0 {
                continue;
            }
            // Whoever removes the node from the set does its clean-up, exactly once.
            let claimed: i64 = redis::cmd("SREM")
                .arg(&nodes_key)
                .arg(&node)
                .query_async(&mut self.redis.conn.clone())
                .await
                .map_err(store_error)?;
            if claimed == 0 {
                continue;
            }
            let users_key = self.redis.key("node-users", &node);
            let users: Vec<i64> = redis::cmd("SMEMBERS")
                .arg(&users_key)
                .query_async(&mut self.redis.conn.clone())
                .await
                .map_err(store_error)?;
            for user in users {
                let key = self.redis.key("presence", user);
                let fields: Vec<String> = redis::cmd("HKEYS")
                    .arg(&key)
                    .query_async(&mut self.redis.conn.clone())
                    .await
                    .map_err(store_error)?;
                let dead: Vec<&String> = fields
                    .iter()
                    .filter(|f| f.starts_with(&format!("{node}|")))
                    .collect();
                if !dead.is_empty() {
                    redis::cmd("HDEL")
                        .arg(&key)
                        .arg(dead)
                        .query_async::<i64>(&mut self.redis.conn.clone())
                        .await
                        .map_err(store_error)?;
                }
                if self.live(user).await?.is_empty() {
                    offline.push(user);
                }
            }
            redis::cmd("DEL")
                .arg(&users_key)
                .query_async::<i64>(&mut self.redis.conn.clone())
                .await
                .map_err(store_error)?;
        }
        Ok(offline)
    }
}
