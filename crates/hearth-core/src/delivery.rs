//! How the core hands things to connected clients; the gateway implements it.

use crate::model::{ChatMessage, Room};
use hearth_proto::native::{ImServerFrame, InboxEvent};

/// Pushes to sockets. Implementations encode each frame once and share the bytes between
/// every socket they reach; they never block (a socket that cannot keep up is dropped).
pub trait Deliver: Send + Sync + 'static {
    /// Newly stored room messages, to every socket (the chat-room protocol's `serverMessages`).
    fn room_messages(&self, room: &Room, messages: &[ChatMessage]);
    /// Native frames, in order, to every socket of each of these users; where it can, each
    /// socket gets them in one write.
    fn all_to_users(&self, users: &[i64], frames: &[ImServerFrame]);
    /// One native frame to every socket of each of these users.
    fn to_users(&self, users: &[i64], frame: &ImServerFrame) {
        self.all_to_users(users, std::slice::from_ref(frame));
    }
    /// The membership of a conversation changed: every node must drop what it cached.
    fn members_changed(&self, conversation: i64);
    /// Two users became or stopped being friends, or one blocked or unblocked the other:
    /// every node must drop the send checks it cached for their direct conversation.
    fn relation_changed(&self, a: i64, b: i64);
}

/// Pushes freshly written inbox events to their owners' sockets.
pub fn push_events(deliver: &dyn Deliver, events: Vec<(i64, InboxEvent)>) {
    for (user, event) in events {
        deliver.to_users(&[user], &ImServerFrame::Event(event));
    }
}
