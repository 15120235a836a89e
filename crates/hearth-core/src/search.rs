//! What full-text search reads from storage. The index itself lives in `hearth-search`; the
//! core only names the reads so that backends can serve them without knowing about the index.
//!
//! Every stored message also gets a row in a *feed* (an auto-increment id written in the same
//! transaction as the message). Each node tails the feed into its own local index, so every
//! node indexes the same messages whichever node stored them, and a node that was down or
//! whose index was lost catches up from the database alone.

use crate::StoreError;
use crate::model::{ChatMessage, UserRef};
use async_trait::async_trait;

/// One feed row and the message it points at, as stored now (edits and recalls applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub id: i64,
    pub message: ChatMessage,
}

/// A conversation a user may read, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable {
    pub conversation_id: i64,
    /// Messages up to this `seq` are not the user's to read (0 for rooms).
    pub joined_seq: i64,
    /// The room's id for clients (`"general"`); `None` for direct and group conversations.
    pub room: Option<String>,
}

#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Feed entries with `id > after`, in id order, at most `limit`.
    async fn feed_after(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>, StoreError>;
    /// The feed entries among `ids` that exist (now).
    async fn feed_entries(&self, ids: &[i64]) -> Result<Vec<FeedEntry>, StoreError>;
    /// The newest feed id (0 if the feed is empty).
    async fn feed_head(&self) -> Result<i64, StoreError>;
    /// The messages with these `(conversation_id, seq)` keys, as `viewer` sees them (`hidden`
    /// set if they deleted it for themselves); missing keys are left out, order is unspecified.
    async fn messages_by_key(
        &self,
        viewer: i64,
        keys: &[(i64, i64)],
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// What `user` may read, exactly as pulls and room history allow: every room, and each
    /// direct or group conversation they are a member of now (not dissolved), after their
    /// `joined_seq`.
    async fn readable(&self, user: i64) -> Result<Vec<Readable>, StoreError>;
    /// Users whose username starts with `username_prefix` (case-insensitively), or whose
    /// email starts with `email_prefix` when one is given; at most `limit`, by username.
    async fn find_users(
        &self,
        username_prefix: &str,
        email_prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserRef>, StoreError>;
}
