//! NATS as the cross-node bus: subjects `<prefix>.<topic>` (topics are already dotted:
//! `user.42`, `room.7`, `control`).
//!
//! One subscription task per subscribed topic forwards messages to the node's handler; the
//! client publishes in call order on one connection and reconnects by itself, after which the
//! handler is told to catch up from storage.

use async_nats::{Client, ConnectOptions, Event};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use hearth_core::StoreError;
use hearth_core::bus::{Bus, BusHandler};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Handler = Arc<OnceLock<Weak<dyn BusHandler>>>;

/// Per topic: how many local subscribers, and the task forwarding its messages.
type Topics = HashMap<String, (usize, Option<JoinHandle<()>>)>;

/// What the publisher task does, in order.
enum Outgoing {
    Publish(String, Bytes),
    /// Answered once the publishes queued before it reached the server (a PING round trip).
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

pub struct NatsBus {
    client: Client,
    outbox: mpsc::UnboundedSender<Outgoing>,
    prefix: String,
    handler: Handler,
    topics: Mutex<Topics>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("nats: {error}"))
}

impl NatsBus {
    /// `prefix` keeps deployments sharing a NATS server apart (`[A-Za-z0-9_-]`).
    pub async fn connect(url: &str, prefix: &str) -> Result<NatsBus, async_nats::ConnectError> {
        let handler: Handler = Arc::default();
        let events = handler.clone();
        let client = ConnectOptions::new()
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    if let Event::Connected = event
                        && let Some(handler) = events.get().and_then(Weak::upgrade)
                    {
                        handler.reconnected();
                    }
                }
            })
            .connect(url)
            .await?;
        let prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let (outbox, mut queue) = mpsc::unbounded_channel::<Outgoing>();
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some(outgoing) = queue.recv().await {
                match outgoing {
                    Outgoing::Publish(subject, payload) => {
                        if let Err(error) = publisher.publish(subject, payload).await {
                            tracing::warn!(%error, "publishing to NATS failed");
                        }
                    }
                    Outgoing::Flush(done) => {
                        let _ = done.send(publisher.flush().await.map_err(unavailable));
                    }
                }
            }
        });
        Ok(NatsBus {
            client,
            outbox,
            prefix,
            handler,
            topics: Mutex::default(),
        })
    }

    fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.prefix)
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn attach(&self, handler: Weak<dyn BusHandler>) {
        let _ = self.handler.set(handler);
    }

    fn publish(&self, topic: String, payload: Bytes) {
        // One queue, one publisher task: publishes leave in call order.
        let _ = self
            .outbox
            .send(Outgoing::Publish(self.subject(&topic), payload));
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let _ = self.outbox.send(Outgoing::Flush(done));
        answer
            .await
            .map_err(|_| unavailable("the publisher stopped"))?
    }

    async fn subscribe(&self, topic: &str) -> Result<(), StoreError> {
        {
            let mut topics = self.topics();
            let entry = topics.entry(topic.to_owned()).or_insert((0, None));
            entry.0 += 1;
            if entry.0 > 1 {
                return Ok(());
            }
        }
        let result = self.client.subscribe(self.subject(topic)).await;
        let mut subscriber = match result {
            Ok(subscriber) => subscriber,
            Err(error) => {
                let mut topics = self.topics();
                if let Some(entry) = topics.get_mut(topic) {
                    entry.0 -= 1;
                    if entry.0 == 0 {
                        topics.remove(topic);
                    }
                }
                return Err(unavailable(error));
            }
        };
        // The SUBSCRIBE must reach the server before we report it in effect.
        self.client.flush().await.map_err(unavailable)?;
        let handler = self.handler.clone();
        let name = topic.to_owned();
        let task = tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                if let Some(handler) = handler.get().and_then(Weak::upgrade) {
                    handler.deliver(&name, message.payload);
                }
            }
        });
        let mut topics = self.topics();
        match topics.get_mut(topic) {
            Some(entry) if entry.0 > 0 => {
                if let Some(old) = entry.1.replace(task) {
                    old.abort();
                }
            }
            // Unsubscribed while we were subscribing.
            _ => task.abort(),
        }
        Ok(())
    }

    async fn unsubscribe(&self, topic: &str) -> Result<(), StoreError> {
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(topic) {
            entry.0 -= 1;
            if entry.0 == 0
                && let Some((_, task)) = topics.remove(topic)
                && let Some(task) = task
            {
                // Dropping the subscriber unsubscribes it on the server.
                task.abort();
            }
        }
        Ok(())
    }
}
