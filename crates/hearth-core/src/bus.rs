//! Cross-node fan-out: how what one node stores reaches sockets held by every node.
//!
//! Topics name what a node needs: `user.<id>` for the frames of a user who has a socket on the
//! node, `room.<conversation>` for public rooms (every node with sockets needs every room),
//! and `control` for cache invalidations. A node subscribes to a user's topic when that user's
//! first socket opens there and unsubscribes when the last one closes, so a node receives only
//! what its connected users need.
//!
//! Implementations: Redis pub/sub (cluster default), NATS (`--bus nats://…`), and an
//! in-process loopback for embedded mode. Delivery is at most once and ordered per publisher;
//! what is lost (a subscriber reconnecting, a node dying) is repaired by `seq`: room sockets by
//! the node's resequencer, native clients by syncing.

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Weak;

/// What a node does with what arrives on its subscriptions.
pub trait BusHandler: Send + Sync + 'static {
    fn deliver(&self, topic: &str, payload: Bytes);
    /// The bus connection was lost and re-established: anything published meanwhile may be
    /// missing, so catch up from storage.
    fn reconnected(&self);
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Where incoming messages go. Set once, before the first subscription.
    fn attach(&self, handler: Weak<dyn BusHandler>);
    /// Queues a message; never blocks. Messages from one node arrive in the order published.
    fn publish(&self, topic: String, payload: Bytes);
    /// Counts a subscriber of `topic` on this node; returns once the subscription is in
    /// effect (so nothing published after is missed). Counted: the last `unsubscribe` of a
    /// topic ends it, whatever order concurrent callers' calls complete in.
    async fn subscribe(&self, topic: &str) -> Result<(), crate::StoreError>;
    async fn unsubscribe(&self, topic: &str) -> Result<(), crate::StoreError>;
    /// Whether every message published on this node reaches its handler on this node without
    /// leaving the process (the embedded loopback).
    fn is_local(&self) -> bool {
        false
    }
    /// A round trip to the bus's server that also waits for every publish queued before it
    /// (readiness probes; the admin CLI before it exits). In-process buses are always up.
    async fn ping(&self) -> Result<(), crate::StoreError> {
        Ok(())
    }
}

pub fn user_topic(user: i64) -> String {
    format!("user.{user}")
}

pub fn room_topic(conversation: i64) -> String {
    format!("room.{conversation}")
}

/// Node-to-node instructions, one per message: `members <conversation>` (its membership
/// changed), `relation <user> <user>` (friendship or blocks between them changed) and
/// `revoke-user <user>`.
pub const CONTROL_TOPIC: &str = "control";

/// The `control` message that closes every socket of a user on every node (ban, revocation).
pub fn revoke_user_message(user: i64) -> String {
    format!("revoke-user {user}")
}

/// Where presence lives: this process (embedded) or shared by every node (cluster).
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Records a socket; true if the user was offline everywhere before.
    async fn connected(&self, user: i64, platform: &'static str)
    -> Result<bool, crate::StoreError>;
    /// Forgets a socket; true if the user is now offline everywhere.
    async fn disconnected(
        &self,
        user: i64,
        platform: &'static str,
    ) -> Result<bool, crate::StoreError>;
    /// The platforms the user is connected from, on any live node.
    async fn platforms(&self, user: i64) -> Result<Vec<String>, crate::StoreError>;
    /// Users whose only node stopped heartbeating since the last call: now offline.
    async fn reap(&self) -> Result<Vec<i64>, crate::StoreError> {
        Ok(Vec::new())
    }
}
