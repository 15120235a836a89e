//! Voice messages end to end: espeak-ng speaks a known sentence into a WAV file, it is
//! uploaded and sent as a voice message, the offline transcriber (Whisper tiny.en through
//! scripts/transcribe.py) hears it, the transcript arrives in the conversation (on the
//! message and as a `transcribed` system message, pushed to the other member's socket), and a
//! search for one of its words finds the voice message. A voice message stored while nothing
//! queued it is transcribed when a node with a transcriber starts.
//!
//! Needs `espeak-ng` (scripts/services.sh) and the transcriber venv
//! (scripts/install-transcriber.sh, at `$HEARTH_WHISPER_VENV` or `~/.cache/hearth-whisper`);
//! missing either fails the test with what to run — it never skips.

mod common;

use common::{Account, Backend, Deployment, Node};
use futures_util::StreamExt;
use hearth_voice::{Kind, Mode, TranscriberConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SENTENCE: &str = "Please check the database before the meeting on Tuesday.";
/// Loading the model and hearing a few seconds of speech on two busy cores.
const PATIENCE: Duration = Duration::from_secs(120);

fn venv_python() -> PathBuf {
    hearth_voice::installed_python().expect(
        "no transcriber venv: run scripts/install-transcriber.sh (or set HEARTH_WHISPER_VENV)",
    )
}

fn speak(dir: &Path) -> Vec<u8> {
    let wav = dir.join("sentence.wav");
    let spoken = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "-w"])
        .arg(&wav)
        .arg(SENTENCE)
        .status()
        .unwrap_or_else(|e| panic!("cannot run espeak-ng ({e}): run scripts/services.sh"));
    assert!(spoken.success(), "espeak-ng failed: {spoken}");
    std::fs::read(&wav).unwrap()
}

/// The offline Whisper transcriber as a worker process.
fn whisper() -> TranscriberConfig {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/transcribe.py");
    TranscriberConfig {
        kind: Kind::Command,
        command: vec![
            venv_python().display().to_string(),
            script.display().to_string(),
            "--worker".into(),
        ],
        mode: Mode::Worker,
        ..TranscriberConfig::default()
    }
}

/// Ann and Bob, friends, and their direct conversation.
async fn ann_and_bob(node: &Node) -> (Account, Account, i64) {
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    node.befriend(&ann, &bob).await;
    let dm = node.direct(&ann, &bob).await;
    (ann, bob, dm)
}

/// Message `seq` of `dm` as `viewer` pulls it.
async fn pulled_message(node: &Node, viewer: &Account, dm: i64, seq: i64) -> Value {
    let pulled = node
        .ok(
            viewer,
            "GET",
            &format!("/api/conversations/{dm}/messages?after=0"),
            None,
        )
        .await;
    pulled["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == seq)
        .expect("the message")
        .clone()
}

/// Uploads the spoken sentence (made in `dir`) and sends it to `dm` as a voice message:
/// (its seq, the file id).
async fn send_voice(node: &Node, sender: &Account, dm: i64, dir: &Path) -> (i64, String) {
    let uploaded: Value = node
        .http
        .post(node.url("/api/files?name=sentence.wav"))
        .header("cookie", format!("sid={}", sender.sid))
        .header("content-type", "audio/wav")
        .body(speak(dir))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_id = uploaded[0]["id"]
        .as_str()
        .expect("an uploaded file")
        .to_owned();
    let ack = node
        .ok(
            sender,
            "POST",
            &format!("/api/conversations/{dm}/messages"),
            Some(json!({"clientMsgId": "voice-1", "kind": "voice", "content": "", "fileId": file_id})),
        )
        .await;
    (ack["seq"].as_i64().unwrap(), file_id)
}

on_both_backends!(
    a_voice_message_is_transcribed_pushed_and_searchable,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.transcriber = whisper();
        let node = deployment.start().await;
        let (ann, bob, dm) = ann_and_bob(&node).await;
        let mut bob_socket = node.device(&bob, "desktop").await;

        let dir = std::env::temp_dir().join(common::unique("voice"));
        std::fs::create_dir_all(&dir).unwrap();
        let (voice_seq, file_id) = send_voice(&node, &ann, dm, &dir).await;

        // Bob's socket hears of the transcript: a `transcribed` system message naming the
        // voice message.
        let deadline = Instant::now() + PATIENCE;
        let text = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, bob_socket.stream.next())
                .await
                .expect("the transcript arrives in time");
            let Some(Ok(Message::Text(frame))) = next else {
                continue;
            };
            let frame: Value = serde_json::from_str(frame.as_str()).unwrap();
            let message = &frame["payload"];
            if frame["type"] == "message" && message["kind"] == "system" {
                let event: Value =
                    serde_json::from_str(message["content"].as_str().unwrap()).unwrap();
                if event["event"] == "transcribed" {
                    assert_eq!(event["seq"], voice_seq);
                    break event["text"].as_str().unwrap().to_owned();
                }
            }
        };
        let lower = text.to_lowercase();
        for word in ["check", "meeting", "tuesday"] {
            assert!(lower.contains(word), "{word:?} not heard in {text:?}");
        }

        // The voice message itself now carries it, for whoever syncs later.
        let voice = pulled_message(&node, &bob, dm, voice_seq).await;
        assert_eq!(voice["kind"], "voice");
        assert_eq!(voice["file"]["id"], file_id.as_str());
        assert_eq!(voice["transcript"], text.as_str());

        // And search finds the voice message by a word it says.
        let mut found = false;
        while Instant::now() < deadline {
            let page = node
                .ok(&bob, "GET", "/api/search/messages?q=tuesday", None)
                .await;
            let hits = page["hits"].as_array().unwrap();
            if hits.iter().any(|h| h["message"]["seq"] == voice_seq) {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(found, "search finds the voice message by its transcript");
        node.stop().await;
        deployment.cleanup().await;
        let _ = std::fs::remove_dir_all(dir);
    }
);

