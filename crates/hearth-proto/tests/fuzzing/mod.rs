//! Generators, mutators, the seed corpus and a model of the client frame schema, shared by
//! `hearth-proto/tests/fuzz.rs` (the decoders) and `hearth-server/tests/fuzz_socket.rs` (the
//! same inputs thrown at a running server).
//!
//! Fuzzing here is proptest at scale rather than cargo-fuzz (which needs a nightly toolchain).
//! Inputs come from three sources: arbitrary text, valid frames of every client frame type
//! built by strategies, and the committed seed corpus (`hearth-proto/fuzz-corpus/`); the
//! latter two are then mutated, first as JSON values (wrong types, huge numbers, deep nesting,
//! long and unusual strings, missing, extra and renamed keys, wrapped values) and then as text
//! (truncation, insertions, deletions, duplications).
#![allow(dead_code)]

use hearth_proto::native::{MessageKind, Read, Send, SyncRequest, TypingRequest};
use hearth_proto::room::{
    ClientFrame, ClientMessages, ErrorCode, MessageId, OutgoingMessage, RequestRoomHistory,
};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Cases per property: `HEARTH_FUZZ_CASES`, or `default` (sized for CI).
pub fn cases(default: u32) -> u32 {
    std::env::var("HEARTH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// `crates/hearth-proto/fuzz-corpus`, from either crate's tests.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hearth-proto/fuzz-corpus")
}

/// One corpus file. Its name says what the input must give: `ok__…` (accepted) or
/// `<error code>__…` (refused with that code; `err__…` for bodies, which have no codes).
#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub expect: String,
    pub text: String,
}

/// The files of one corpus directory, sorted by name.
pub fn seeds(subdir: &str) -> Vec<Seed> {
    let dir = corpus_dir().join(subdir);
    let mut seeds: Vec<Seed> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|_| panic!("corpus file {name} is not UTF-8"));
            let expect = name
                .split_once("__")
                .unwrap_or_else(|| panic!("corpus file {name} is not named <outcome>__<what>"))
                .0
                .to_owned();
            Seed { name, expect, text }
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!seeds.is_empty(), "corpus {} is empty", dir.display());
    seeds
}

// ---- strings and numbers ------------------------------------------------------------------

const SPECIAL: &[&str] = &[
    "",
    " ",
    " \n\t ",
    "\u{0}",
    "a\u{0}b",
    "é",
    "字",
    "你好，世界",
    "🦀",
    "👨\u{200d}👩\u{200d}👧",
    "\u{202e}gnp.exe",
    "\u{feff}",
    "\u{fffd}",
    "\u{10ffff}",
    "𝕳𝖊𝖆𝖗𝖙𝖍",
    "\\",
    "\"",
    "\\u0000",
    "</script>",
    "'; DROP TABLE messages; --",
    "general",
    "1726840364728-42",
    "text",
    "clientMessages",
];

/// Strings of every kind: short ASCII, arbitrary Unicode, awkward ones, long runs.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _.-]{0,24}",
        3 => any::<String>(),
        2 => select(SPECIAL).prop_map(str::to_owned),
        1 => (select(SPECIAL), 1..3_000usize).prop_map(|(s, n)| s.repeat(n)),
        1 => (any::<char>(), 3_000..70_000usize).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

pub fn int() -> BoxedStrategy<i64> {
    prop_oneof![
        3 => any::<i64>(),
        2 => -5i64..1_000,
        1 => select(vec![0, 1, -1, i64::MAX, i64::MIN, i64::MAX - 1, 1 << 32, (1 << 53) + 1, i32::MAX as i64 + 1]),
    ]
    .boxed()
}

/// A message id as the server writes them (both parts non-negative).
pub fn message_id() -> BoxedStrategy<MessageId> {
    let part = prop_oneof![
        0i64..=i64::MAX,
        select(vec![0, 1, i64::MAX, 999_999_999_999])
    ];
    (part.clone(), part)
        .prop_map(|(ms, seq)| MessageId { ms, seq })
        .boxed()
}

pub fn message_kind() -> BoxedStrategy<MessageKind> {
    select(vec![
        MessageKind::Text,
        MessageKind::Image,
        MessageKind::File,
        MessageKind::Voice,
        MessageKind::System,
    ])
    .boxed()
}

