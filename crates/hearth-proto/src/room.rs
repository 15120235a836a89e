//! The public chat-room protocol spoken on `/api/ws`.
//!
//! Every frame is `{"type": string, "payload": object}`. The server speaks first with
//! [`ServerFrame::Hello`]; the client sends [`ClientFrame`]s; anything the server cannot accept
//! is answered with [`ServerFrame::Error`] and the socket stays open.
//!
//! Decoding is done in two steps so that every failure gets its own error code: first the
//! envelope (is it JSON, is it `{type, payload}`), then the payload for the named type.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user as it appears inside frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
}

/// A message id on the wire: `"<ms>-<n>"`.
///
/// `ms` is the time the message was stored (never decreasing within a room) and `n` is the
/// message's sequence number in its room (1, 2, 3, …). Both parts increase together, so ids
/// compare as `(ms, n)` pairs and sort in send order, exactly like Redis stream ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    pub ms: i64,
    pub seq: i64,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for MessageId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 19 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(());
        }
        Ok(MessageId {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom("message id must look like \"<ms>-<n>\""))
    }
}

/// A stored room message as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub content: String,
    pub user: UserRef,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSnapshot {
    pub id: String,
    pub name: String,
    /// Newest first.
    pub messages: Vec<Message>,
    pub has_more_messages: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub me: UserRef,
    pub rooms: Vec<RoomSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerMessages {
    pub room_id: String,
    /// Oldest first: the order they were sent in.
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomHistory {
    pub room_id: String,
    /// Newest first, all strictly older than the requested `firstMessageId`.
    pub messages: Vec<Message>,
    pub has_more_messages: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    pub code: String,
    pub message: String,
    /// Set when the refused frame was a native `send`, so the client knows which one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_msg_id: Option<String>,
    /// With `rate_limited`: how long to wait before retrying.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after_ms: Option<u64>,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "camelCase")]
pub enum ServerFrame {
    Hello(Hello),
    ServerMessages(ServerMessages),
    RoomHistory(RoomHistory),
    Error(ErrorPayload),
}

impl ServerFrame {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error(ErrorPayload {
            code: code.as_str().to_owned(),
            message: message.into(),
            client_msg_id: None,
            retry_after_ms: None,
        })
    }

    /// An error with a free-form code (the native protocol's domain errors).
    pub fn error_code(
        code: &str,
        message: impl Into<String>,
        client_msg_id: Option<String>,
    ) -> Self {
        ServerFrame::Error(ErrorPayload {
            code: code.to_owned(),
            message: message.into(),
            client_msg_id,
            retry_after_ms: None,
        })
    }

    /// `rate_limited`: the frame was refused, nothing was stored; retry after the wait.
    pub fn rate_limited(
        message: impl Into<String>,
        retry_after_ms: u64,
        client_msg_id: Option<String>,
    ) -> Self {
        ServerFrame::Error(ErrorPayload {
            code: "rate_limited".to_owned(),
            message: message.into(),
            client_msg_id,
            retry_after_ms: Some(retry_after_ms),
        })
    }

    /// Serializes the frame. Serializing these plain structs cannot fail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","payload":{"code":"internal","message":"encoding failed"}}"#.into()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingMessage {
    pub content: String,
}

impl<'de> Deserialize<'de> for OutgoingMessage {
    /// Only `{"content": string}`: serde's derive would also take `["…"]`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            content: String,
        }
        let Fields { content } = crate::object_only(d)?;
        Ok(OutgoingMessage { content })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientMessages {
    pub room_id: String,
    pub messages: Vec<OutgoingMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRoomHistory {
    pub room_id: String,
    pub first_message_id: MessageId,
}

/// Frames a client sends: the chat-room protocol's two, and the native protocol's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "camelCase")]
pub enum ClientFrame {
    ClientMessages(ClientMessages),
    RequestRoomHistory(RequestRoomHistory),
    Send(crate::native::Send),
    Read(crate::native::Read),
    Delivered(crate::native::Read),
    Typing(crate::native::TypingRequest),
    Sync(crate::native::SyncRequest),
}

/// The `code` of an `error` frame. The set is closed and documented in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// Valid JSON, but not a `{"type": string, "payload": object}` envelope.
    BadFrame,
    /// The `type` is not one the server knows.
    UnknownType,
    /// The payload is missing keys, has extra keys or has values of the wrong type.
    BadPayload,
    UnknownRoom,
    EmptyContent,
    /// A message holds control characters other than tabs and line breaks.
    BadContent,
    ContentTooLong,
    NoMessages,
    TooManyMessages,
    /// The frame is over the soft size limit (larger ones close the socket with 1009).
    FrameTooLarge,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The database or Redis is unreachable; nothing was stored. Safe to retry.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadPayload => "bad_payload",
            ErrorCode::UnknownRoom => "unknown_room",
            ErrorCode::EmptyContent => "empty_content",
            ErrorCode::BadContent => "bad_content",
            ErrorCode::ContentTooLong => "content_too_long",
            ErrorCode::NoMessages => "no_messages",
            ErrorCode::TooManyMessages => "too_many_messages",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Why a client frame could not be decoded: the code to answer with and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    /// The `clientMsgId` of a refused `send`, when it is a valid one: the refusal can be
    /// matched to the send like any other (sends are pipelined).
    pub client_msg_id: Option<String>,
}

/// The envelope, read before the payload is interpreted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    payload: serde_json::Map<String, serde_json::Value>,
}

impl ClientFrame {
    /// Decodes one text frame, telling apart every way it can be wrong.
    pub fn decode(text: &str) -> Result<ClientFrame, DecodeError> {
        let fail = |code, message: String| DecodeError {
            code,
            message,
            client_msg_id: None,
        };
        let value = crate::strict::from_str(text)
            .map_err(|e| fail(ErrorCode::InvalidJson, format!("frame is not JSON: {e}")))?;
        // serde would also read the envelope from `[type, payload]`.
        if !value.is_object() {
            return Err(fail(
                ErrorCode::BadFrame,
                "frame must be {\"type\": string, \"payload\": object}".to_owned(),
            ));
        }
        let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
            fail(
                ErrorCode::BadFrame,
                format!("frame must be {{\"type\": string, \"payload\": object}}: {e}"),
            )
        })?;
        let payload = serde_json::Value::Object(envelope.payload);
        let bad_payload = |e: serde_json::Error| {
            fail(
                ErrorCode::BadPayload,
                format!("bad {} payload: {e}", envelope.kind),
            )
        };
        match envelope.kind.as_str() {
            "clientMessages" => serde_json::from_value(payload)
                .map(ClientFrame::ClientMessages)
                .map_err(bad_payload),
            "requestRoomHistory" => serde_json::from_value(payload)
                .map(ClientFrame::RequestRoomHistory)
                .map_err(bad_payload),
            "send" => {
                let client_msg_id = payload
                    .get("clientMsgId")
                    .and_then(serde_json::Value::as_str)
                    .filter(|id| crate::native::valid_client_msg_id(id))
                    .map(str::to_owned);
                serde_json::from_value(payload)
                    .map(ClientFrame::Send)
                    .map_err(|e| DecodeError {
                        client_msg_id,
                        ..bad_payload(e)
                    })
            }
            "read" => serde_json::from_value(payload)
                .map(ClientFrame::Read)
                .map_err(bad_payload),
            "delivered" => serde_json::from_value(payload)
                .map(ClientFrame::Delivered)
                .map_err(bad_payload),
            "typing" => serde_json::from_value(payload)
                .map(ClientFrame::Typing)
                .map_err(bad_payload),
            "sync" => serde_json::from_value(payload)
                .map(ClientFrame::Sync)
                .map_err(bad_payload),
            other => Err(fail(
                ErrorCode::UnknownType,
                format!(
                    "unknown frame type {:?}",
                    other.chars().take(64).collect::<String>()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_order_as_pairs() {
        let a: MessageId = "1726840364728-9".parse().unwrap();
        let b: MessageId = "1726840364728-10".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "1726840364728-10");
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "1- 2",
            "+1-2",
            "99999999999999999999-1",
        ] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn decode_tells_apart_each_failure() {
        let code = |t: &str| ClientFrame::decode(t).unwrap_err().code;
        assert_eq!(code("{"), ErrorCode::InvalidJson);
        assert_eq!(code("[]"), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(
            code(r#"{"type":"x","payload":{},"extra":1}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"nope","payload":{}}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(
            code(r#"{"type":"clientMessages","payload":{"roomId":"a"}}"#),
            ErrorCode::BadPayload
        );
        assert_eq!(
            code(r#"{"type":"requestRoomHistory","payload":{"roomId":"a","firstMessageId":"x"}}"#),
            ErrorCode::BadPayload
        );
    }

    #[test]
    fn a_refused_send_names_its_client_msg_id_when_valid() {
        let refused = |t: &str| ClientFrame::decode(t).unwrap_err();
        let unknown_kind = refused(
            r#"{"type":"send","payload":{"conversationId":4,"clientMsgId":"k4","content":"x","kind":"video"}}"#,
        );
        assert_eq!(unknown_kind.code, ErrorCode::BadPayload);
        assert_eq!(unknown_kind.client_msg_id.as_deref(), Some("k4"));
        let extra_key = refused(
            r#"{"type":"send","payload":{"conversationId":4,"clientMsgId":"k5","content":"x","x":1}}"#,
        );
        assert_eq!(extra_key.client_msg_id.as_deref(), Some("k5"));
        // An id the server would refuse anyway is not echoed (it could be anything, or huge).
        let long = "a".repeat(65);
        let bad_id = refused(&format!(
            r#"{{"type":"send","payload":{{"conversationId":"4","clientMsgId":"{long}","content":"x"}}}}"#
        ));
        assert_eq!(bad_id.client_msg_id, None);
        let not_send = refused(r#"{"type":"read","payload":{"clientMsgId":"k6"}}"#);
        assert_eq!(not_send.client_msg_id, None);
    }

    #[test]
    fn decode_refuses_shapes_serde_would_let_through() {
        let code = |t: &str| ClientFrame::decode(t).unwrap_err().code;
        assert_eq!(code(r#"["sync",{"inboxAfter":0}]"#), ErrorCode::BadFrame);
        assert_eq!(
            code(r#"{"type":"clientMessages","payload":{"roomId":"a","messages":[["hi"]]}}"#),
            ErrorCode::BadPayload
        );
        assert_eq!(
            code(
                r#"{"type":"send","payload":{"conversationId":1,"clientMsgId":"c","kind":{"text":null},"content":"x"}}"#
            ),
            ErrorCode::BadPayload
        );
        let body = crate::http::decode_body::<crate::http::LoginRequest>;
        assert!(body(br#"["a@b.c","correct horse"]"#).is_err());
        assert!(body(br#"{"email":"a@b.c","password":"correct horse"}"#).is_ok());
    }

    #[test]
    fn decode_accepts_the_reference_frames() {
        let f = ClientFrame::decode(
            r#"{"type":"clientMessages","payload":{"roomId":"beast","messages":[{"content":"hi"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            ClientFrame::ClientMessages(ClientMessages {
                room_id: "beast".into(),
                messages: vec![OutgoingMessage {
                    content: "hi".into()
                }]
            })
        );
    }

    #[test]
    fn server_frames_match_the_reference_shape() {
        let frame = ServerFrame::ServerMessages(ServerMessages {
            room_id: "beast".into(),
            messages: vec![Message {
                id: MessageId {
                    ms: 1726839290525,
                    seq: 0,
                },
                content: "x".into(),
                user: UserRef {
                    id: 5,
                    username: "u".into(),
                },
                timestamp: 1726839290524,
            }],
        });
        assert_eq!(
            frame.to_json(),
            r#"{"type":"serverMessages","payload":{"roomId":"beast","messages":[{"id":"1726839290525-0","content":"x","user":{"id":5,"username":"u"},"timestamp":1726839290524}]}}"#
        );
    }
}
