//! Redis pub/sub as the cross-node bus.
//!
//! One RESP3 connection both publishes and subscribes; pushed messages go straight to the
//! node's handler. Every operation is queued to one task, in call order: publishes are
//! pipelined in batches (one round trip for a burst), and subscription counts change under the
//! same lock that queues the command, so SUBSCRIBE and UNSUBSCRIBE reach Redis in the order
//! the counts changed. After a reconnect the connection manager resubscribes by itself and the
//! handler is told to catch up.

use crate::store_error;
use async_trait::async_trait;
use bytes::Bytes;
use hearth_core::StoreError;
use hearth_core::bus::{Bus, BusHandler};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

enum Command {
    Publish(String, Bytes),
    Subscribe(String, oneshot::Sender<Result<(), StoreError>>),
    Unsubscribe(String, oneshot::Sender<Result<(), StoreError>>),
    /// Answered after the publishes queued before it went out.
    Ping(oneshot::Sender<Result<(), StoreError>>),
}

type Handler = Arc<OnceLock<Weak<dyn BusHandler>>>;

pub struct RedisBus {
    commands: mpsc::UnboundedSender<Command>,
    counts: Mutex<HashMap<String, usize>>,
    handler: Handler,
}

/// Most publishes sent in one pipeline.
const BATCH: usize = 512;

impl RedisBus {
    /// Connects; channel names are `<prefix>bus.<topic>` so deployments sharing a Redis do not
    /// hear each other.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBus, redis::RedisError> {
        let info = url.into_connection_info()?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let handler: Handler = Arc::default();
        let channel_prefix = format!("{prefix}bus.");
        let pushes = {
            let handler = handler.clone();
            let channel_prefix = channel_prefix.clone();
            move |push: PushInfo| {
                on_push(&handler, &channel_prefix, push);
                Ok::<(), redis::aio::SendError>(())
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_millis(500))
            .set_push_sender(pushes)
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx, channel_prefix));
        Ok(RedisBus {
            commands: tx,
            counts: Mutex::default(),
            handler,
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn wait(rx: oneshot::Receiver<Result<(), StoreError>>) -> Result<(), StoreError> {
        rx.await
            .map_err(|_| StoreError::Unavailable("bus stopped".into()))?
    }
}

fn on_push(handler: &Handler, channel_prefix: &str, push: PushInfo) {
    let Some(handler) = handler.get().and_then(Weak::upgrade) else {
        return;
    };
    match push.kind {
        PushKind::Message => {
            let mut data = push.data.into_iter();
            let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                return;
            };
            let channel = match channel {
                Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Value::SimpleString(s) => s,
                _ => return,
            };
            let Some(topic) = channel.strip_prefix(channel_prefix) else {
                return;
            };
            if let Value::BulkString(bytes) = payload {
                handler.deliver(topic, Bytes::from(bytes));
            }
        }
        PushKind::Disconnection => {
            // Resubscription happens on the next command; give it a moment, then catch up.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                handler.reconnected();
            });
        }
        _ => {}
    }
}

async fn run(
    mut conn: ConnectionManager,
    mut commands: mpsc::UnboundedReceiver<Command>,
    channel_prefix: String,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while commands.recv_many(&mut batch, BATCH).await > 0 {
        let mut publishes = redis::pipe();
        let mut pending = 0;
        for command in batch.drain(..) {
            let (subscribe, topic, done) = match command {
                Command::Publish(topic, payload) => {
                    publishes
                        .cmd("PUBLISH")
                        .arg(format!("{channel_prefix}{topic}"))
                        .arg(payload.as_ref())
                        .ignore();
                    pending += 1;
                    continue;
                }
                Command::Subscribe(topic, done) => (true, topic, done),
                Command::Unsubscribe(topic, done) => (false, topic, done),
                Command::Ping(done) => {
                    flush(&mut conn, &mut publishes, &mut pending).await;
                    let pong = redis::cmd("PING").query_async::<Value>(&mut conn).await;
                    let _ = done.send(pong.map(drop).map_err(store_error));
                    continue;
                }
            };
            // Keep order: the publishes queued before this command go first.
            flush(&mut conn, &mut publishes, &mut pending).await;
            let channel = format!("{channel_prefix}{topic}");
            let result = if subscribe {
                conn.subscribe(&channel).await
            } else {
                conn.unsubscribe(&channel).await
            };
            let _ = done.send(result.map_err(store_error));
        }
        flush(&mut conn, &mut publishes, &mut pending).await;
    }
}

async fn flush(conn: &mut ConnectionManager, publishes: &mut redis::Pipeline, pending: &mut usize) {
    if *pending == 0 {
        return;
    }
    if let Err(error) = publishes.query_async::<()>(conn).await {
        // At-most-once: subscribers repair from storage by seq.
        tracing::warn!(%error, count = *pending, "publishing to the bus failed");
    }
    *publishes = redis::pipe();
    *pending = 0;
}

#[async_trait]
impl Bus for RedisBus {
    fn attach(&self, handler: Weak<dyn BusHandler>) {
        let _ = self.handler.set(handler);
    }

    fn publish(&self, topic: String, payload: Bytes) {
        let _ = self.commands.send(Command::Publish(topic, payload));
    }

    async fn subscribe(&self, topic: &str) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        {
            let mut counts = self.counts();
            let count = counts.entry(topic.to_owned()).or_insert(0);
            *count += 1;
            if *count > 1 {
                return Ok(());
            }
            let _ = self
                .commands
                .send(Command::Subscribe(topic.to_owned(), done));
        }
        let result = Self::wait(wait).await;
        if result.is_err() {
            // Not subscribed after all: the caller fails and will not unsubscribe.
            let mut counts = self.counts();
            if let Some(count) = counts.get_mut(topic) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(topic);
                }
            }
        }
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let _ = self.commands.send(Command::Ping(done));
        Self::wait(wait).await
    }

    async fn unsubscribe(&self, topic: &str) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        {
            let mut counts = self.counts();
            match counts.get_mut(topic) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    return Ok(());
                }
                Some(_) => {
                    counts.remove(topic);
                }
                None => return Ok(()),
            }
            let _ = self
                .commands
                .send(Command::Unsubscribe(topic.to_owned(), done));
        }
        Self::wait(wait).await
    }
}
