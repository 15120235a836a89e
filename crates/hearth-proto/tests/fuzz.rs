//! Fuzzing the wire decoders: `ClientFrame::decode`, every HTTP JSON body, message ids.
//!
//! proptest at scale (cargo-fuzz needs a nightly toolchain). Each property runs
//! `HEARTH_FUZZ_CASES` cases (default 1,000: the whole file takes ~7 s on 2 idle cores, debug build);
//! run longer locally with
//!
//! ```sh
//! HEARTH_FUZZ_CASES=1000000 cargo test --release -p hearth-proto --test fuzz
//! ```
//!
//! The seed corpus (`fuzz-corpus/`) is replayed, each file checked against the outcome in its
//! name, and used as mutation seeds. Failures proptest finds are saved (as seeds) in
//! `proptest-regressions/fuzz.txt` and replayed before new cases: commit that file.
//!
//! The properties: nothing panics; every refusal carries a documented code; the answer is the
//! one an independent model of the documented schema gives (so nothing malformed is accepted
//! and nothing well-formed refused); whatever is accepted decodes to exactly what was written
//! (absent keys to their documented defaults); valid values round-trip.

mod fuzzing;

use fuzzing::*;
use hearth_proto::http::{CreateAccountRequest, ErrorBody, LoginRequest, Me, SessionCreated};
use hearth_proto::native::Role;
use hearth_proto::native::http::{
    CreateGroupBody, EditBody, FriendRequestBody, GroupNameBody, NoteBody, RoleBody, SendBody,
    SeqBody, UserIdBody, UserIdsBody,
};
use hearth_proto::room::{ClientFrame, MessageId};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::fmt::Debug;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(1_000),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

// ---- the corpus ----------------------------------------------------------------------------

#[test]
fn corpus_frames_decode_as_their_names_say() {
    let seeds = seeds("frames");
    for seed in &seeds {
        let got = check_decode(&seed.text).unwrap_or("ok");
        assert_eq!(got, seed.expect, "corpus file {}", seed.name);
    }
    // Every client frame type has a valid seed, and every decode code a malformed one.
    for kind in CLIENT_TYPES {
        assert!(
            seeds
                .iter()
                .any(|s| s.expect == "ok" && s.name.starts_with(&format!("ok__{kind}"))),
            "no valid {kind} seed"
        );
    }
    for code in DECODE_CODES {
        assert!(seeds.iter().any(|s| s.expect == *code), "no {code} seed");
    }
}

#[test]
fn corpus_bodies_decode_as_their_names_say() {
    let dirs = std::fs::read_dir(corpus_dir().join("http")).unwrap();
    let mut types = 0;
    for dir in dirs {
        let ty = dir.unwrap().file_name().to_string_lossy().into_owned();
        types += 1;
        for seed in seeds(&format!("http/{ty}")) {
            let accepted = check_body_named(&ty, &seed.text);
            let expected = match seed.expect.as_str() {
                "ok" => true,
                "err" => false,
                other => panic!("{ty}/{}: outcome {other} is neither ok nor err", seed.name),
            };
            assert_eq!(accepted, expected, "corpus file http/{ty}/{}", seed.name);
        }
    }
    assert_eq!(
        types,
        BODY_TYPES.len(),
        "one corpus directory per body type"
    );
}

#[test]
fn corpus_message_ids_parse_as_their_names_say() {
    for seed in seeds("message-ids") {
        let parsed = seed.text.parse::<MessageId>();
        assert_eq!(
            parsed.is_ok(),
            seed.expect == "ok",
            "corpus file message-ids/{}",
            seed.name
        );
        check_message_id(&seed.text);
    }
}

// ---- fixed facts the fuzzing relies on -------------------------------------------------------

/// Every code the server can put in an `error` frame is in docs/protocol.md's table.
#[test]
fn error_codes_are_the_documented_set() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md"),
    )
    .unwrap();
    let table = doc
        .split("### Error codes")
        .nth(1)
        .and_then(|rest| rest.split("\n###").next())
        .expect("docs/protocol.md has an error code table");
    let documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    for code in ALL_CODES {
        assert!(
            documented.contains(&code.as_str()),
            "{} is not documented",
            code.as_str()
        );
    }
    for code in DECODE_CODES {
        assert!(documented.contains(code), "{code} is not documented");
    }
}

