//! Fan-out: encode once, share the bytes with every socket.
//!
//! [`Gateway`] is the core's [`Deliver`]: room messages go to every socket through the room
//! ring below; native frames go to the recipients' mailboxes ([`Registry`]).
//!
//! The room writer calls [`Fanout::messages_stored`] after each commit, in `seq` order. The
//! `serverMessages` frame is serialized there, once, into reference-counted bytes; every
//! socket's receiver gets a clone of the handle, not a copy of the frame. The channel is a
//! fixed ring (`socket_backlog` entries): a socket that falls further behind than that is told
//! it lagged and is closed, so a slow client costs no memory.

use crate::registry::Registry;
use axum::extract::ws::Utf8Bytes;
use hearth_core::delivery::Deliver;
use hearth_core::model::{ChatMessage, Room};
use hearth_proto::native::ImServerFrame;
use hearth_proto::room::{ServerFrame, ServerMessages};
use std::sync::Arc;
use tokio::sync::broadcast;

/// One stored batch, ready to write to any socket.
#[derive(Clone)]
pub struct Delivery {
    pub conversation_id: i64,
    /// The highest `seq` in the batch; a socket whose `hello` already went past it skips it.
    pub last_seq: i64,
    pub frame: Utf8Bytes,
}

pub struct Fanout {
    tx: broadcast::Sender<Delivery>,
}

impl Fanout {
    pub fn new(backlog: usize) -> Self {
        Fanout {
            tx: broadcast::Sender::new(backlog.max(16)),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.tx.subscribe()
    }
}

pub struct Gateway {
    pub rooms: Fanout,
    pub registry: Arc<Registry>,
}

impl Deliver for Gateway {
    fn room_messages(&self, room: &Room, messages: &[ChatMessage]) {
        self.rooms.messages_stored(room, messages);
    }

    fn to_users(&self, users: &[i64], frame: &ImServerFrame) {
        if users.is_empty() {
            return;
        }
        self.registry.send(users, &frame.to_json().into());
    }
}

impl Fanout {
    fn messages_stored(&self, room: &Room, messages: &[ChatMessage]) {
        let Some(last) = messages.last() else { return };
        let frame = ServerFrame::ServerMessages(ServerMessages {
            room_id: room.slug.clone(),
            messages: messages.iter().map(ChatMessage::to_wire).collect(),
        });
        // No receivers is fine: nobody is connected.
        let _ = self.tx.send(Delivery {
            conversation_id: room.conversation_id,
            last_seq: last.seq,
            frame: frame.to_json().into(),
        });
    }
}
