//! The native instant-messaging protocol: direct and group conversations with per-conversation
//! sequence numbers, acknowledged sends, sync, receipts, typing and presence.
//!
//! It shares the `/api/ws` socket and the `{"type", "payload"}` envelope with the chat-room
//! protocol ([`crate::room`]); request/response operations (friends, groups, pulls) are HTTP.

use serde::{Deserialize, Serialize};

use crate::room::UserRef;

/// `Deserialize` for a plain enum from its name, a JSON string, only (serde's derive would also
/// take `{"name": null}`).
macro_rules! from_name {
    ($ty:ident, [$($name:literal),*]) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $ty::parse(&name)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&name, &[$($name),*]))
            }
        }
    };
}

/// The kinds of message. Clients send `text`, `image`, `file` and `voice` (the last three
/// reference an upload); `system` messages are written by the server (joins, leaves, role
/// changes, recalls, edits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    Image,
    File,
    Voice,
    System,
}

from_name!(MessageKind, ["text", "image", "file", "voice", "system"]);

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::File => "file",
            MessageKind::Voice => "voice",
            MessageKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<MessageKind> {
        Some(match s {
            "text" => MessageKind::Text,
            "image" => MessageKind::Image,
            "file" => MessageKind::File,
            "voice" => MessageKind::Voice,
            "system" => MessageKind::System,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Room,
    Direct,
    Group,
}

from_name!(ConversationKind, ["room", "direct", "group"]);

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Room => "room",
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<ConversationKind> {
        Some(match s {
            "room" => ConversationKind::Room,
            "direct" => ConversationKind::Direct,
            "group" => ConversationKind::Group,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

from_name!(Role, ["member", "admin", "owner"]);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "member" => Role::Member,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            _ => return None,
        })
    }
}

/// A stored message as native clients see it.
///
/// `id` is global: `conversationId * 2^32 + seq`, as a decimal string (it exceeds what a
/// JavaScript number holds exactly). A recalled message keeps its place with empty content;
/// a message the viewer deleted for themselves keeps its place with `hidden: true` and no
/// content, so `seq` stays contiguous for every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImMessage {
    pub id: String,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender: UserRef,
    pub kind: MessageKind,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub recalled: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub hidden: bool,
    /// The upload an `image`, `file` or `voice` message carries (`content` is its caption).
    /// Absent on other kinds and on recalled or hidden messages.
    /// Boxed: most messages have none, and frames stay small.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<Box<FileRef>>,
    /// What a `voice` message says, once the offline transcriber has heard it (it also
    /// arrives later as a `transcribed` system message).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transcript: Option<String>,
}

/// An uploaded file as a message shows it: enough to render it and to fetch it from
/// `/api/files/{id}` (and `/api/files/{id}/thumbnail` when `hasThumbnail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRef {
    /// 32 lowercase hex digits (128 random bits).
    pub id: String,
    pub name: String,
    /// Bytes.
    pub size: i64,
    pub content_type: String,
    /// Pixels; only for images (PNG, JPEG, GIF, WebP, recognized by their bytes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub width: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub height: Option<i64>,
    pub has_thumbnail: bool,
}

/// Everything about an upload: what `POST /api/files` answers and `GET /api/files/{id}/meta`
/// returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    #[serde(flatten)]
    pub file: FileRef,
    /// SHA-256 of the bytes, lowercase hex; also the download's `ETag`.
    pub sha256: String,
    pub uploader_id: i64,
    pub created_at: i64,
}

/// The global id of message `seq` of conversation `conversation_id`.
pub fn global_message_id(conversation_id: i64, seq: i64) -> String {
    ((conversation_id << 32) + seq).to_string()
}

/// What the server answers a send with, once the message is durably stored. A retried send
/// with the same `clientMsgId` gets the same ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub client_msg_id: String,
    pub conversation_id: i64,
    pub id: String,
    pub seq: i64,
    pub timestamp: i64,
}