// ---- valid client frames --------------------------------------------------------------------

/// A valid frame of any client frame type (valid for decoding: the server may still refuse
/// its content, e.g. an unknown room or an empty message).
pub fn client_frame() -> BoxedStrategy<ClientFrame> {
    let client_messages = (
        text(),
        prop::collection::vec(text().prop_map(|content| OutgoingMessage { content }), 0..8),
    )
        .prop_map(|(room_id, messages)| {
            ClientFrame::ClientMessages(ClientMessages { room_id, messages })
        });
    let history = (text(), message_id()).prop_map(|(room_id, first_message_id)| {
        ClientFrame::RequestRoomHistory(RequestRoomHistory {
            room_id,
            first_message_id,
        })
    });
    let send = (
        int(),
        text(),
        message_kind(),
        text(),
        prop::option::of(int()),
        prop::option::of(text()),
    )
        .prop_map(
            |(conversation_id, client_msg_id, kind, content, reply_to, file_id)| {
                ClientFrame::Send(Send {
                    conversation_id,
                    client_msg_id,
                    kind,
                    content,
                    reply_to,
                    file_id,
                })
            },
        );
    let read = (int(), int()).prop_map(|(conversation_id, seq)| {
        ClientFrame::Read(Read {
            conversation_id,
            seq,
        })
    });
    let delivered = (int(), int()).prop_map(|(conversation_id, seq)| {
        ClientFrame::Delivered(Read {
            conversation_id,
            seq,
        })
    });
    let typing =
        int().prop_map(|conversation_id| ClientFrame::Typing(TypingRequest { conversation_id }));
    let sync = int().prop_map(|inbox_after| ClientFrame::Sync(SyncRequest { inbox_after }));
    prop_oneof![
        client_messages,
        history,
        send,
        read,
        delivered,
        typing,
        sync
    ]
    .boxed()
}

// ---- mutations ------------------------------------------------------------------------------

/// Numbers and tokens written into the text as they are (serde_json values cannot hold them).
const RAW: &[&str] = &[
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890123456789",
    "1.0",
    "-0",
    "-0.0",
    "1E2",
    "0.1e1",
    "00",
    "01",
    "+1",
    ".5",
    "0x10",
    "NaN",
    "Infinity",
    "-Infinity",
    "True",
    "nul",
    "undefined",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\uD83E\\uDD80\"",
    "\"\\u0000\"",
    "\"\\x41\"",
    "\"tab\there\"",
    "'single'",
    "[1,]",
    "{\"a\":1,}",
    "{\"a\" 1}",
    "{1:2}",
];

/// A value to put somewhere it does not belong.
#[derive(Debug, Clone)]
pub enum Junk {
    Value(Value),
    /// Written into the text verbatim.
    Raw(String),
    /// `depth` nested arrays (or objects) around `1`.
    Deep {
        depth: usize,
        objects: bool,
    },
}

pub fn junk() -> BoxedStrategy<Junk> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        int().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        select(vec![u64::MAX, 1 << 63]).prop_map(|n| json!(n)),
        select(vec![0.5, -0.0, 1e300, -1e300, 5.0, f64::MIN_POSITIVE]).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"content": "x"})),
        Just(json!([{"content": "x"}])),
    ];
    let value = scalar.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z]{1,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![
        6 => value.prop_map(Junk::Value),
        2 => select(RAW).prop_map(|r| Junk::Raw(r.to_owned())),
        2 => (prop_oneof![1..140usize, 120..135usize, 500..5_000usize], any::<bool>())
            .prop_map(|(depth, objects)| Junk::Deep { depth, objects }),
    ]
    .boxed()
}

/// Key names: the real ones (for duplicates and wrong places), near misses, random.
pub fn key() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "type",
            "payload",
            "roomId",
            "messages",
            "content",
            "firstMessageId",
            "conversationId",
            "clientMsgId",
            "kind",
            "replyTo",
            "fileId",
            "seq",
            "inboxAfter",
            "room_id",
            "RoomId",
            "roomid",
            "Type",
            "user",
            "admin",
            "__proto__",
            "",
        ])
        .prop_map(str::to_owned),
        text(),
    ]
    .boxed()
}