/// "nests 128 levels deep or more": exactly where serde_json's recursion limit cuts.
#[test]
fn nesting_is_refused_past_128_levels() {
    // The envelope and the payload are two levels; `x` adds `n` arrays.
    let frame = |n: usize| {
        format!(
            r#"{{"type":"sync","payload":{{"x":{}{}}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    assert_eq!(check_decode(&frame(125)), Some("bad_payload"), "127 levels");
    assert_eq!(
        check_decode(&frame(126)),
        Some("invalid_json"),
        "128 levels"
    );
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(check_decode(&nested(127)), Some("bad_frame"));
    assert_eq!(check_decode(&nested(128)), Some("invalid_json"));
    assert_eq!(check_decode(&nested(100_000)), Some("invalid_json"));
}

// ---- client frames ---------------------------------------------------------------------------

fn frame_seeds() -> Vec<String> {
    seeds("frames").into_iter().map(|s| s.text).collect()
}

proptest! {
    #![proptest_config(config())]

    /// Any text at all: never a panic, always the model's answer.
    #[test]
    fn arbitrary_text_is_answered_as_documented(text in any::<String>()) {
        check_decode(&text);
    }

    /// Any bytes, as a WebSocket layer would hand over their UTF-8 reading.
    #[test]
    fn arbitrary_bytes_are_answered_as_documented(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_decode(&String::from_utf8_lossy(&bytes));
    }

    /// Text made of JSON's own characters, which reaches deeper into the parser.
    #[test]
    fn json_shaped_text_is_answered_as_documented(
        text in r#"[\[\]{}",:0-9a-zA-Z\\. eE+-]{0,80}"#,
        envelope in any::<bool>(),
    ) {
        let text = if envelope {
            format!(r#"{{"type":"send","payload":{{{text}}}}}"#)
        } else {
            text
        };
        check_decode(&text);
    }

    /// Valid frames of every type decode to what was encoded, however they are laid out.
    #[test]
    fn valid_frames_decode_to_what_was_encoded(frame in client_frame(), pretty in any::<bool>(), reverse in any::<bool>()) {
        let mut value = serde_json::to_value(&frame).unwrap();
        if reverse {
            value = reversed(value);
        }
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            value.to_string()
        };
        prop_assert_eq!(ClientFrame::decode(&text), Ok(frame));
        prop_assert_eq!(check_decode(&text), None);
    }

    /// Valid frames and the corpus, mutated as values and as text: the model's answer.
    #[test]
    fn mutated_frames_are_answered_as_documented(text in mutated_frame(frame_seeds())) {
        check_decode(&text);
    }
}

/// The same value with every object's keys in reverse order.
fn reversed(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .rev()
                .map(|(k, v)| (k, reversed(v)))
                .collect::<Vec<_>>()
                .into_iter()
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(reversed).collect()),
        other => other,
    }
}

// ---- message ids -----------------------------------------------------------------------------

/// Parsing agrees with the model; an accepted id prints back to the same numbers.
fn check_message_id(text: &str) {
    let parsed = text.parse::<MessageId>().ok().map(|id| (id.ms, id.seq));
    assert_eq!(parsed, model_message_id(text), "{text:?}");
    if let Some((ms, seq)) = parsed {
        let id = MessageId { ms, seq };
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
    }
    // As JSON, only a string can be an id.
    let from_json = serde_json::from_value::<MessageId>(Value::String(text.to_owned())).ok();
    assert_eq!(from_json.map(|id| (id.ms, id.seq)), parsed);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn message_ids_round_trip(id in message_id()) {
        let text = id.to_string();
        prop_assert_eq!(text.parse::<MessageId>(), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
    }

    #[test]
    fn message_id_text_is_parsed_as_documented(
        text in prop_oneof![
            any::<String>(),
            "[0-9]{0,21}-[0-9]{0,21}",
            "[0-9+ -]{0,12}",
            (any::<u128>(), any::<u128>(), "[-+ ]?").prop_map(|(a, b, p)| format!("{p}{a}-{b}")),
        ]
    ) {
        check_message_id(&text);
    }

    #[test]
    fn message_ids_are_only_strings(junk in junk()) {
        if let Junk::Value(value) = junk {
            let decoded = serde_json::from_value::<MessageId>(value.clone()).ok();
            let expected = value.as_str().and_then(model_message_id);
            prop_assert_eq!(decoded.map(|id| (id.ms, id.seq)), expected);
        }
    }
}

// ---- HTTP bodies ----------------------------------------------------------------------------

const BODY_TYPES: &[&str] = &[
    "CreateAccountRequest",
    "LoginRequest",
    "FriendRequestBody",
    "UserIdBody",
    "UserIdsBody",
    "CreateGroupBody",
    "GroupNameBody",
    "NoteBody",
    "RoleBody",
    "SendBody",
    "EditBody",
    "SeqBody",
];

fn body_schema(ty: &str) -> Schema {
    use Field::*;
    match ty {
        "CreateAccountRequest" => &[
            ("username", Str, true),
            ("email", Str, true),
            ("password", Str, true),
        ],
        "LoginRequest" => &[("email", Str, true), ("password", Str, true)],
        "FriendRequestBody" => &[("userId", I64, true), ("note", Str, false)],
        "UserIdBody" => &[("userId", I64, true)],
        "UserIdsBody" => &[("userIds", VecI64, true)],
        "CreateGroupBody" => &[("name", Str, true), ("members", VecI64, false)],
        "GroupNameBody" => &[("name", Str, true)],
        "NoteBody" => &[("note", Str, false)],
        "RoleBody" => &[("userId", I64, true), ("role", Role, true)],
        "SendBody" => &[
            ("clientMsgId", Str, true),
            ("kind", Kind, false),
            ("content", Str, true),
            ("replyTo", OptI64, false),
            ("fileId", OptStr, false),
        ],
        "EditBody" => &[("content", Str, true)],
        "SeqBody" => &[("seq", I64, true)],
        other => panic!("no schema for {other}"),
    }
}

/// How the server reads a body.
fn decode_body<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    hearth_proto::http::decode_body(text.as_bytes())
}

