//! The decoder fuzzing of `hearth-proto/tests/fuzz.rs`, end to end: one socket of a running
//! server (SQLite) is sent thousands of generated and mutated frames — text and binary (invalid
//! UTF-8 included), pings, frames around the soft size limit — each followed by a marker frame
//! so that every answer can be matched to its frame. Every refusal must carry the code the
//! model of the schema predicts (or, for frames that decode, a documented code); the socket
//! must stay open throughout, a bystander's socket must keep receiving and see nothing of it,
//! and the server must still answer `/api/me`. Frames a WebSocket may not carry (a text frame
//! that is not UTF-8) close the socket with the documented 1007.
//!
//! `HEARTH_FUZZ_CASES` sets the number of frames (default 3,000), with a deterministic seed
//! per run length; `HEARTH_FUZZ_SEED` (a number) changes it.

mod common;
#[path = "../../hearth-proto/tests/fuzzing/mod.rs"]
mod fuzzing;

use common::{Backend, Deployment, Event, contents};
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// What one fuzz step sends.
#[derive(Debug, Clone)]
enum Input {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// A text frame of this many bytes: over the soft limit (1 MiB), under the hard one.
    OverSoftLimit(usize),
    /// Valid JSON of about 1 MiB, just under the soft limit.
    UnderSoftLimit(usize),
}

/// `limits.max_frame_bytes` and `limits.hard_max_frame_bytes` (the defaults).
const SOFT_LIMIT: usize = 1 << 20;
const HARD_LIMIT: usize = 2 << 20;

fn input(seeds: Vec<String>) -> BoxedStrategy<Input> {
    let invalid_utf8 = prop::collection::vec(any::<u8>(), 0..2_048).prop_map(|mut bytes| {
        bytes.insert(0, 0xff);
        bytes
    });
    prop_oneof![
        70 => fuzzing::mutated_frame(seeds).prop_map(Input::Text),
        10 => fuzzing::client_frame().prop_map(|f| Input::Text(serde_json::to_string(&f).unwrap())),
        5 => invalid_utf8.prop_map(Input::Binary),
        3 => fuzzing::client_frame().prop_map(|f| Input::Binary(serde_json::to_vec(&f).unwrap())),
        4 => prop::collection::vec(any::<u8>(), 0..=125).prop_map(Input::Ping),
        2 => (SOFT_LIMIT + 1..HARD_LIMIT).prop_map(Input::OverSoftLimit),
        1 => (900_000usize..1_040_000).prop_map(Input::UnderSoftLimit),
    ]
    .boxed()
}

/// The error codes docs/protocol.md lists: the frame error table and the native codes.
fn documented_codes() -> Vec<String> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md"),
    )
    .unwrap();
    let section = |heading: &str| {
        doc.split(heading)
            .nth(1)
            .and_then(|rest| rest.split("\n###").next())
            .unwrap_or_else(|| panic!("docs/protocol.md has {heading}"))
            .to_owned()
    };
    let mut codes: Vec<String> = section("### Error codes")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    codes.extend(
        section("### Codes")
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(str::to_owned),
    );
    assert!(codes.len() > 30, "codes parsed from the docs: {codes:?}");
    codes
}