/// Frame types: the client's, the server's, near misses, random.
pub fn frame_type() -> BoxedStrategy<String> {
    prop_oneof![
        select(CLIENT_TYPES.to_vec()).prop_map(str::to_owned),
        select(vec![
            "hello",
            "serverMessages",
            "roomHistory",
            "error",
            "ack",
            "message",
            "syncState",
            "ClientMessages",
            "clientmessages",
            "SEND",
            "send ",
            " send",
            "sync\u{0}",
            "",
        ])
        .prop_map(str::to_owned),
        text(),
    ]
    .boxed()
}

/// One change to a JSON value. `usize`s pick a node (modulo the number of candidates).
#[derive(Debug, Clone)]
pub enum Mutation {
    Replace(usize, Junk),
    Remove(usize),
    AddKey(usize, String, Junk),
    RenameKey(usize, String),
    /// Put the node inside an array (`true`) or an object under a key.
    Wrap(usize, bool, String),
    /// Replace an array or object by its first element.
    Unwrap(usize),
    /// Change the envelope's `type` (keeping the payload of another type, say).
    SetType(String),
}

pub fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        4 => (any::<usize>(), junk()).prop_map(|(at, j)| Mutation::Replace(at, j)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        2 => (any::<usize>(), key(), junk()).prop_map(|(at, k, j)| Mutation::AddKey(at, k, j)),
        1 => (any::<usize>(), key()).prop_map(|(at, k)| Mutation::RenameKey(at, k)),
        1 => (any::<usize>(), any::<bool>(), key()).prop_map(|(at, a, k)| Mutation::Wrap(at, a, k)),
        1 => any::<usize>().prop_map(Mutation::Unwrap),
        2 => frame_type().prop_map(Mutation::SetType),
    ]
    .boxed()
}

/// One change to the text.
#[derive(Debug, Clone)]
pub enum Edit {
    Truncate(usize),
    Insert(usize, String),
    Delete(usize, usize),
    Duplicate(usize, usize),
    /// Re-indent (pretty-print) if the text is JSON.
    Pretty,
}

pub fn edit() -> BoxedStrategy<Edit> {
    let token = prop_oneof![
        select(vec![
            "{", "}", "[", "]", "\"", "\\", ",", ":", " ", "\u{0}", "\\u", "\\ud800", "null",
            "1e999", "\u{feff}", "é", "🦀", "\n",
        ])
        .prop_map(str::to_owned),
        text(),
    ];
    prop_oneof![
        1 => any::<usize>().prop_map(Edit::Truncate),
        3 => (any::<usize>(), token).prop_map(|(at, t)| Edit::Insert(at, t)),
        2 => (any::<usize>(), 1..16usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        1 => Just(Edit::Pretty),
    ]
    .boxed()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Paths of every node (the root included), depth first.
fn paths(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    here.push(Step::Index(i));
                    walk(item, here, out);
                    here.pop();
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    here.push(Step::Key(k.clone()));
                    walk(item, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn node<'a>(value: &'a Value, path: &[Step]) -> &'a Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &v[k.as_str()],
        Step::Index(i) => &v[*i],
    })
}