/// Decodes a body of type `T` and checks the answer against the model; returns whether it
/// was accepted.
fn check_body<T: DeserializeOwned + Serialize + Debug>(text: &str, schema: Schema) -> bool {
    let value = serde_json::from_str::<Value>(text).ok();
    let expected = value
        .as_ref()
        .and_then(Value::as_object)
        .is_some_and(|object| object_ok(object, schema))
        && !repeats_a_key(text);
    match decode_body::<T>(text) {
        Ok(body) => {
            assert!(
                expected,
                "accepted, but should be refused: {text:.300} as {body:?}"
            );
            let decoded = serde_json::to_value(&body).unwrap();
            assert_as_written(value.as_ref().unwrap(), &decoded, schema, text);
            let again: T = decode_body(&decoded.to_string()).unwrap();
            assert_eq!(serde_json::to_value(&again).unwrap(), decoded);
            true
        }
        Err(e) => {
            assert!(
                !expected,
                "refused ({e}), but should be accepted: {text:.300}"
            );
            false
        }
    }
}

/// Every key given decoded as given, every key left out as its default.
fn assert_as_written(input: &Value, decoded: &Value, schema: Schema, text: &str) {
    let (given, got) = (input.as_object().unwrap(), decoded.as_object().unwrap());
    for (name, field, _) in schema {
        let value = &got[*name];
        match given.get(*name) {
            Some(original) => assert!(
                same(original, value),
                "{name}: {original} decoded as {value} in {text:.300}"
            ),
            None => {
                let default = match field {
                    Field::Str => json!(""),
                    Field::VecI64 => json!([]),
                    Field::Kind => json!("text"),
                    _ => Value::Null,
                };
                assert_eq!(value, &default, "default of {name} in {text:.300}");
            }
        }
    }
}

fn check_body_named(ty: &str, text: &str) -> bool {
    let schema = body_schema(ty);
    match ty {
        "CreateAccountRequest" => check_body::<CreateAccountRequest>(text, schema),
        "LoginRequest" => check_body::<LoginRequest>(text, schema),
        "FriendRequestBody" => check_body::<FriendRequestBody>(text, schema),
        "UserIdBody" => check_body::<UserIdBody>(text, schema),
        "UserIdsBody" => check_body::<UserIdsBody>(text, schema),
        "CreateGroupBody" => check_body::<CreateGroupBody>(text, schema),
        "GroupNameBody" => check_body::<GroupNameBody>(text, schema),
        "NoteBody" => check_body::<NoteBody>(text, schema),
        "RoleBody" => check_body::<RoleBody>(text, schema),
        "SendBody" => check_body::<SendBody>(text, schema),
        "EditBody" => check_body::<EditBody>(text, schema),
        "SeqBody" => check_body::<SeqBody>(text, schema),
        other => panic!("unknown body type {other}"),
    }
}

