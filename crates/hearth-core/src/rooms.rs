//! Public rooms: posting, history and the `hello` snapshot of the chat-room protocol.
//!
//! Rooms are conversations like any other: their messages go through the same
//! [`Writers`](crate::writer::Writers), so `seq` order, storage order and broadcast order are
//! one order, which is what lets a connecting socket de-duplicate by `seq` alone.

use crate::model::{ChatMessage, NewMessage, Room, UserRef};
use crate::store::MessageStore;
use crate::validate::{TextProblem, readable_text};
use crate::writer::Writers;
use crate::{Limits, StoreError};
use hearth_proto::room::MessageId;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("no room with id {0:?}")]
    UnknownRoom(String),
    #[error("a frame must carry at least one message")]
    NoMessages,
    #[error("at most {0} messages per frame")]
    TooManyMessages(usize),
    #[error("message {0} is empty")]
    EmptyContent(usize),
    #[error("message {0} holds control characters other than tabs and line breaks")]
    ControlCharacters(usize),
    #[error("message {index} is longer than {max} characters")]
    ContentTooLong { index: usize, max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of a room's messages, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<ChatMessage>,
    pub has_more: bool,
}

/// A room and its messages as one client sees them at connect.
#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    pub room: Room,
    pub page: Page,
}

impl RoomSnapshot {
    /// The highest `seq` the snapshot includes (0 for an empty room). Live batches at or below
    /// it are already in the snapshot.
    pub fn last_seq(&self) -> i64 {
        self.page.messages.first().map_or(0, |m| m.seq)
    }
}

pub struct RoomHub {
    store: Arc<dyn MessageStore>,
    writers: Arc<Writers>,
    limits: Limits,
    rooms: Vec<Room>,
    by_slug: HashMap<String, usize>,
}

impl RoomHub {
    /// Makes sure the configured rooms exist and loads every room.
    pub async fn start(
        store: Arc<dyn MessageStore>,
        writers: Arc<Writers>,
        configured: &[(String, String)],
        limits: Limits,
    ) -> Result<RoomHub, StoreError> {
        for (slug, name) in configured {
            store.upsert_room(slug, name).await?;
        }
        let rooms = store.rooms().await?;
        let by_slug = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.slug.clone(), i))
            .collect();
        Ok(RoomHub {
            store,
            writers,
            limits,
            rooms,
            by_slug,
        })
    }

    pub fn rooms(&self) -> &[Room] {
        &self.rooms
    }

    pub fn is_room(&self, conversation_id: i64) -> bool {
        self.rooms
            .iter()
            .any(|r| r.conversation_id == conversation_id)
    }

    /// Validates and stores a client's messages; returns them once durably stored (they have
    /// then also been handed to the event sink).
    pub async fn post(
        &self,
        slug: &str,
        sender: &UserRef,
        contents: Vec<String>,
    ) -> Result<Vec<ChatMessage>, RoomError> {
        let room = self.room(slug)?;
        if contents.is_empty() {
            return Err(RoomError::NoMessages);
        }
        let max_messages = self.limits.max_messages_per_frame;
        if contents.len() > max_messages {
            return Err(RoomError::TooManyMessages(max_messages));
        }
        let max_chars = self.limits.max_content_chars;
        for (index, content) in contents.iter().enumerate() {
            readable_text(content, max_chars, false).map_err(|problem| match problem {
                TextProblem::Blank => RoomError::EmptyContent(index),
                TextProblem::StrayControls => RoomError::ControlCharacters(index),
                TextProblem::TooLong => RoomError::ContentTooLong {
                    index,
                    max: max_chars,
                },
            })?;
        }
        let messages = contents
            .into_iter()
            .map(|content| NewMessage::text(sender.clone(), content))
            .collect();
        Ok(self.writers.append(&room.conversation(), messages).await?)
    }

    /// The page of messages strictly older than `before` (by `seq`), newest first.
    pub async fn history(&self, slug: &str, before: MessageId) -> Result<Page, RoomError> {
        let room = self.room(slug)?;
        Ok(self.page(room, Some(before)).await?)
    }

    /// Every room with its newest page, in room order.
    pub async fn snapshot(&self) -> Result<Vec<RoomSnapshot>, StoreError> {
        let mut snapshots = Vec::with_capacity(self.rooms.len());
        for room in &self.rooms {
            snapshots.push(RoomSnapshot {
                room: room.clone(),
                page: self.page(room, None).await?,
            });
        }
        Ok(snapshots)
    }

    fn room(&self, slug: &str) -> Result<&Room, RoomError> {
        self.by_slug
            .get(slug)
            .map(|&i| &self.rooms[i])
            .ok_or_else(|| RoomError::UnknownRoom(slug.chars().take(64).collect()))
    }

    /// Reads one row more than a page to know whether older messages exist.
    async fn page(&self, room: &Room, before: Option<MessageId>) -> Result<Page, StoreError> {
        let size = self.limits.history_page;
        let mut messages = self
            .store
            .messages_before(&room.conversation(), before, size + 1)
            .await?;
        let has_more = messages.len() > size;
        messages.truncate(size);
        Ok(Page { messages, has_more })
    }
}