fn at_mut<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// Applies value mutations; raw tokens are stored as placeholder strings, see [`render`].
pub fn mutate(mut value: Value, mutations: &[Mutation], raws: &mut Vec<String>) -> Value {
    let junk_value = |junk: &Junk, raws: &mut Vec<String>| -> Value {
        let raw = match junk {
            Junk::Value(v) => return v.clone(),
            Junk::Raw(r) => r.clone(),
            Junk::Deep { depth, objects } => {
                if *objects {
                    format!("{}1{}", "{\"a\":".repeat(*depth), "}".repeat(*depth))
                } else {
                    format!("{}1{}", "[".repeat(*depth), "]".repeat(*depth))
                }
            }
        };
        raws.push(raw);
        Value::String(format!("\u{e000}RAW{}\u{e000}", raws.len() - 1))
    };
    for m in mutations {
        let all = paths(&value);
        match m {
            Mutation::Replace(at, j) => {
                let path = &all[at % all.len()];
                let new = junk_value(j, raws);
                *at_mut(&mut value, path) = new;
            }
            Mutation::Remove(at) => {
                let children: Vec<&Vec<Step>> = all.iter().filter(|p| !p.is_empty()).collect();
                if children.is_empty() {
                    continue;
                }
                let path = children[at % children.len()].clone();
                let (last, parent) = path.split_last().unwrap();
                match (at_mut(&mut value, parent), last) {
                    (Value::Object(map), Step::Key(k)) => {
                        map.remove(k);
                    }
                    (Value::Array(items), Step::Index(i)) => {
                        items.remove(*i);
                    }
                    _ => {}
                }
            }
            Mutation::AddKey(at, k, j) => {
                let objects: Vec<&Vec<Step>> =
                    all.iter().filter(|p| node(&value, p).is_object()).collect();
                if objects.is_empty() {
                    continue;
                }
                let path = objects[at % objects.len()].clone();
                let new = junk_value(j, raws);
                if let Value::Object(map) = at_mut(&mut value, &path) {
                    map.insert(k.clone(), new);
                }
            }
            Mutation::RenameKey(at, new_key) => {
                let keyed: Vec<&Vec<Step>> = all
                    .iter()
                    .filter(|p| matches!(p.last(), Some(Step::Key(_))))
                    .collect();
                if keyed.is_empty() {
                    continue;
                }
                let path = keyed[at % keyed.len()].clone();
                let (last, parent) = path.split_last().unwrap();
                if let (Value::Object(map), Step::Key(k)) = (at_mut(&mut value, parent), last)
                    && let Some(v) = map.remove(k)
                {
                    map.insert(new_key.clone(), v);
                }
            }
            Mutation::Wrap(at, array, k) => {
                let path = &all[at % all.len()];
                let node = at_mut(&mut value, path);
                let inner = node.take();
                *node = if *array {
                    Value::Array(vec![inner])
                } else {
                    let mut map = Map::new();
                    map.insert(k.clone(), inner);
                    Value::Object(map)
                };
            }
            Mutation::Unwrap(at) => {
                let path = &all[at % all.len()];
                let node = at_mut(&mut value, path);
                let first = match node {
                    Value::Array(items) => items.first().cloned(),
                    Value::Object(map) => map.values().next().cloned(),
                    _ => None,
                };
                if let Some(first) = first {
                    *node = first;
                }
            }
            Mutation::SetType(kind) => {
                if let Value::Object(map) = &mut value {
                    map.insert("type".into(), Value::String(kind.clone()));
                }
            }
        }
    }
    value
}

/// Serializes a mutated value, writing the raw tokens in place of their placeholders.
pub fn render(value: &Value, raws: &[String]) -> String {
    let mut text = value.to_string();
    for (i, raw) in raws.iter().enumerate() {
        text = text.replace(&format!("\"\u{e000}RAW{i}\u{e000}\""), raw);
    }
    text
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

pub fn apply_edits(mut text: String, edits: &[Edit]) -> String {
    for e in edits {
        match e {
            Edit::Truncate(at) => {
                let at = boundary(&text, *at);
                text.truncate(at);
            }
            Edit::Insert(at, token) => {
                let at = boundary(&text, *at);
                text.insert_str(at, token);
            }
            Edit::Delete(at, n) => {
                let start = boundary(&text, *at);
                let end = boundary(&text, (start + n).min(text.len()));
                text.replace_range(start..end.max(start), "");
            }
            Edit::Duplicate(at, n) => {
                let start = boundary(&text, *at);
                let end = boundary(&text, (start + n).min(text.len())).max(start);
                let piece = text[start..end].to_owned();
                text.insert_str(end, &piece);
            }
            Edit::Pretty => {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    text = serde_json::to_string_pretty(&v).unwrap();
                }
            }
        }
    }
    text
}

