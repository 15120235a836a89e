//! Public rooms: posting, history and the `hello` snapshot.
//!
//! Each room has one writer task. Posts queue on its channel; the writer drains whatever has
//! queued (up to a bound), stores it in one transaction (group commit: one fsync for many
//! posts), and only then hands the stored messages to the [`RoomEvents`] sink and answers
//! each poster. One writer per room means `seq` order, storage order and broadcast order are
//! the same order, which is what lets a connecting socket de-duplicate by `seq` alone.

use crate::model::{ChatMessage, NewMessage, Room, UserRef};
use crate::store::RoomStore;
use crate::{Limits, StoreError, now_ms};
use hearth_proto::room::MessageId;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Receives every batch of stored messages, per room in `seq` order. Called from the room's
/// writer task: it must not block (the server encodes the frame once and broadcasts it).
pub trait RoomEvents: Send + Sync + 'static {
    fn messages_stored(&self, room: &Room, messages: &[ChatMessage]);
}

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

struct PostRequest {
    messages: Vec<NewMessage>,
    reply: oneshot::Sender<Result<Vec<ChatMessage>, StoreError>>,
}

struct RoomHandle {
    room: Room,
    /// Index in [`RoomHub::rooms`], a cheap key for per-connection state.
    index: usize,
    writer: mpsc::Sender<PostRequest>,
}

pub struct RoomHub {
    store: Arc<dyn RoomStore>,
    limits: Limits,
    rooms: Vec<Arc<RoomHandle>>,
    by_slug: HashMap<String, Arc<RoomHandle>>,
}

/// Posts a writer stores in one transaction at most (each holds ≤ `max_messages_per_frame`).
const MAX_POSTS_PER_COMMIT: usize = 64;
/// Posts that may queue for one room before posters wait for room in the queue.
const WRITER_QUEUE: usize = 1_024;

impl RoomHub {
    /// Makes sure the configured rooms exist, loads every room and starts their writers.
    pub async fn start(
        store: Arc<dyn RoomStore>,
        configured: &[(String, String)],
        limits: Limits,
        events: Arc<dyn RoomEvents>,
    ) -> Result<RoomHub, StoreError> {
        for (slug, name) in configured {
            store.upsert_room(slug, name).await?;
        }
        let mut rooms = Vec::new();
        let mut by_slug = HashMap::new();
        for (index, room) in store.rooms().await?.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(WRITER_QUEUE);
            tokio::spawn(run_writer(room.clone(), store.clone(), events.clone(), rx));
            let handle = Arc::new(RoomHandle {
                room,
                index,
                writer: tx,
            });
            by_slug.insert(handle.room.slug.clone(), handle.clone());
            rooms.push(handle);
        }
        Ok(RoomHub {
            store,
            limits,
            rooms,
            by_slug,
        })
    }

    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.iter().map(|h| &h.room)
    }

    /// The room's position in [`RoomHub::rooms`], stable for the hub's life.
    pub fn room_index(&self, slug: &str) -> Option<usize> {
        self.by_slug.get(slug).map(|h| h.index)
    }

    /// Validates and stores a client's messages; returns them once durably stored (they have
    /// then also been handed to the event sink).
    pub async fn post(
        &self,
        slug: &str,
        sender: &UserRef,
        contents: Vec<String>,
    ) -> Result<Vec<ChatMessage>, RoomError> {
        let handle = self.handle(slug)?;
        if contents.is_empty() {
            return Err(RoomError::NoMessages);
        }
        let max_messages = self.limits.max_messages_per_frame;
        if contents.len() > max_messages {
            return Err(RoomError::TooManyMessages(max_messages));
        }
        let max_chars = self.limits.max_content_chars;
        for (index, content) in contents.iter().enumerate() {
            if content.trim().is_empty() {
                return Err(RoomError::EmptyContent(index));
            }
            if content.chars().count() > max_chars {
                return Err(RoomError::ContentTooLong {
                    index,
                    max: max_chars,
                });
            }
        }
        let messages = contents
            .into_iter()
            .map(|content| NewMessage {
                sender: sender.clone(),
                content,
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("room writer stopped".into());
        handle
            .writer
            .send(PostRequest { messages, reply })
            .await
            .map_err(|_| gone())?;
        Ok(answer.await.map_err(|_| gone())??)
    }

    /// The page of messages strictly older than `before` (by `seq`), newest first.
    pub async fn history(&self, slug: &str, before: MessageId) -> Result<Page, RoomError> {
        let handle = self.handle(slug)?;
        Ok(self.page(&handle.room, Some(before)).await?)
    }

    /// Every room with its newest page, in room order.
    pub async fn snapshot(&self) -> Result<Vec<RoomSnapshot>, StoreError> {
        let mut snapshots = Vec::with_capacity(self.rooms.len());
        for handle in &self.rooms {
            snapshots.push(RoomSnapshot {
                room: handle.room.clone(),
                page: self.page(&handle.room, None).await?,
            });
        }
        Ok(snapshots)
    }

    fn handle(&self, slug: &str) -> Result<&RoomHandle, RoomError> {
        self.by_slug
            .get(slug)
            .map(|h| &**h)
            .ok_or_else(|| RoomError::UnknownRoom(slug.chars().take(64).collect()))
    }

    /// Reads one row more than a page to know whether older messages exist.
    async fn page(&self, room: &Room, before: Option<MessageId>) -> Result<Page, StoreError> {
        let size = self.limits.history_page;
        let mut messages = self.store.messages_before(room, before, size + 1).await?;
        let has_more = messages.len() > size;
        messages.truncate(size);
        Ok(Page { messages, has_more })
    }
}

/// The room's single writer: drain, store once, publish, answer.
async fn run_writer(
    room: Room,
    store: Arc<dyn RoomStore>,
    events: Arc<dyn RoomEvents>,
    mut queue: mpsc::Receiver<PostRequest>,
) {
    let mut posts = Vec::with_capacity(MAX_POSTS_PER_COMMIT);
    while queue.recv_many(&mut posts, MAX_POSTS_PER_COMMIT).await > 0 {
        let counts: Vec<usize> = posts.iter().map(|p| p.messages.len()).collect();
        let batch: Vec<NewMessage> = posts
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.messages))
            .collect();
        match store.append_messages(&room, batch, now_ms()).await {
            Ok(stored) => {
                let mut rest = stored.as_slice();
                for (post, count) in posts.drain(..).zip(counts) {
                    let (mine, tail) = rest.split_at(count.min(rest.len()));
                    rest = tail;
                    events.messages_stored(&room, mine);
                    // The poster may have disconnected; its messages are stored and sent anyway.
                    let _ = post.reply.send(Ok(mine.to_vec()));
                }
            }
            Err(error) => {
                tracing::warn!(room = %room.slug, %error, "storing room messages failed");
                for post in posts.drain(..) {
                    let _ = post.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
