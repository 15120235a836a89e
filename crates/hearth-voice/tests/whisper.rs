//! The real transcriber: espeak-ng speaks a known sentence, Whisper (tiny.en through
//! faster-whisper, `scripts/transcribe.py`) must hear its words.
//!
//! Needs `espeak-ng` (scripts/services.sh installs it) and the venv of
//! scripts/install-transcriber.sh, at `$HEARTH_WHISPER_VENV` or `~/.cache/hearth-whisper`.
//! Missing either fails the test with what to run — it never skips.

mod common;

use common::*;
use hearth_core::transcription::{Transcriber, TranscriptionQueue, TranscriptionStore};
use hearth_voice::{CommandTranscriber, Mode};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SENTENCE: &str = "Please check the database before the meeting on Tuesday.";

fn venv_python() -> PathBuf {
    hearth_voice::installed_python().expect(
        "no transcriber venv: run scripts/install-transcriber.sh (or set HEARTH_WHISPER_VENV)",
    )
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/transcribe.py")
}

/// Speaks `SENTENCE` into a WAV file, and the same into OGG/Opus (the browser's recording
/// format) with the venv's PyAV.
fn speak(dir: &Path, python: &Path) -> (PathBuf, PathBuf) {
    let wav = dir.join("sentence.wav");
    let spoken = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "-w"])
        .arg(&wav)
        .arg(SENTENCE)
        .status()
        .unwrap_or_else(|e| panic!("cannot run espeak-ng ({e}): run scripts/services.sh"));
    assert!(spoken.success(), "espeak-ng failed: {spoken}");
    let ogg = dir.join("sentence.ogg");
    let encode = r#"
import sys, av
src, dst = sys.argv[1], sys.argv[2]
with av.open(src) as inp, av.open(dst, "w", format="ogg") as out:
    stream = out.add_stream("libopus", rate=48000)
    stream.layout = "mono"
    resample = av.AudioResampler(format="s16", layout="mono", rate=48000)
    for frame in inp.decode(audio=0):
        for f in resample.resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
"#;
    let encoded = Command::new(python)
        .args(["-c", encode])
        .arg(&wav)
        .arg(&ogg)
        .status()
        .expect("run the venv's python");
    assert!(encoded.success(), "encoding OGG/Opus failed: {encoded}");
    (wav, ogg)
}

fn assert_heard(text: &str) {
    let lower = text.to_lowercase();
    for word in ["check", "meeting", "tuesday"] {
        assert!(lower.contains(word), "{word:?} not in {text:?}");
    }
}

fn whisper_command(python: &Path, worker: bool) -> Vec<String> {
    let mut command = vec![
        python.display().to_string(),
        script().display().to_string(),
        "--threads".into(),
        "2".into(),
    ];
    if worker {
        command.push("--worker".into());
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_worker_hears_espeak_in_wav_and_ogg() {
    let python = venv_python();
    let dir = temp_dir("whisper");
    let (wav, ogg) = speak(&dir, &python);
    let whisper = CommandTranscriber::new(
        &whisper_command(&python, true),
        Mode::Worker,
        Duration::from_secs(120),
        1,
    )
    .unwrap();

    let started = Instant::now();
    let first = whisper.transcribe(&wav, "audio/wav").await.unwrap();
    let cold = started.elapsed();
    assert_heard(&first.text);
    // Whisper writes the word either way ("database", "data base"); both were heard.
    let joined: String = first.text.to_lowercase().split_whitespace().collect();
    assert!(joined.contains("database"), "{first:?}");
    assert_eq!(first.language.as_deref(), Some("en"));
    let duration = first.duration_ms.unwrap_or_default();
    assert!((2_000..8_000).contains(&duration), "{first:?}");

    // The same worker, model already loaded.
    let started = Instant::now();
    let second = whisper
        .transcribe(&ogg, "audio/ogg; codecs=opus")
        .await
        .unwrap();
    let warm = started.elapsed();
    assert_heard(&second.text);
    eprintln!(
        "whisper tiny.en: {duration} ms of speech: {cold:?} with model load, {warm:?} warm; \
         wav {:?}, ogg {:?}",
        first.text, second.text
    );

    // A file the decoder cannot read is that file's failure; the worker carries on.
    let junk = dir.join("junk.ogg");
    std::fs::write(&junk, b"this is not audio").unwrap();
    let error = whisper.transcribe(&junk, "audio/ogg").await.unwrap_err();
    assert!(error.to_string().contains("transcriber failed"), "{error}");
    let again = whisper.transcribe(&wav, "audio/wav").await.unwrap();
    assert_heard(&again.text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_oneshot_hears_espeak() {
    let python = venv_python();
    let dir = temp_dir("whisper_oneshot");
    let (wav, _) = speak(&dir, &python);
    let whisper = CommandTranscriber::new(
        &whisper_command(&python, false),
        Mode::Oneshot,
        Duration::from_secs(120),
        1,
    )
    .unwrap();
    let transcript = whisper.transcribe(&wav, "audio/wav").await.unwrap();
    assert_heard(&transcript.text);
    let missing = whisper
        .transcribe(&dir.join("nothing.wav"), "audio/wav")
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no such file"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_message_is_transcribed_through_the_queue() {
    let python = venv_python();
    let dir = temp_dir("whisper_queue");
    let (wav, _) = speak(&dir, &python);
    let sql = open(&sqlite_url(&dir)).await;
    let (conversation, seqs) = voice_messages(&sql.clone().stores(), 1).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql);
    let config = hearth_voice::TranscriberConfig {
        kind: hearth_voice::Kind::Command,
        command: whisper_command(&python, true),
        ..Default::default()
    };
    let sink = Arc::new(Recorder::default());
    let queue: TranscriptionQueue =
        hearth_voice::start(&config, store.clone(), Arc::new(Files), sink.clone())
            .unwrap()
            .expect("enabled");
    queue
        .enqueue(conversation, seqs[0], &wav.display().to_string())
        .await
        .unwrap();
    eventually(Duration::from_secs(120), "the transcript", || async {
        store
            .transcript(conversation, seqs[0])
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let text = store
        .transcript(conversation, seqs[0])
        .await
        .unwrap()
        .unwrap_or_default();
    assert_heard(&text);
    assert_eq!(sink.texts(), vec![(conversation, seqs[0], text)]);
    queue.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
