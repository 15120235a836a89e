//! The domain's data types.

use hearth_proto::room::Message;
pub use hearth_proto::room::MessageId;
pub use hearth_proto::room::UserRef;

/// An account. The password hash never leaves the store except for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
}

impl User {
    pub fn as_ref(&self) -> UserRef {
        UserRef {
            id: self.id,
            username: self.username.clone(),
        }
    }
}

/// What a store needs to create an account. `email` is already normalized (lower case).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
}

/// A public room. `slug` is the id clients use (`"general"`); `conversation_id` is the
/// storage key its messages hang off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub conversation_id: i64,
    pub slug: String,
    pub name: String,
}

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender: UserRef,
    pub content: String,
}

/// A stored message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Position in the conversation: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// Time it was stored, never decreasing along `seq`.
    pub ms: i64,
    pub sender: UserRef,
    pub content: String,
}

impl ChatMessage {
    pub fn id(&self) -> MessageId {
        MessageId {
            ms: self.ms,
            seq: self.seq,
        }
    }

    pub fn to_wire(&self) -> Message {
        Message {
            id: self.id(),
            content: self.content.clone(),
            user: self.sender.clone(),
            timestamp: self.ms,
        }
    }
}