/// A frame's text: a valid frame or a corpus seed, mutated as a value and then as text.
pub fn mutated_frame(seeds: Vec<String>) -> BoxedStrategy<String> {
    let origin = prop_oneof![
        2 => client_frame().prop_map(|f| serde_json::to_string(&f).unwrap()),
        1 => select(seeds),
    ];
    (
        origin,
        prop::collection::vec(mutation(), 0..4),
        // Half the frames keep their JSON whole, to reach past the parser.
        prop_oneof![Just(Vec::new()), prop::collection::vec(edit(), 1..3)],
    )
        .prop_map(|(origin, mutations, edits)| {
            let text = match serde_json::from_str::<Value>(&origin) {
                Ok(value) if !mutations.is_empty() => {
                    let mut raws = Vec::new();
                    let mutated = mutate(value, &mutations, &mut raws);
                    render(&mutated, &raws)
                }
                _ => origin,
            };
            apply_edits(text, &edits)
        })
        .boxed()
}

// ---- a model of the client frame schema -------------------------------------------------------

pub const CLIENT_TYPES: &[&str] = &[
    "clientMessages",
    "requestRoomHistory",
    "send",
    "read",
    "delivered",
    "typing",
    "sync",
];

/// The codes `ClientFrame::decode` may answer with.
pub const DECODE_CODES: &[&str] = &["invalid_json", "bad_frame", "unknown_type", "bad_payload"];

/// The type of a key in a payload or body.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    Str,
    I64,
    OptI64,
    OptStr,
    Kind,
    MsgId,
    Messages,
    VecI64,
    Role,
}

/// `(key, type, required)`: a key that is not required has a default when left out (which is
/// not `null`, unless the type is optional).
pub type Schema = &'static [(&'static str, Field, bool)];

/// `(key, type, required)` per client frame type, as docs/protocol.md describes them.
fn schema(kind: &str) -> Schema {
    use Field::*;
    match kind {
        "clientMessages" => &[("roomId", Str, true), ("messages", Messages, true)],
        "requestRoomHistory" => &[("roomId", Str, true), ("firstMessageId", MsgId, true)],
        "send" => &[
            ("conversationId", I64, true),
            ("clientMsgId", Str, true),
            ("kind", Kind, false),
            ("content", Str, true),
            ("replyTo", OptI64, false),
            ("fileId", OptStr, false),
        ],
        "read" | "delivered" => &[("conversationId", I64, true), ("seq", I64, true)],
        "typing" => &[("conversationId", I64, true)],
        "sync" => &[("inboxAfter", I64, false)],
        _ => &[],
    }
}

/// `<ms>-<n>`: 1–19 ASCII digits each, both within `i64`.
pub fn model_message_id(s: &str) -> Option<(i64, i64)> {
    let (ms, seq) = s.split_once('-')?;
    let part = |p: &str| -> Option<i64> {
        if p.is_empty() || p.len() > 19 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        i64::try_from(p.parse::<u128>().ok()?).ok()
    };
    Some((part(ms)?, part(seq)?))
}

fn field_ok(field: Field, v: &Value) -> bool {
    match field {
        Field::Str => v.is_string(),
        Field::I64 => v.as_i64().is_some(),
        Field::OptI64 => v.is_null() || v.as_i64().is_some(),
        Field::OptStr => v.is_null() || v.is_string(),
        Field::Kind => v
            .as_str()
            .is_some_and(|s| ["text", "image", "file", "voice", "system"].contains(&s)),
        Field::MsgId => v.as_str().and_then(model_message_id).is_some(),
        Field::VecI64 => v
            .as_array()
            .is_some_and(|items| items.iter().all(|n| n.as_i64().is_some())),
        Field::Role => v
            .as_str()
            .is_some_and(|s| ["member", "admin", "owner"].contains(&s)),
        Field::Messages => v.as_array().is_some_and(|items| {
            items.iter().all(|m| {
                m.as_object()
                    .is_some_and(|o| o.len() == 1 && o.get("content").is_some_and(Value::is_string))
            })
        }),
    }
}

/// What the documentation says `ClientFrame::decode` must answer: `None` for a frame it must
/// accept, or the error code.
pub fn expected_decode(text: &str) -> Option<&'static str> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Some("invalid_json");
    };
    if repeats_a_key(text) {
        return Some("invalid_json");
    }
    let Some(envelope) = value.as_object() else {
        return Some("bad_frame");
    };
    let (Some(Value::String(kind)), Some(Value::Object(payload)), 2) = (
        envelope.get("type"),
        envelope.get("payload"),
        envelope.len(),
    ) else {
        return Some("bad_frame");
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Some("unknown_type");
    }
    if object_ok(payload, schema(kind)) {
        None
    } else {
        Some("bad_payload")
    }
}

