//! Voice messages meet the transcriber: where the queue finds the audio, and where its text
//! goes.
//!
//! ```text
//! send (kind voice) ─► stored + acked ─► TranscriptionQueue::enqueue (transcription_jobs)
//!   ─► BlobAudio: the upload's bytes as a local file ─► transcriber (e.g. Whisper worker)
//!   ─► PostTranscript: messages.transcript, then a `transcribed` system message
//!      (pushed like any message; search re-reads the voice message when it sees it)
//! ```

use async_trait::async_trait;
use futures_util::StreamExt;
use hearth_core::StoreError;
use hearth_core::files::{BlobError, BlobStore, FileStore};
use hearth_core::messaging::Messaging;
use hearth_core::transcription::{
    AudioSource, LocalAudio, TranscribeError, Transcript, TranscriptSink, TranscriptionJob,
    TranscriptionStore,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;

/// An upload's bytes as a local file: copied from the blob store (local disk or S3) into the
/// staging directory, removed when the transcriber is done with it.
pub struct BlobAudio {
    pub files: Arc<dyn FileStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub staging: PathBuf,
}

#[async_trait]
impl AudioSource for BlobAudio {
    async fn local_audio(&self, file_id: &str) -> Result<LocalAudio, TranscribeError> {
        let unavailable =
            |e: &dyn std::fmt::Display| TranscribeError::FileUnavailable(e.to_string());
        let record = self
            .files
            .files(&[file_id.to_owned()])
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .next()
            .ok_or_else(|| TranscribeError::FileMissing(file_id.to_owned()))?;
        let blob = match self.blobs.get(&record.sha256, None).await {
            Ok(blob) => blob,
            Err(BlobError::NotFound) => return Err(TranscribeError::FileMissing(file_id.into())),
            Err(e) => return Err(unavailable(&e)),
        };
        static COPIES: AtomicU64 = AtomicU64::new(0);
        let copy = COPIES.fetch_add(1, Ordering::Relaxed);
        let path = self
            .staging
            .join(format!("voice-{}-{copy}-{file_id}", std::process::id()));
        // From here on the file is removed on every exit, the error paths included.
        let audio = LocalAudio {
            path,
            content_type: record.content_type,
            temporary: true,
        };
        let mut out = tokio::fs::File::create(&audio.path)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut stream = blob.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unavailable(&e))?;
            out.write_all(&chunk).await.map_err(|e| unavailable(&e))?;
        }
        out.flush().await.map_err(|e| unavailable(&e))?;
        Ok(audio)
    }
}

/// Stores a transcript on its message, then says so in the conversation.
pub struct PostTranscript {
    pub store: Arc<dyn TranscriptionStore>,
    pub messaging: Arc<Messaging>,
}

#[async_trait]
impl TranscriptSink for PostTranscript {
    async fn transcribed(
        &self,
        job: &TranscriptionJob,
        transcript: &Transcript,
    ) -> Result<(), StoreError> {
        // The text is on the message before anyone hears of it: a client or the search
        // tailer that reads the message on seeing the event finds it.
        self.store
            .save_transcript(job.conversation_id, job.seq, &transcript.text)
            .await?;
        self.messaging
            .post_transcript(job.conversation_id, job.seq, &transcript.text)
            .await
            .map_err(|e| match e {
                hearth_core::ImError::Store(e) => e,
                refused => StoreError::Backend(refused.to_string()),
            })
    }

    async fn failed(&self, job: &TranscriptionJob, error: &TranscribeError) {
        tracing::warn!(
            conversation = job.conversation_id,
            seq = job.seq,
            %error,
            "a voice message could not be transcribed"
        );
    }
}