/// A valid body of one of the types, as `(type name, JSON text)`.
fn valid_body() -> BoxedStrategy<(&'static str, String)> {
    fn body<T: Serialize>(name: &'static str, value: T) -> (&'static str, String) {
        (name, serde_json::to_string(&value).unwrap())
    }
    let ids = || prop::collection::vec(int(), 0..20);
    let role = select(vec![Role::Member, Role::Admin, Role::Owner]);
    prop_oneof![
        (text(), text(), text()).prop_map(|(username, email, password)| body(
            "CreateAccountRequest",
            CreateAccountRequest {
                username,
                email,
                password
            }
        )),
        (text(), text())
            .prop_map(|(email, password)| body("LoginRequest", LoginRequest { email, password })),
        (int(), text()).prop_map(|(user_id, note)| body(
            "FriendRequestBody",
            FriendRequestBody { user_id, note }
        )),
        int().prop_map(|user_id| body("UserIdBody", UserIdBody { user_id })),
        ids().prop_map(|user_ids| body("UserIdsBody", UserIdsBody { user_ids })),
        (text(), ids())
            .prop_map(|(name, members)| body("CreateGroupBody", CreateGroupBody { name, members })),
        text().prop_map(|name| body("GroupNameBody", GroupNameBody { name })),
        text().prop_map(|note| body("NoteBody", NoteBody { note })),
        (int(), role).prop_map(|(user_id, role)| body("RoleBody", RoleBody { user_id, role })),
        (
            text(),
            message_kind(),
            text(),
            prop::option::of(int()),
            prop::option::of(text())
        )
            .prop_map(|(client_msg_id, kind, content, reply_to, file_id)| body(
                "SendBody",
                SendBody {
                    client_msg_id,
                    kind,
                    content,
                    reply_to,
                    file_id
                }
            )),
        text().prop_map(|content| body("EditBody", EditBody { content })),
        int().prop_map(|seq| body("SeqBody", SeqBody { seq })),
    ]
    .boxed()
}

fn body_seeds() -> Vec<(&'static str, String)> {
    BODY_TYPES
        .iter()
        .flat_map(|ty| {
            seeds(&format!("http/{ty}"))
                .into_iter()
                .map(move |s| (*ty, s.text))
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// Valid bodies of every type decode to what was encoded.
    #[test]
    fn valid_bodies_round_trip((ty, text) in valid_body()) {
        prop_assert!(check_body_named(ty, &text), "{} refused {}", ty, text);
    }

    /// Valid bodies and the corpus, mutated, and decoded as any body type: the model's answer.
    #[test]
    fn mutated_bodies_are_answered_as_documented(
        origin in prop_oneof![valid_body(), select(body_seeds())],
        as_type in select(BODY_TYPES),
        mutations in prop::collection::vec(mutation(), 0..4),
        edits in prop::collection::vec(edit(), 0..3),
        same_type in prop::bool::weighted(0.8),
    ) {
        let (ty, text) = origin;
        let text = match serde_json::from_str::<Value>(&text) {
            Ok(value) if !mutations.is_empty() => {
                let mut raws = Vec::new();
                render(&mutate(value, &mutations, &mut raws), &raws)
            }
            _ => text,
        };
        let text = apply_edits(text, &edits);
        check_body_named(if same_type { ty } else { as_type }, &text);
    }

    /// The response bodies round-trip too (clients decode them).
    #[test]
    fn response_bodies_round_trip(
        id in int(), username in text(), email in text(), token in text(), expires_at in int(),
        error_id in text(), message in text(), retry_after_ms in prop::option::of(any::<u64>()),
    ) {
        let me = Me {
            id,
            username,
            email,
            avatar: None,
        };
        let text = serde_json::to_string(&me).unwrap();
        prop_assert_eq!(serde_json::from_str::<Me>(&text).unwrap(), me.clone());
        let session = SessionCreated { token, expires_at, user: me };
        let text = serde_json::to_string(&session).unwrap();
        let back: SessionCreated = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(serde_json::to_value(back).unwrap(), serde_json::to_value(&session).unwrap());
        let error = ErrorBody { id: error_id, message, retry_after_ms };
        let text = serde_json::to_string(&error).unwrap();
        let back: ErrorBody = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(serde_json::to_value(back).unwrap(), serde_json::to_value(&error).unwrap());
    }

    /// Mutated response bodies never panic the decoder.
    #[test]
    fn mutated_response_bodies_never_panic(
        mutations in prop::collection::vec(mutation(), 1..5),
        edits in prop::collection::vec(edit(), 0..3),
    ) {
        let seed = json!({"token": "t", "expiresAt": 1, "user": {"id": 1, "username": "u", "email": "e"},
                          "id": "BAD_REQUEST", "message": "m", "retryAfterMs": 5});
        let mut raws = Vec::new();
        let text = apply_edits(render(&mutate(seed, &mutations, &mut raws), &raws), &edits);
        let _ = serde_json::from_str::<SessionCreated>(&text);
        let _ = serde_json::from_str::<ErrorBody>(&text);
        let _ = serde_json::from_str::<Me>(&text);
        let _ = serde_json::from_str::<Map<String, Value>>(&text);
    }
}
