//! Shared pieces of the transcription tests: a real SQLite store with real voice messages, an
//! audio source over local files, and a sink that records what it is told.
#![allow(dead_code)]

use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::model::{MessageKind, NewMessage, NewUser};
use hearth_core::store::Stores;
use hearth_core::transcription::{
    AudioSource, LocalAudio, QueueConfig, TranscribeError, Transcript, TranscriptSink,
    TranscriptionJob,
};
use hearth_sql::SqlStore;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hearth_voice_{tag}_{}_{}_{}",
        std::process::id(),
        hearth_core::now_ms(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("hearth.db").display())
}

pub async fn open(url: &str) -> SqlStore {
    SqlStore::open(url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
}

/// Stores `count` voice messages in a fresh room; returns the conversation id and their seqs.
pub async fn voice_messages(stores: &Stores, count: usize) -> (i64, Vec<i64>) {
    let tag = format!("v{}", hearth_core::now_ms() % 1_000_000_000);
    let user = stores
        .users
        .insert_user(NewUser {
            username: format!("speaker_{tag}"),
            email: format!("{tag}@example.com"),
            password_hash: "x".into(),
        })
        .await
        .expect("insert a user");
    let room = stores
        .messages
        .upsert_room(&format!("voice-{tag}"), "Voice")
        .await
        .expect("create a room");
    let messages = (0..count)
        .map(|i| NewMessage {
            kind: MessageKind::Voice,
            content: format!("{{\"fileId\":\"clip-{i}\"}}"),
            ..NewMessage::text(user.as_ref(), String::new())
        })
        .collect();
    let stored = stores
        .messages
        .append_messages(&room.conversation(), messages, hearth_core::now_ms())
        .await
        .expect("store voice messages");
    (room.conversation_id, stored.iter().map(|m| m.seq).collect())
}

/// File ids are local paths; the content type comes from the extension.
pub struct Files;

#[async_trait]
impl AudioSource for Files {
    async fn local_audio(&self, file_id: &str) -> Result<LocalAudio, TranscribeError> {
        let path = PathBuf::from(file_id);
        if !path.exists() {
            return Err(TranscribeError::FileMissing(file_id.into()));
        }
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("ogg") => "audio/ogg",
            _ => "audio/wav",
        };
        Ok(LocalAudio {
            path,
            content_type: content_type.into(),
            temporary: false,
        })
    }
}

/// Records results; can be told to refuse them.
#[derive(Default)]
pub struct Recorder {
    pub transcribed: Mutex<Vec<(i64, i64, String)>>,
    pub failed: Mutex<Vec<(i64, i64, TranscribeError)>>,
}

impl Recorder {
    pub fn texts(&self) -> Vec<(i64, i64, String)> {
        self.transcribed.lock().unwrap().clone()
    }

    pub fn failures(&self) -> Vec<(i64, i64, TranscribeError)> {
        self.failed.lock().unwrap().clone()
    }
}

#[async_trait]
impl TranscriptSink for Recorder {
    async fn transcribed(
        &self,
        job: &TranscriptionJob,
        transcript: &Transcript,
    ) -> Result<(), StoreError> {
        self.transcribed.lock().unwrap().push((
            job.conversation_id,
            job.seq,
            transcript.text.clone(),
        ));
        Ok(())
    }

    async fn failed(&self, job: &TranscriptionJob, error: &TranscribeError) {
        self.failed
            .lock()
            .unwrap()
            .push((job.conversation_id, job.seq, error.clone()));
    }
}

/// Queue settings for tests: short timeout, quick retries and polls.
pub fn quick(concurrency: usize, timeout: Duration, max_attempts: u32) -> QueueConfig {
    QueueConfig {
        concurrency,
        timeout,
        max_attempts,
        retry_delay: Duration::from_millis(100),
        poll_interval: Duration::from_millis(50),
        lease: timeout + Duration::from_secs(1),
    }
}

/// Polls `check` every 50 ms until it holds; panics after `limit` with `what`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Processes whose command line contains `needle` (to check that killed ones are gone).
pub fn processes_with(needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| {
            String::from_utf8_lossy(cmdline)
                .replace('\0', " ")
                .contains(needle)
        })
        .count()
}

/// `["sh", "-c", script, "sh", args...]`: a fake transcriber written in shell.
pub fn shell(script: &str, args: &[&str]) -> Vec<String> {
    let mut command = vec!["sh".into(), "-c".into(), script.into(), "sh".into()];
    command.extend(args.iter().map(|a| a.to_string()));
    command
}
