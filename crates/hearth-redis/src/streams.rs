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
use hearth_core::model::{ChatMessage, MessageId, NewMessage, Room, UserRef};
use hearth_core::store::RoomStore;
use std::sync::Arc;

pub struct StreamCachedRooms {
    durable: Arc<dyn RoomStore>,
    redis: Redis,
    max_len: usize,
}

impl StreamCachedRooms {
    /// `max_len`: roughly how many recent messages each room's stream keeps.
    pub fn new(durable: Arc<dyn RoomStore>, redis: Redis, max_len: usize) -> Self {
        StreamCachedRooms {
            durable,
            redis,
            max_len,
        }
    }

    fn stream_key(&self, room: &Room) -> String {
        self.redis.key("room-messages", room.conversation_id)
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
        room: &Room,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Option<Vec<ChatMessage>>, redis::RedisError> {
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
            .await?;
        let mut page = Vec::with_capacity(entries.len());
        let mut expected = before.map(|id| id.seq - 1);
        for (id, fields) in &entries {
            let Some(message) = parse_entry(id, fields) else {
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

fn parse_entry(id: &str, fields: &[String]) -> Option<ChatMessage> {
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
        seq: seq.parse().ok()?,
        ms: ms.parse().ok()?,
        sender: UserRef {
            id: user_id?,
            username: username?,
        },
        content: content?,
    })
}

#[async_trait]
impl RoomStore for StreamCachedRooms {
    async fn upsert_room(&self, slug: &str, name: &str) -> Result<Room, StoreError> {
        self.durable.upsert_room(slug, name).await
    }

    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.durable.rooms().await
    }

    async fn append_messages(
        &self,
        room: &Room,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        // Redis is the cache in front of SQL: refuse writes while it is unreachable so that
        // an outage is reported instead of silently leaving the stream behind.
        self.redis.ping().await?;
        let stored = self.durable.append_messages(room, messages, now_ms).await?;
        let key = self.stream_key(room);
        if let Err(error) = self.append_to_stream(&key, &stored).await {
            // The messages are durable; only the cache is behind. Drop it so that readers go
            // to SQL until it refills, rather than serve a stream with a hole in it.
            tracing::warn!(%error, room = %room.slug, "XADD failed; dropping the room's stream");
            let dropped = redis::cmd("DEL")
                .arg(&key)
                .query_async::<i64>(&mut self.redis.conn.clone())
                .await;
            if let Err(error) = dropped {
                tracing::warn!(%error, room = %room.slug, "could not drop the room's stream");
            }
        }
        Ok(stored)
    }

    async fn messages_before(
        &self,
        room: &Room,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        match self.cached_page(room, before, limit).await {
            Ok(Some(page)) => Ok(page),
            Ok(None) => self.durable.messages_before(room, before, limit).await,
            Err(error) => Err(store_error(error)),
        }
    }
}
