//! Malformed input never hurts: each bad frame gets an `error` frame, the socket keeps
//! working, other clients notice nothing, and nothing from a refused frame is stored.

mod common;

use common::{Backend, Deployment, contents, room};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn frame(kind: &str, payload: Value) -> String {
    json!({"type": kind, "payload": payload}).to_string()
}

fn post_frame(room_id: Value, messages: Value) -> String {
    frame(
        "clientMessages",
        json!({"roomId": room_id, "messages": messages}),
    )
}

fn texts(n: usize, content: &str) -> Value {
    Value::Array((0..n).map(|_| json!({"content": content})).collect())
}

on_both_backends!(
    malformed_frames_get_error_frames,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let attacker = node.register("mallory").await;
        let bystander = node.register("bystander").await;
        let (mut bad, _) = node.connect(&attacker).await;
        let (mut other, _) = node.connect(&bystander).await;

        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let cases: Vec<(&str, Message, &str)> = vec![
            ("not JSON", Message::text("hello?"), "invalid_json"),
            (
                "truncated JSON",
                Message::text(r#"{"type":"clientMessages","payload":{"#),
                "invalid_json",
            ),
            ("deeply nested JSON", Message::text(deep), "invalid_json"),
            (
                "a key given twice",
                Message::text(
                    r#"{"type":"clientMessages","payload":{"roomId":"general","roomId":"nope","messages":[{"content":"twice"}]}}"#,
                ),
                "invalid_json",
            ),
            ("array instead of object", Message::text("[]"), "bad_frame"),
            (
                "missing payload",
                Message::text(r#"{"type":"clientMessages"}"#),
                "bad_frame",
            ),
            (
                "missing type",
                Message::text(r#"{"payload":{}}"#),
                "bad_frame",
            ),
            (
                "type is a number",
                Message::text(r#"{"type":7,"payload":{}}"#),
                "bad_frame",
            ),
            (
                "payload is an array",
                Message::text(r#"{"type":"clientMessages","payload":[]}"#),
                "bad_frame",
            ),
            (
                "extra envelope key",
                Message::text(r#"{"type":"clientMessages","payload":{},"x":1}"#),
                "bad_frame",
            ),
            (
                "unknown type",
                Message::text(frame("deleteEverything", json!({}))),
                "unknown_type",
            ),
            (
                "server frame type from a client",
                Message::text(frame("hello", json!({}))),
                "unknown_type",
            ),
            (
                "missing messages",
                Message::text(frame("clientMessages", json!({"roomId": "general"}))),
                "bad_payload",
            ),
            (
                "extra payload key",
                Message::text(frame(
                    "clientMessages",
                    json!({"roomId": "general", "messages": [], "admin": true}),
                )),
                "bad_payload",
            ),
            (
                "extra message key",
                Message::text(post_frame(
                    json!("general"),
                    json!([{"content": "x", "user": 1}]),
                )),
                "bad_payload",
            ),
            (
                "content is a number",
                Message::text(post_frame(json!("general"), json!([{"content": 5}]))),
                "bad_payload",
            ),
            (
                "roomId is a number",
                Message::text(post_frame(json!(1), texts(1, "x"))),
                "bad_payload",
            ),
            (
                "unknown room",
                Message::text(post_frame(json!("no-such-room"), texts(1, "x"))),
                "unknown_room",
            ),
            (
                "empty content",
                Message::text(post_frame(json!("general"), texts(1, ""))),
                "empty_content",
            ),
            (
                "blank content",
                Message::text(post_frame(json!("general"), texts(1, " \n\t "))),
                "empty_content",
            ),
            (
                "one good, one empty",
                Message::text(post_frame(
                    json!("general"),
                    json!([{"content": "sneaky"}, {"content": ""}]),
                )),
                "empty_content",
            ),
            (
                "only zero-width spaces",
                Message::text(post_frame(json!("general"), texts(1, "\u{200B}\u{200B}"))),
                "empty_content",
            ),
            (
                "a NUL and an escape sequence",
                Message::text(post_frame(json!("general"), texts(1, "a\u{0}\u{1b}[31m"))),
                "bad_content",
            ),
            (
                "content over 4000 characters",
                Message::text(post_frame(json!("general"), texts(1, &"é".repeat(4_001)))),
                "content_too_long",
            ),
            (
                "no messages",
                Message::text(post_frame(json!("general"), json!([]))),
                "no_messages",
            ),
            (
                "101 messages",
                Message::text(post_frame(json!("general"), texts(101, "spam"))),
                "too_many_messages",
            ),
            (
                "history with a malformed id",
                Message::text(frame(
                    "requestRoomHistory",
                    json!({"roomId": "general", "firstMessageId": "yesterday"}),
                )),
                "bad_payload",
            ),
            (
                "history of an unknown room",
                Message::text(frame(
                    "requestRoomHistory",
                    json!({"roomId": "nope", "firstMessageId": "1-1"}),
                )),
                "unknown_room",
            ),
            (
                "history without an id",
                Message::text(frame("requestRoomHistory", json!({"roomId": "general"}))),
                "bad_payload",
            ),
            (
                "binary frame",
                Message::binary(vec![0u8, 159, 146, 150]),
                "binary_not_supported",
            ),
            (
                "frame over the soft size limit",
                Message::text(post_frame(
                    json!("general"),
                    texts(1, &"x".repeat(1_100_000)),
                )),
                "frame_too_large",
            ),
        ];
        assert!(cases.len() >= 15);
        for (i, (name, message, code)) in cases.into_iter().enumerate() {
            bad.send_message(message).await;
            let error = bad.expect("error").await;
            assert_eq!(error["code"], code, "case {name:?}: {error}");
            assert!(
                error["message"].as_str().is_some_and(|m| !m.is_empty()),
                "case {name:?} explains itself"
            );
            // The socket still works: a valid message goes through and comes back.
            let ok = format!("still-alive-{i}");
            bad.post("random", &[&ok]).await;
            let echo = bad.expect("serverMessages").await;
            assert_eq!(
                contents(&echo["messages"]),
                std::slice::from_ref(&ok),
                "after case {name:?}"
            );
            // The bystander sees only the valid messages, never an error or a refused one.
            let seen = other.expect("serverMessages").await;
            assert_eq!(
                contents(&seen["messages"]),
                [ok],
                "bystander after case {name:?}"
            );
        }
        // Exactly 4000 characters is fine.
        let longest = "字".repeat(4_000);
        bad.post("general", &[&longest]).await;
        assert_eq!(
            contents(&bad.expect("serverMessages").await["messages"]),
            std::slice::from_ref(&longest)
        );
        assert_eq!(
            contents(&other.expect("serverMessages").await["messages"]),
            std::slice::from_ref(&longest)
        );

        // Nothing from a refused frame was stored: general holds only the longest message.
        let (_fresh, hello) = node.connect(&bystander).await;
        assert_eq!(contents(&room(&hello, "general")["messages"]), [longest]);

        // Over the hard limit the server closes with 1009 instead of buffering it; others go on.
        // The server may stop reading mid-frame, so the client's write itself may fail.
        let huge = post_frame(json!("general"), texts(1, &"x".repeat(3 << 20)));
        let _ = futures_util::SinkExt::send(&mut bad.stream, Message::text(huge)).await;
        assert_eq!(bad.expect_close().await, Some(1009));
        other.post("help", &["unaffected"]).await;
        assert_eq!(
            contents(&other.expect("serverMessages").await["messages"]),
            ["unaffected"]
        );
        other.expect_silence(Duration::from_millis(100)).await;

        node.stop().await;
        deployment.cleanup().await;
    }
);
