//! The embedded mode's in-process bus and presence: one node, nothing shared.

use crate::StoreError;
use crate::bus::{Bus, BusHandler, PresenceStore};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, Weak};

/// Hands every publish straight to this node's handler.
#[derive(Default)]
pub struct LocalBus {
    handler: OnceLock<Weak<dyn BusHandler>>,
}

#[async_trait]
impl Bus for LocalBus {
    fn attach(&self, handler: Weak<dyn BusHandler>) {
        let _ = self.handler.set(handler);
    }

    fn publish(&self, topic: String, payload: Bytes) {
        if let Some(handler) = self.handler.get().and_then(Weak::upgrade) {
            handler.deliver(&topic, payload);
        }
    }

    async fn subscribe(&self, _topic: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn unsubscribe(&self, _topic: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// Per user, the platform of each open socket.
#[derive(Default)]
pub struct LocalPresence {
    sockets: Mutex<HashMap<i64, Vec<&'static str>>>,
}

impl LocalPresence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<&'static str>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl PresenceStore for LocalPresence {
    async fn connected(&self, user: i64, platform: &'static str) -> Result<bool, StoreError> {
        let mut sockets = self.lock();
        let list = sockets.entry(user).or_default();
        list.push(platform);
        Ok(list.len() == 1)
    }

    async fn disconnected(&self, user: i64, platform: &'static str) -> Result<bool, StoreError> {
        let mut sockets = self.lock();
        let Some(list) = sockets.get_mut(&user) else {
            return Ok(false);
        };
        if let Some(i) = list.iter().position(|p| *p == platform) {
            list.swap_remove(i);
        }
        let empty = list.is_empty();
        if empty {
            sockets.remove(&user);
        }
        Ok(empty)
    }

    async fn platforms(&self, user: i64) -> Result<Vec<String>, StoreError> {
        let mut platforms: Vec<String> = self
            .lock()
            .get(&user)
            .into_iter()
            .flatten()
            .map(|p| (*p).to_owned())
            .collect();
        platforms.sort();
        platforms.dedup();
        Ok(platforms)
    }
}
