//! Per-room Redis Streams of recent messages in front of the durable SQL store.
//!
//! Writes go to SQL first (that is the commit the poster is acknowledged on), then to the
//! stream with `XADD <key> MAXLEN ~ N <ms>-<seq> …`. Reads page backwards with `XREVRANGE`, as
//! the reference chat room does, but a page is served from the stream only when it is provably
//! complete: its `seq`s run contiguously down from the requested point. Anything else (the
//! stream was trimmed, Redis restarted empty, an `XADD` failed) falls back to SQL, so the cache
//! can make reads fast but never wrong.

use crate::{Redis, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::model::{
    ChatMessage, ConversationKind, ConversationRef, MessageId, MessageKind, NewMessage, Room,
    UserRef,
};
use hearth_core::store::{MessageStore, NewEvent, RoomDeletion};
use hearth_proto::native::InboxEvent;
use std::sync::Arc;

pub struct StreamCachedRooms {
    durable: Arc<dyn MessageStore>,
    redis: Redis,
    max_len: usize,
}

impl StreamCachedRooms {
    /// `max_len`: roughly how many recent messages each room's stream keeps.
    pub fn new(durable: Arc<dyn MessageStore>, redis: Redis, max_len: usize) -> Self {
        StreamCachedRooms {
            durable,
            redis,
            max_len,
        }
    }

    fn stream_key(&self, conversation: &ConversationRef) -> String {
        self.redis.key("room-messages", conversation.id)
    }

    async fn append_to_stream(
        &self,
        key: &str,
        messages: &[ChatMessage],
    ) -> Result<(), redis::RedisError> {
        let mut pipe = redis::pipe();
        for m in messages {
            pipe.cmd("XADD")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg(m.id().to_string())
                .arg("u")
                .arg(m.sender.id)
                .arg("n")
                .arg(&m.sender.username)
                .arg("c")
                .arg(&m.content)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.redis.conn.clone()).await
    }

    /// Reads from the stream; `None` when the stream cannot prove the page complete.
    async fn cached_page(
        &self,
        room: &ConversationRef,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Option<Vec<ChatMessage>>, StoreError> {
        // `(<ms>-<seq>` is exclusive, as in the reference's history paging. The client's id
        // is only trusted as far as the entries prove it: the first one must be `seq - 1`.
        let end = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(self.stream_key(room))
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        // The newest page must start at the room's newest message: a stream that fell behind
        // (a failed XADD whose DEL failed too, an old snapshot) would otherwise hide messages
        // that were already broadcast.
        let mut expected = match before {
            Some(id) => Some(id.seq - 1),
            None if entries.is_empty() => return Ok(None),
            None => Some(self.durable.last_seq(room.id).await?),
        };
        let mut page = Vec::with_capacity(entries.len());
        for (id, fields) in &entries {
            let Some(message) = parse_entry(room.id, id, fields) else {
                return Ok(None);
            };
            if expected.is_some_and(|e| e != message.seq) {
                return Ok(None);
            }
            expected = Some(message.seq - 1);
            page.push(message);
        }
        // A short page is complete only if it reaches the room's first message.
        let complete = page.len() == limit || expected == Some(0);
        Ok(complete.then_some(page))
    }
}

fn parse_entry(conversation_id: i64, id: &str, fields: &[String]) -> Option<ChatMessage> {
    let (ms, seq) = id.split_once('-')?;
    let mut user_id = None;
    let mut username = None;
    let mut content = None;
    for pair in fields.chunks_exact(2) {
        match pair[0].as_str() {
            "u" => user_id = pair[1].parse().ok(),
            "n" => username = Some(pair[1].clone()),
            "c" => content = Some(pair[1].clone()),
            _ => {}
        }
    }
    Some(ChatMessage {
        conversation_id,
        seq: seq.parse().ok()?,
        ms: ms.parse().ok()?,
        sender: UserRef {
            id: user_id?,
            username: username?,
        },
        kind: MessageKind::Text,
        content: content?,
        reply_to: None,
        client_msg_id: None,
        edited_ms: None,
        recalled: false,
        hidden: false,
        // Room messages carry no files.
        file: None,
        transcript: None,
    })
}

#[async_trait]
impl MessageStore for StreamCachedRooms {
    async fn upsert_room(&self, slug: &str, name: &str) -> Result<Room, StoreError> {
        self.durable.upsert_room(slug, name).await
    }

    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.durable.rooms().await
    }

    async fn delete_room(&self, slug: &str, force: bool) -> Result<RoomDeletion, StoreError> {
        let room = self
            .durable
            .rooms()
            .await?
            .into_iter()
            .find(|r| r.slug == slug);
        let deleted = self.durable.delete_room(slug, force).await?;
        if let (RoomDeletion::Deleted(_), Some(room)) = (deleted, room) {
            // Conversation ids are never reused, so a leftover stream would only waste memory.
            redis::cmd("DEL")
                .arg(self.stream_key(&room.conversation()))
                .query_async::<i64>(&mut self.redis.conn.clone())
                .await
                .map_err(store_error)?;
        }
        Ok(deleted)
    }

    async fn last_seq(&self, conversation_id: i64) -> Result<i64, StoreError> {
        self.durable.last_seq(conversation_id).await
    }

    async fn append_messages(
        &self,
        conversation: &ConversationRef,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        if conversation.kind != ConversationKind::Room {
            return self
                .durable
                .append_messages(conversation, messages, now_ms)
                .await;
        }
        // Redis is the cache in front of SQL: refuse writes while it is unreachable so that
        // an outage is reported instead of silently leaving the stream behind.
        self.redis.ping().await?;
        let stored = self
            .durable
            .append_messages(conversation, messages, now_ms)
            .await?;
        let key = self.stream_key(conversation);
        if let Err(error) = self.append_to_stream(&key, &stored).await {
            // The messages are durable; only the cache is behind. Drop it so that readers go
            // to SQL until it refills, rather than serve a stream with a hole in it.
            tracing::warn!(%error, conversation = conversation.id, "XADD failed; dropping the stream");
            let dropped = redis::cmd("DEL")
                .arg(&key)
                .query_async::<i64>(&mut self.redis.conn.clone())
                .await;
            if let Err(error) = dropped {
                tracing::warn!(%error, conversation = conversation.id, "could not drop the stream");
            }
        }
        Ok(stored)
    }

    async fn messages_before(
        &self,
        conversation: &ConversationRef,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        if conversation.kind == ConversationKind::Room
            && let Some(page) = self.cached_page(conversation, before, limit).await?
        {
            return Ok(page);
        }
        self.durable
            .messages_before(conversation, before, limit)
            .await
    }

    async fn sent_messages(
        &self,
        sender: i64,
        client_msg_ids: &[String],
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.durable.sent_messages(sender, client_msg_ids).await
    }

    async fn messages_after(
        &self,
        conversation_id: i64,
        viewer: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.durable
            .messages_after(conversation_id, viewer, after, limit)
            .await
    }

    async fn message(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        self.durable.message(conversation_id, seq).await
    }

    async fn recall(&self, conversation_id: i64, seq: i64) -> Result<bool, StoreError> {
        self.durable.recall(conversation_id, seq).await
    }

    async fn withhold_repeats(&self, conversation_id: i64, seq: i64) -> Result<u64, StoreError> {
        self.durable.withhold_repeats(conversation_id, seq).await
    }

    async fn withheld_seqs(
        &self,
        viewer: i64,
        conversation_id: i64,
        seqs: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        self.durable
            .withheld_seqs(viewer, conversation_id, seqs)
            .await
    }

    async fn edit(
        &self,
        conversation_id: i64,
        seq: i64,
        content: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.durable
            .edit(conversation_id, seq, content, now_ms)
            .await
    }

    async fn hide(
        &self,
        user_id: i64,
        conversation_id: i64,
        seq: i64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError> {
        self.durable
            .hide(user_id, conversation_id, seq, events)
            .await
    }
}