/// One conversation's sync state for the requesting user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState {
    pub id: i64,
    pub kind: ConversationKind,
    /// Group name; for a direct conversation, the other user's name.
    pub name: String,
    /// For direct conversations, the other user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<UserRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The newest `seq` in the conversation.
    pub last_seq: i64,
    /// Messages up to this `seq` were there before the user joined: not theirs to read.
    pub joined_seq: i64,
    /// The user's read position.
    pub read_seq: i64,
    pub unread: i64,
    pub last_activity: i64,
}

/// An entry of a user's inbox: notifications about friends, groups and their own devices,
/// numbered per user so an offline device catches up on all it missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxEvent {
    pub seq: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    pub conversations: Vec<ConversationState>,
    /// Inbox events after the requested position, oldest first, at most one page.
    pub inbox: Vec<InboxEvent>,
    /// The newest inbox `seq`; if it is past the last event returned, pull more.
    pub inbox_seq: i64,
}

/// A member's position moved: in a `receipt`, how far they have read; in a `delivery`, how far
/// their devices have received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub conversation_id: i64,
    pub user_id: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub conversation_id: i64,
    pub user_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub user_id: i64,
    pub online: bool,
    /// When the user was last connected (ms), if ever and not now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    /// The kinds of device connected now (`web`, `android`, `ios`, `desktop`).
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// A user's name or picture changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub user_id: i64,
    pub username: String,
    /// The version of their picture (the image's file id; `null`: the generated one), which
    /// a client puts in the picture's URL to fetch it afresh.
    pub avatar: Option<String>,
}

/// Native frames the server pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "camelCase")]
pub enum ImServerFrame {
    /// A new message in one of the user's conversations (sent to every device of every member,
    /// the sender's included).
    Message(ImMessage),
    Ack(Ack),
    SyncState(SyncState),
    Event(InboxEvent),
    /// A member read up to `seq`.
    Receipt(Receipt),
    /// A member's device received up to `seq` (direct conversations and small groups).
    Delivery(Receipt),
    Typing(Typing),
    Presence(Presence),
    /// A friend (or the user, on another device) changed their name or picture.
    Profile(Profile),
}

impl ImServerFrame {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","payload":{"code":"internal","message":"encoding failed"}}"#.into()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Send {
    pub conversation_id: i64,
    pub client_msg_id: String,
    #[serde(default = "text_kind")]
    pub kind: MessageKind,
    pub content: String,
    #[serde(default)]
    pub reply_to: Option<i64>,
    /// The upload an `image`, `file` or `voice` message carries; never on `text`.
    #[serde(default)]
    pub file_id: Option<String>,
}

/// Ids a client may choose for its sends: 1–64 printable ASCII characters.
pub fn valid_client_msg_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic())
}

fn text_kind() -> MessageKind {
    MessageKind::Text
}

/// A position in a conversation the client reports: read up to `seq` (`read`), or received
/// up to `seq` (`delivered`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Read {
    pub conversation_id: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypingRequest {
    pub conversation_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequest {
    /// The highest inbox `seq` this device has processed (0 for a new device).
    #[serde(default)]
    pub inbox_after: i64,
}

/// HTTP bodies of the native API.
pub mod http {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct FriendRequestBody {
        pub user_id: i64,
        #[serde(default)]
        pub note: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct UserIdBody {
        pub user_id: i64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct UserIdsBody {
        pub user_ids: Vec<i64>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct CreateGroupBody {
        pub name: String,
        #[serde(default)]
        pub members: Vec<i64>,
    }

    /// `POST /api/groups/{id}/name`.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct GroupNameBody {
        pub name: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NoteBody {
        #[serde(default)]
        pub note: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct RoleBody {
        pub user_id: i64,
        pub role: super::Role,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct SendBody {
        pub client_msg_id: String,
        #[serde(default = "super::text_kind")]
        pub kind: super::MessageKind,
        pub content: String,
        #[serde(default)]
        pub reply_to: Option<i64>,
        #[serde(default)]
        pub file_id: Option<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct EditBody {
        pub content: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct SeqBody {
        pub seq: i64,
    }
}
