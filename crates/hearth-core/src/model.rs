//! The domain's data types.

pub use hearth_proto::native::{ConversationKind, MessageKind, Role};
use hearth_proto::native::{FileRef, ImMessage, global_message_id};
use hearth_proto::room::Message;
pub use hearth_proto::room::MessageId;
pub use hearth_proto::room::UserRef;

/// An account. The password hash never leaves the store except for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// The id of the image file shown as the user's avatar, if they chose one.
    pub avatar: Option<String>,
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

/// Which conversation, and what kind: enough to store into it and route what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRef {
    pub id: i64,
    pub kind: ConversationKind,
}

impl Room {
    pub fn conversation(&self) -> ConversationRef {
        ConversationRef {
            id: self.conversation_id,
            kind: ConversationKind::Room,
        }
    }
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: i64,
    pub kind: ConversationKind,
    /// Room slug; `None` for direct and group conversations.
    pub slug: Option<String>,
    pub name: String,
    pub owner_id: Option<i64>,
    pub dissolved: bool,
    pub last_seq: i64,
    /// `"<low user id>:<high user id>"` for direct conversations.
    pub direct_key: Option<String>,
}

impl Conversation {
    /// The other user of a direct conversation.
    pub fn direct_peer(&self, me: i64) -> Option<i64> {
        let (a, b) = self.direct_key.as_deref()?.split_once(':')?;
        let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
        Some(if a == me { b } else { a })
    }

    pub fn as_ref(&self) -> ConversationRef {
        ConversationRef {
            id: self.id,
            kind: self.kind,
        }
    }
}

/// A user's membership of a direct or group conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: UserRef,
    pub role: Role,
    /// Messages up to this `seq` predate the membership and are not the member's to read.
    pub joined_seq: i64,
    pub read_seq: i64,
    /// Up to where one of the member's devices has received (never behind `read_seq`).
    pub delivered_seq: i64,
}

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender: UserRef,
    pub kind: MessageKind,
    pub content: String,
    pub reply_to: Option<i64>,
    /// The sender's id for this send; a retry with the same id is the same message.
    pub client_msg_id: Option<String>,
    /// The upload it carries (image, file and voice messages), already checked readable.
    pub file: Option<FileRef>,
}

impl NewMessage {
    pub fn text(sender: UserRef, content: String) -> NewMessage {
        NewMessage {
            sender,
            kind: MessageKind::Text,
            content,
            reply_to: None,
            client_msg_id: None,
            file: None,
        }
    }
}

/// The upload a stored message references: its id, and its description once looked up
/// (messages read from storage carry only the id until [`crate::messaging`] fills it in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: String,
    /// Boxed: keeps every message small, most carry no file.
    pub meta: Option<Box<FileRef>>,
}

/// A stored message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub conversation_id: i64,
    /// Position in the conversation: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// Time it was stored, never decreasing along `seq`.
    pub ms: i64,
    pub sender: UserRef,
    pub kind: MessageKind,
    pub content: String,
    pub reply_to: Option<i64>,
    pub client_msg_id: Option<String>,
    pub edited_ms: Option<i64>,
    pub recalled: bool,
    /// Deleted by the viewing user for themselves (only set on reads for a viewer).
    pub hidden: bool,
    pub file: Option<Attachment>,
    /// What a voice message says, once transcribed.
    pub transcript: Option<String>,
}

/// System events that repeat another message's words: an `edited` event carries the new
/// `content`, a `transcribed` event what the voice message says (`text`). When that message is
/// recalled (for everyone) or hidden (for one viewer), the repeat is withheld with it.
const REPEATING_EVENTS: [(&str, &str); 2] = [("edited", "content"), ("transcribed", "text")];

/// The event's `seq` and the key holding the words it repeats, if it is such an event.
fn repeated_words(event: &serde_json::Value) -> Option<(i64, &'static str)> {
    let name = event.get("event")?.as_str()?;
    let (_, key) = REPEATING_EVENTS.iter().find(|(e, _)| *e == name)?;
    Some((event.get("seq")?.as_i64()?, *key))
}

/// The seq of the message whose words the system message `content` repeats, if any.
pub fn repeats_seq(content: &str) -> Option<i64> {
    let event: serde_json::Value = serde_json::from_str(content).ok()?;
    repeated_words(&event).map(|(seq, _)| seq)
}

/// The system message `content` without the words it repeats; `None` if it repeats none.
pub fn without_repeated_words(content: &str) -> Option<String> {
    let mut event: serde_json::Value = serde_json::from_str(content).ok()?;
    let (_, key) = repeated_words(&event)?;
    event.as_object_mut()?.remove(key)?;
    Some(event.to_string())
}

impl ChatMessage {
    /// The seq whose words this message repeats (an `edited` or `transcribed` event).
    pub fn repeats(&self) -> Option<i64> {
        if self.kind != MessageKind::System {
            return None;
        }
        repeats_seq(&self.content)
    }

    /// Drops the repeated words, when the message they came from is withheld from the viewer.
    pub fn withhold_repeated_words(&mut self) {
        if let Some(content) = without_repeated_words(&self.content) {
            self.content = content;
        }
    }

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

    /// The native form; recalled and hidden messages keep their place without content.
    pub fn to_native(&self) -> ImMessage {
        let withheld = self.recalled || self.hidden;
        ImMessage {
            id: global_message_id(self.conversation_id, self.seq),
            conversation_id: self.conversation_id,
            seq: self.seq,
            sender: self.sender.clone(),
            kind: self.kind,
            content: if withheld {
                String::new()
            } else {
                self.content.clone()
            },
            reply_to: self.reply_to,
            client_msg_id: self.client_msg_id.clone(),
            timestamp: self.ms,
            edited_at: self.edited_ms,
            recalled: self.recalled,
            hidden: self.hidden,
            file: if withheld {
                None
            } else {
                self.file.as_ref().and_then(|f| f.meta.clone())
            },
            transcript: if withheld {
                None
            } else {
                self.transcript.clone()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_and_transcripts_repeat_words_that_can_be_withheld() {
        let edited = r#"{"content":"my password is hunter3","event":"edited","seq":12}"#;
        assert_eq!(repeats_seq(edited), Some(12));
        assert_eq!(
            without_repeated_words(edited).as_deref(),
            Some(r#"{"event":"edited","seq":12}"#)
        );
        let transcribed = r#"{"event":"transcribed","seq":3,"text":"call me"}"#;
        assert_eq!(repeats_seq(transcribed), Some(3));
        assert_eq!(
            without_repeated_words(transcribed).as_deref(),
            Some(r#"{"event":"transcribed","seq":3}"#)
        );
    }

    #[test]
    fn other_events_repeat_nothing() {
        for content in [
            r#"{"event":"recalled","seq":4}"#,
            r#"{"event":"joined","userIds":[2]}"#,
            r#"{"event":"edited","seq":"4","content":"x"}"#,
            r#"{"event":"edited","seq":4}"#,
            "not json",
            "[]",
        ] {
            assert_eq!(without_repeated_words(content), None, "{content}");
        }
        assert_eq!(repeats_seq(r#"{"event":"recalled","seq":4}"#), None);
    }
}
