//! The storage traits. Backends implement them; services depend only on them.

use crate::StoreError;
use crate::model::{ChatMessage, NewMessage, NewUser, Room, User};
use async_trait::async_trait;
use hearth_proto::room::MessageId;
use std::sync::Arc;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account; `UsernameTaken` / `EmailTaken` if either is in use (enforced by a
    /// unique index, so concurrent sign-ups cannot both win).
    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError>;
    /// The account with this (normalized) email and its password hash.
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>, StoreError>;
    async fn user(&self, id: i64) -> Result<Option<User>, StoreError>;
}

/// Sessions are keyed by the SHA-256 of the token; the token itself is never stored.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;
    /// The session's user if the session exists and has not expired at `now_ms`.
    async fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<i64>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Creates the room, or renames it if the slug exists.
    async fn upsert_room(&self, slug: &str, name: &str) -> Result<Room, StoreError>;
    /// Every room, oldest first.
    async fn rooms(&self) -> Result<Vec<Room>, StoreError>;
    /// Stores `messages` atomically (all or none), giving them the next `seq`s in order and a
    /// time `max(now_ms, the room's last time)`. Returns them as stored, in the same order.
    async fn append_messages(
        &self,
        room: &Room,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Up to `limit` messages with `seq < before.seq` (the newest if `None`), newest first.
    /// `before` is what a client sent: its `seq` decides; its `ms` is only a hint.
    async fn messages_before(
        &self,
        room: &Room,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;
}

/// The set of stores a node runs on, chosen at start-up.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub rooms: Arc<dyn RoomStore>,
}