/// Whether a strict decoder must accept `object`: no unknown key, every key of the right
/// type, every required key present.
pub fn object_ok(object: &Map<String, Value>, fields: Schema) -> bool {
    let known = object
        .keys()
        .all(|k| fields.iter().any(|(name, _, _)| name == k));
    known
        && fields
            .iter()
            .all(|(name, field, required)| match object.get(*name) {
                Some(v) => field_ok(*field, v),
                None => !required,
            })
}

/// Checks an accepted frame against its text: every key given is decoded as given, every key
/// left out has its documented default.
pub fn assert_decoded_as_written(text: &str, frame: &ClientFrame) {
    let input: Value = serde_json::from_str(text).unwrap();
    let decoded = serde_json::to_value(frame).unwrap();
    assert_eq!(input["type"], decoded["type"], "type of {text}");
    let (given, got) = (
        input["payload"].as_object().unwrap(),
        decoded["payload"].as_object().unwrap(),
    );
    for (key, value) in got {
        match given.get(key) {
            // An id is decoded as its numbers (`007-1` is `7-1`).
            Some(original) if key == "firstMessageId" => assert_eq!(
                original.as_str().and_then(model_message_id),
                value.as_str().and_then(model_message_id),
                "{text}"
            ),
            Some(original) => assert!(
                same(original, value),
                "{key}: {original} decoded as {value} in {text}"
            ),
            None => {
                let default = match key.as_str() {
                    "kind" => json!("text"),
                    "replyTo" | "fileId" => Value::Null,
                    "inboxAfter" => json!(0),
                    other => panic!("required key {other} was missing but decoded: {text}"),
                };
                assert_eq!(value, &default, "default of {key} in {text}");
            }
        }
    }
    assert!(given.keys().all(|k| got.contains_key(k)), "{text}");
}

/// Equal as JSON, comparing numbers by value (`-0` and `0` are the same integer).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_u64() == y.as_u64() && x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Decodes and checks the answer against the model; returns the code (`None`: accepted).
pub fn check_decode(text: &str) -> Option<&'static str> {
    let expected = expected_decode(text);
    match ClientFrame::decode(text) {
        Ok(frame) => {
            assert_eq!(
                expected, None,
                "accepted, but should be refused: {text:.300}"
            );
            assert_decoded_as_written(text, &frame);
            let again = serde_json::to_string(&frame).unwrap();
            assert_eq!(ClientFrame::decode(&again).as_ref(), Ok(&frame));
            None
        }
        Err(e) => {
            let code = e.code.as_str();
            assert!(DECODE_CODES.contains(&code), "undocumented code {code}");
            assert!(!e.message.is_empty(), "{code} without a message");
            assert_eq!(
                Some(code),
                expected,
                "refused with {code} ({}), expected {expected:?}: {text:.300}",
                e.message
            );
            Some(e.code.as_str())
        }
    }
}

/// Every code of `ErrorCode`, to compare with the documentation.
pub const ALL_CODES: &[ErrorCode] = &[
    ErrorCode::InvalidJson,
    ErrorCode::BadFrame,
    ErrorCode::UnknownType,
    ErrorCode::BadPayload,
    ErrorCode::UnknownRoom,
    ErrorCode::EmptyContent,
    ErrorCode::ContentTooLong,
    ErrorCode::NoMessages,
    ErrorCode::TooManyMessages,
    ErrorCode::FrameTooLarge,
    ErrorCode::BinaryNotSupported,
    ErrorCode::Unavailable,
    ErrorCode::Internal,
];

/// Whether some object in `text` (valid JSON) names a key twice: the model of the decoders'
/// refusal of repeated keys, counted without building values.
pub fn repeats_a_key(text: &str) -> bool {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;

    struct Scan<'a>(&'a mut bool);
    impl<'de> DeserializeSeed<'de> for Scan<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Scan<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Scan(&mut *self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    *self.0 = true;
                }
                map.next_value_seed(Scan(&mut *self.0))?;
            }
            Ok(())
        }
    }
    let mut repeated = false;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let _ = Scan(&mut repeated).deserialize(&mut deserializer);
    repeated
}