on_both_backends!(
    a_voice_message_stored_without_a_job_is_transcribed_when_a_node_starts,
    |backend: Backend| async move {
        // No transcriber: the voice message is stored and acknowledged, and nothing queues it
        // (as when a node stops between storing one and queueing its job).
        let mut deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let (ann, bob, dm) = ann_and_bob(&node).await;
        let dir = std::env::temp_dir().join(common::unique("voice_unqueued"));
        std::fs::create_dir_all(&dir).unwrap();
        let (voice_seq, _) = send_voice(&node, &ann, dm, &dir).await;
        node.stop().await;

        // A node that transcribes finds it when it starts.
        deployment.config.transcriber = whisper();
        let node = deployment.start().await;
        let deadline = Instant::now() + PATIENCE;
        let transcript = loop {
            let voice = pulled_message(&node, &bob, dm, voice_seq).await;
            if let Some(text) = voice["transcript"].as_str() {
                break text.to_lowercase();
            }
            assert!(
                Instant::now() < deadline,
                "no transcript within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(transcript.contains("tuesday"), "heard {transcript:?}");
        node.stop().await;
        deployment.cleanup().await;
        let _ = std::fs::remove_dir_all(dir);
    }
);

/// Every message of `conversation` as `viewer` pulls it (one page).
async fn all_messages(node: &Node, viewer: &Account, conversation: i64) -> Value {
    node.ok(
        viewer,
        "GET",
        &format!("/api/conversations/{conversation}/messages?after=0"),
        None,
    )
    .await
}

/// A transcriber that hears the same words in every clip: a one-shot program run per clip, as
/// `[transcriber] mode = "oneshot"` runs one.
fn hears(words: &str) -> TranscriberConfig {
    TranscriberConfig {
        kind: Kind::Command,
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("printf '{{\"text\": \"{words}\"}}\\n'"),
            "transcriber".into(),
        ],
        mode: Mode::Oneshot,
        ..TranscriberConfig::default()
    }
}

on_both_backends!(
    a_transcript_tells_no_one_who_joined_later_what_the_voice_message_says,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let (ann, bob, _) = ann_and_bob(&node).await;
        let cat = node.register("cat").await;
        node.befriend(&ann, &cat).await;
        let group = node
            .ok(
                &ann,
                "POST",
                "/api/groups",
                Some(json!({"name": "voices", "members": [bob.id]})),
            )
            .await["conversationId"]
            .as_i64()
            .unwrap();
        let dir = std::env::temp_dir().join(common::unique("voice_late_joiner"));
        std::fs::create_dir_all(&dir).unwrap();
        let (voice_seq, _) = send_voice(&node, &ann, group, &dir).await;
        // Cat joins after the voice message: it is not hers to read.
        node.ok(
            &ann,
            "POST",
            &format!("/api/groups/{group}/invite"),
            Some(json!({"userIds": [cat.id]})),
        )
        .await;
        node.stop().await;

        deployment.config.transcriber = hears("meet me at noon");
        let node = deployment.start().await;
        let deadline = Instant::now() + PATIENCE;
        let transcript = loop {
            let voice = pulled_message(&node, &bob, group, voice_seq).await;
            if let Some(text) = voice["transcript"].as_str() {
                break text.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no transcript within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            transcript, "meet me at noon",
            "Bob reads it on the voice message"
        );
        let event = |messages: &Value| -> Value {
            let found = messages["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| {
                    m["kind"] == "system" && m["content"].as_str().unwrap().contains("transcribed")
                })
                .expect("the transcribed event")
                .clone();
            serde_json::from_str(found["content"].as_str().unwrap()).unwrap()
        };
        // The event says the transcript is there, not what it says: it went to Cat as well.
        let expected = json!({"event": "transcribed", "seq": voice_seq});
        let eventually = Instant::now() + PATIENCE;
        let cats = loop {
            let cats = all_messages(&node, &cat, group).await;
            if cats["messages"].as_array().unwrap().iter().any(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("transcribed"))
            }) {
                break cats;
            }
            assert!(Instant::now() < eventually, "no transcribed event");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(event(&cats), expected);
        assert_eq!(event(&all_messages(&node, &bob, group).await), expected);
        assert!(
            !cats.to_string().contains("noon"),
            "Cat reads nothing of the voice message: {cats}"
        );
        node.stop().await;
        deployment.cleanup().await;
        let _ = std::fs::remove_dir_all(dir);
    }
);