fn seed() -> u64 {
    std::env::var("HEARTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4ea7_f022)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_fed_thousands_of_fuzzed_frames_keeps_working() {
    let deployment = Deployment::new(Backend::Sqlite);
    let node = deployment.start().await;
    let fuzzer = node.register("fuzzer").await;
    let bystander = node.register("bystander").await;
    let (mut socket, _) = node.connect(&fuzzer).await;
    let (mut watcher, _) = node.connect(&bystander).await;

    // The bystander reads all the time, keeping everything it is sent.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let watching = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            tokio::select! {
                next = watcher.stream.next() => match next {
                    Some(Ok(Message::Text(text))) => {
                        seen.push(serde_json::from_str::<Value>(text.as_str()).unwrap());
                    }
                    Some(Ok(_)) => {}
                    other => panic!("the bystander's socket ended: {other:?}"),
                },
                _ = &mut stopped => return (watcher, seen),
            }
        }
    });

    let documented = documented_codes();
    let frames = fuzzing::cases(3_000) as usize;
    let seeds: Vec<String> = fuzzing::seeds("frames")
        .into_iter()
        .map(|s| s.text)
        .collect();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &{
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&seed().to_le_bytes());
            bytes
        }),
    );
    let strategy = input(seeds);
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut bytes_sent = 0usize;
    for i in 0..frames {
        let mut input = strategy.new_tree(&mut runner).unwrap().current();
        // Over the hard limit the socket closes (1009, tested in bad_frames.rs).
        if let Input::Text(text) = &input
            && text.len() >= HARD_LIMIT
        {
            input = Input::OverSoftLimit(HARD_LIMIT - 1);
        }
        // The answer the frame must get, if it is refused before reaching the services.
        let (message, expected): (Message, Option<&str>) = match &input {
            Input::Text(text) if text.len() > SOFT_LIMIT => {
                (Message::text(text.clone()), Some("frame_too_large"))
            }
            Input::Text(text) => (Message::text(text.clone()), fuzzing::expected_decode(text)),
            Input::Binary(bytes) => (Message::binary(bytes.clone()), Some("binary_not_supported")),
            Input::Ping(payload) => (Message::Ping(payload.clone().into()), None),
            Input::OverSoftLimit(n) => (Message::text("x".repeat(*n)), Some("frame_too_large")),
            Input::UnderSoftLimit(n) => {
                let content = "y".repeat(n / 4);
                let frame = serde_json::json!({"type": "clientMessages", "payload": {
                    "roomId": "general", "messages": [{"content": content}, {"content": content}, {"content": content}]}});
                (Message::text(frame.to_string()), Some("content_too_long"))
            }
        };
        bytes_sent += message.len();
        socket.send_message(message).await;
        // The marker: its unknown_type error ends this frame's answers.
        let marker = format!("marker {i}");
        socket
            .send_text(&format!(r#"{{"type":"{marker}","payload":{{}}}}"#))
            .await;
        let mut errors = Vec::new();
        loop {
            let frame = match socket.next_event().await {
                Event::Frame(frame) => frame,
                Event::Closed(code) => {
                    panic!("the socket closed ({code:?}) after fuzz frame {i}: {input:.300?}")
                }
            };
            if frame["type"] != "error" {
                *outcomes
                    .entry(format!("answered {}", frame["type"]))
                    .or_default() += 1;
                continue;
            }
            let payload = &frame["payload"];
            let message = payload["message"].as_str().unwrap_or_default();
            if payload["code"] == "unknown_type" && message.contains(&format!("{marker:?}")) {
                break;
            }
            let code = payload["code"].as_str().unwrap_or_default().to_owned();
            assert!(
                documented.contains(&code),
                "undocumented code {code} for {input:.300?}"
            );
            assert!(!message.is_empty(), "{code} without a message");
            errors.push(code);
        }
        match expected {
            Some(code) => {
                assert_eq!(errors, [code], "frame {i}: {input:.300?}");
                *outcomes.entry(code.to_owned()).or_default() += 1;
            }
            None => {
                // Decoded (or a ping): at most one refusal, from the services.
                assert!(errors.len() <= 1, "frame {i}: {errors:?} for {input:.300?}");
                let what = match (errors.first(), &input) {
                    (None, Input::Ping(_)) => "ping (pong)".to_owned(),
                    (Some(code), _) => format!("decoded, then {code}"),
                    (None, _) => "decoded, accepted".to_owned(),
                };
                *outcomes.entry(what).or_default() += 1;
            }
        }
    }
    let elapsed = started.elapsed();

    // The socket still works.
    socket.post("help", &["still standing"]).await;
    let (echo, _) = socket.until("serverMessages").await;
    assert_eq!(contents(&echo["messages"]), ["still standing"]);
    // The bystander got it, and never saw an error meant for the fuzzer.
    let _ = stop.send(());
    let (mut watcher, mut seen) = watching.await.unwrap();
    let standing = |f: &Value| {
        f["type"] == "serverMessages"
            && f["payload"]["roomId"] == "help"
            && contents(&f["payload"]["messages"]) == ["still standing"]
    };
    while !seen.iter().any(standing) {
        seen.push(watcher.recv().await);
    }
    let posts = seen
        .iter()
        .filter(|f| f["type"] == "serverMessages")
        .count();
    assert!(
        seen.iter().all(|f| f["type"] != "error"),
        "the bystander saw an error frame"
    );
    // The server answers HTTP as before.
    let me = node.get_as("/api/me", Some(&fuzzer.sid)).await;
    assert_eq!(me.status(), 200);

    // A text frame that is not UTF-8 is a WebSocket protocol error: 1007, as documented.
    for bytes in [
        &b"\xff\xfe"[..],
        b"{\"type\":\"sync\",\"payload\":{\"x\":\"\xc3\x28\"}}",
    ] {
        let (mut bad, _) = node.connect(&fuzzer).await;
        let frame = Frame::message(bytes.to_vec(), OpCode::Data(Data::Text), true);
        bad.send_message(Message::Frame(frame)).await;
        assert_eq!(bad.expect_close().await, Some(1007));
    }
    // Other breaches of the WebSocket protocol (a reserved opcode, a fragmented control
    // frame, a reserved bit) are answered with 1002 before the connection ends.
    let breaches: [fn(&mut FrameHeader); 3] = [
        |h| h.opcode = OpCode::Data(Data::Reserved(3)),
        |h| {
            h.opcode = OpCode::Control(Control::Ping);
            h.is_final = false;
        },
        |h| h.rsv1 = true,
    ];
    for breach in breaches {
        let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
        breach(frame.header_mut());
        let (mut bad, _) = node.connect(&fuzzer).await;
        bad.send_message(Message::Frame(frame)).await;
        assert_eq!(bad.expect_close().await, Some(1002));
    }
    socket.post("help", &["after the 1007s"]).await;
    let (echo, _) = socket.until("serverMessages").await;
    assert_eq!(contents(&echo["messages"]), ["after the 1007s"]);

    println!(
        "{frames} fuzz frames ({} MB) in {:.1} s; the bystander got {posts} broadcasts; \
         outcomes: {outcomes:#?}",
        bytes_sent / 1_000_000,
        elapsed.as_secs_f64()
    );
    node.stop().await;
    deployment.cleanup().await;
}
