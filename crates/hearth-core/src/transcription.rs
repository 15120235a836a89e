//! Offline transcription of voice messages, off the message path.
//!
//! A voice message is stored and acknowledged like any other; transcribing it is a job
//! persisted beside it ([`TranscriptionStore`]) and run later by a [`TranscriptionQueue`]:
//! at most `concurrency` at once, each under a timeout, retried a bounded number of times.
//! A slow, failing or crashing transcriber therefore never delays or loses a message, and
//! jobs outlive restarts (a claimed job whose node died is taken again once its lease expires).
//!
//! Results leave through a [`TranscriptSink`] (the glue that posts the `transcribed` system
//! message) and the store (the `transcript` column of the message).

use crate::{StoreError, now_ms};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Longest transcript kept, in characters: bounds what one job can write (a ten-minute voice
/// note is about 9,000 characters).
pub const MAX_TRANSCRIPT_CHARS: usize = 16_000;
/// Longest error message kept on a job.
pub const MAX_ERROR_CHARS: usize = 1_000;

/// The text of one voice clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub text: String,
    /// ISO 639-1 code of the spoken language, when the transcriber says.
    pub language: Option<String>,
    pub duration_ms: Option<i64>,
}

/// Why a clip was not transcribed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscribeError {
    #[error("voice transcription is disabled")]
    Disabled,
    #[error("audio type {0:?} is not supported")]
    Unsupported(String),
    #[error("audio file {0} does not exist")]
    FileMissing(String),
    #[error("audio file unavailable: {0}")]
    FileUnavailable(String),
    #[error("transcription timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot start the transcriber: {0}")]
    Spawn(String),
    #[error("transcriber failed: {0}")]
    Failed(String),
    #[error("transcriber answered nonsense: {0}")]
    Protocol(String),
}

impl TranscribeError {
    /// Whether trying the same job again cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            TranscribeError::Disabled
                | TranscribeError::Unsupported(_)
                | TranscribeError::FileMissing(_)
        )
    }
}

/// Turns speech into text. Implementations run locally (no cloud call); dropping the future
/// must stop the work (the queue drops it on timeout and at shutdown).
#[async_trait]
pub trait Transcriber: Send + Sync + 'static {
    async fn transcribe(
        &self,
        audio: &Path,
        content_type: &str,
    ) -> Result<Transcript, TranscribeError>;
}

/// A voice clip as a local file, for as long as this value lives.
#[derive(Debug)]
pub struct LocalAudio {
    pub path: PathBuf,
    pub content_type: String,
    /// A copy made for the transcriber (fetched from a remote blob store): deleted on drop.
    pub temporary: bool,
}

impl Drop for LocalAudio {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Finds the audio of an uploaded file (the glue implements it over the blob store).
#[async_trait]
pub trait AudioSource: Send + Sync + 'static {
    /// `FileMissing` if the file is gone for good, `FileUnavailable` if it may come back.
    async fn local_audio(&self, file_id: &str) -> Result<LocalAudio, TranscribeError>;
}

/// Where results go.
#[async_trait]
pub trait TranscriptSink: Send + Sync + 'static {
    /// A job was transcribed. Called before the job is marked done, so at least once: a node
    /// that dies in between runs the job again later. Implementations must be idempotent
    /// (e.g. post the system message under a client id derived from the job). An error puts
    /// the job back for another attempt.
    async fn transcribed(
        &self,
        job: &TranscriptionJob,
        transcript: &Transcript,
    ) -> Result<(), StoreError>;

    /// A job gave up (permanent error or out of attempts).
    async fn failed(&self, _job: &TranscriptionJob, _error: &TranscribeError) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "pending" => JobStatus::Pending,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }
}

/// One voice message to transcribe. `(conversation_id, seq)` names the message; `attempts`
/// counts claims, and a claimed job is identified by it (a job taken over from a dead node has
/// a higher count, so the old claim's late answer is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionJob {
    pub conversation_id: i64,
    pub seq: i64,
    pub file_id: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[async_trait]
pub trait TranscriptionStore: Send + Sync + 'static {
    /// Adds a pending job for the message; false (nothing changed) if it already has one.
    async fn enqueue_transcription(
        &self,
        conversation_id: i64,
        seq: i64,
        file_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Voice messages among the `recent` newest rows of the search feed that have a file but
    /// no job, no transcript and were not recalled, as (conversation id, seq, file id): what
    /// a node that stopped between storing a voice message and queueing its job left behind,
    /// and what was sent while no transcriber was configured.
    async fn unqueued_voice_messages(
        &self,
        recent: i64,
    ) -> Result<Vec<(i64, i64, String)>, StoreError>;
    /// Claims up to `limit` due jobs: pending ones whose retry time has come, and running ones
    /// claimed before `stale_before_ms` (their node died). Each claim counts an attempt; the
    /// jobs are returned as claimed. Safe against other nodes claiming at the same time.
    async fn claim_transcriptions(
        &self,
        limit: usize,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> Result<Vec<TranscriptionJob>, StoreError>;
    /// Writes the transcript on the message (before it is announced, so whoever reads the
    /// message on hearing of it sees the text). Idempotent.
    async fn save_transcript(
        &self,
        conversation_id: i64,
        seq: i64,
        text: &str,
    ) -> Result<(), StoreError>;
    /// Writes the transcript on the message and marks the job done, atomically; false if the
    /// claim was lost (another node took the job over), and then nothing is written.
    async fn complete_transcription(
        &self,
        job: &TranscriptionJob,
        transcript: &Transcript,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Records a failed attempt: pending again from `retry_at_ms`, or failed for good.
    async fn fail_transcription(
        &self,
        job: &TranscriptionJob,
        error: &str,
        retry_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Puts a claimed job back, due now, without counting the attempt (shutting down).
    async fn release_transcription(
        &self,
        job: &TranscriptionJob,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    async fn transcription_job(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<TranscriptionJob>, StoreError>;
    /// The stored transcript of a message, if it has one.
    async fn transcript(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<String>, StoreError>;
}

/// How the queue runs jobs.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Jobs running at once on this node.
    pub concurrency: usize,
    /// Longest one attempt may take (fetching the audio included).
    pub timeout: Duration,
    /// Attempts before a job is failed for good.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_delay: Duration,
    /// How often to look for due work without being woken (retries, other nodes' leftovers).
    pub poll_interval: Duration,
    /// A running job not finished this long after its claim counts as abandoned (its node
    /// died) and is taken again. Must exceed `timeout`.
    pub lease: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: 1,
            timeout: Duration::from_secs(120),
            max_attempts: 3,
            retry_delay: Duration::from_secs(30),
            poll_interval: Duration::from_secs(10),
            lease: Duration::from_secs(180),
        }
    }
}

struct Context {
    store: Arc<dyn TranscriptionStore>,
    transcriber: Arc<dyn Transcriber>,
    audio: Arc<dyn AudioSource>,
    sink: Arc<dyn TranscriptSink>,
    config: QueueConfig,
}

/// Runs transcription jobs in the background until [`TranscriptionQueue::shutdown`].
pub struct TranscriptionQueue {
    store: Arc<dyn TranscriptionStore>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl TranscriptionQueue {
    /// Starts the dispatcher; it first queues recent voice messages that never got a job, then
    /// picks up jobs left pending by an earlier run.
    pub fn start(
        store: Arc<dyn TranscriptionStore>,
        transcriber: Arc<dyn Transcriber>,
        audio: Arc<dyn AudioSource>,
        sink: Arc<dyn TranscriptSink>,
        mut config: QueueConfig,
    ) -> TranscriptionQueue {
        config.concurrency = config.concurrency.max(1);
        config.max_attempts = config.max_attempts.max(1);
        // A lease shorter than an attempt would hand live jobs to a second runner.
        config.lease = config.lease.max(config.timeout + Duration::from_secs(1));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let context = Arc::new(Context {
            store: store.clone(),
            transcriber,
            audio,
            sink,
            config,
        });
        let dispatcher = tokio::spawn(dispatch(context, wake.clone(), stopped));
        TranscriptionQueue {
            store,
            wake,
            stop,
            dispatcher: Mutex::new(Some(dispatcher)),
        }
    }

    /// Persists a job for a stored voice message and wakes the dispatcher. Idempotent: false
    /// if the message already had a job.
    pub async fn enqueue(
        &self,
        conversation_id: i64,
        seq: i64,
        file_id: &str,
    ) -> Result<bool, StoreError> {
        let added = self
            .store
            .enqueue_transcription(conversation_id, seq, file_id, now_ms())
            .await?;
        self.wake.notify_one();
        Ok(added)
    }

    /// Stops taking jobs, cancels running attempts (their processes are killed) and puts
    /// those jobs back as pending, uncounted, for the next start.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = self
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

impl Drop for TranscriptionQueue {
    fn drop(&mut self) {
        // Without an explicit shutdown the dispatcher still stops and running attempts put
        // their jobs back, as long as the runtime lives; otherwise jobs return after their
        // lease.
        let _ = self.stop.send(true);
    }
}

/// Feed rows a starting queue looks back through for voice messages without a job: far more
/// than the messages a node has stored but not yet queued when it stops.
const RECOVERED_FEED_ROWS: i64 = 10_000;

/// Queues the voice messages that were stored but never queued (the node stopped between the
/// two, or no transcriber was configured then). Several nodes starting at once queue each
/// message once: a job is keyed by its message.
async fn queue_the_unqueued(store: &dyn TranscriptionStore) {
    let found = match store.unqueued_voice_messages(RECOVERED_FEED_ROWS).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "cannot look for voice messages without a transcription job");
            return;
        }
    };
    let mut queued = 0;
    for (conversation_id, seq, file_id) in found {
        match store
            .enqueue_transcription(conversation_id, seq, &file_id, now_ms())
            .await
        {
            Ok(added) => queued += usize::from(added),
            Err(error) => {
                tracing::warn!(%error, "queueing a voice message for transcription failed")
            }
        }
    }
    if queued > 0 {
        tracing::info!(
            queued,
            "queued voice messages that had no transcription job"
        );
    }
}

async fn dispatch(context: Arc<Context>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    queue_the_unqueued(context.store.as_ref()).await;
    let slots = Arc::new(Semaphore::new(context.config.concurrency));
    let mut running = JoinSet::new();
    let lease_ms = context.config.lease.as_millis() as i64;
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        while running.try_join_next().is_some() {}
        let now = now_ms();
        match context
            .store
            .claim_transcriptions(1, now, now - lease_ms)
            .await
        {
            Ok(jobs) => {
                if let Some(job) = jobs.into_iter().next() {
                    running.spawn(run_job(context.clone(), job, permit, stop.clone()));
                    continue;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot claim transcription jobs; retrying"),
        }
        drop(permit);
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(context.config.poll_interval) => {}
            () = stopped(&mut stop) => break,
        }
    }
    // Running jobs saw the stop too: each releases its job and ends.
    while running.join_next().await.is_some() {}
}

/// Resolves once the queue is stopping (or gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrowed value is dropped here: it is not `Send` and must not live in a task's state.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn run_job(
    context: Arc<Context>,
    job: TranscriptionJob,
    _slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let config = &context.config;
    let outcome = if job.attempts > config.max_attempts {
        // Taken over from a node that died during the last attempt: a clip that kills its
        // runner must not be retried forever.
        Err(TranscribeError::Failed(format!(
            "abandoned after {} attempts",
            config.max_attempts
        )))
    } else {
        tokio::select! {
            result = tokio::time::timeout(config.timeout, attempt(&context, &job)) => {
                result.unwrap_or(Err(TranscribeError::Timeout(config.timeout)))
            }
            () = stopped(&mut stop) => {
                // The attempt's future is dropped here, which kills its process.
                if let Err(error) = context.store.release_transcription(&job, now_ms()).await {
                    tracing::warn!(%error, "cannot release a transcription job; it returns after its lease");
                }
                return;
            }
        }
    };
    let at = now_ms();
    let error = match outcome {
        Ok(mut transcript) => {
            transcript.text = bounded(transcript.text.trim(), MAX_TRANSCRIPT_CHARS);
            match context.sink.transcribed(&job, &transcript).await {
                Ok(()) => {
                    match context
                        .store
                        .complete_transcription(&job, &transcript, now_ms())
                        .await
                    {
                        Ok(true) => tracing::debug!(
                            conversation = job.conversation_id,
                            seq = job.seq,
                            chars = transcript.text.chars().count(),
                            "voice message transcribed"
                        ),
                        Ok(false) => tracing::info!(
                            conversation = job.conversation_id,
                            seq = job.seq,
                            "transcription finished after another node took the job over"
                        ),
                        // The sink already has it; the job returns after its lease and the
                        // idempotent sink absorbs the repeat.
                        Err(error) => tracing::warn!(%error, "cannot record a transcript"),
                    }
                    return;
                }
                Err(error) => TranscribeError::Failed(format!("reporting the transcript: {error}")),
            }
        }
        Err(error) => error,
    };
    let give_up = error.is_permanent() || job.attempts >= config.max_attempts;
    let retry_at = (!give_up).then(|| at + backoff(config.retry_delay, job.attempts));
    tracing::warn!(
        conversation = job.conversation_id,
        seq = job.seq,
        attempt = job.attempts,
        %error,
        will_retry = !give_up,
        "transcription attempt failed"
    );
    let message = bounded(&error.to_string(), MAX_ERROR_CHARS);
    match context
        .store
        .fail_transcription(&job, &message, retry_at, now_ms())
        .await
    {
        Ok(true) if give_up => context.sink.failed(&job, &error).await,
        Ok(_) => {}
        Err(store_error) => {
            tracing::warn!(%store_error, "cannot record a failed transcription; it returns after its lease")
        }
    }
}

async fn attempt(context: &Context, job: &TranscriptionJob) -> Result<Transcript, TranscribeError> {
    let audio = context.audio.local_audio(&job.file_id).await?;
    context
        .transcriber
        .transcribe(&audio.path, &audio.content_type)
        .await
}

/// `delay · 2^(attempt-1)`, capped at an hour.
fn backoff(delay: Duration, attempt: u32) -> i64 {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    let delay = delay.saturating_mul(factor).min(Duration::from_secs(3600));
    delay.as_millis() as i64
}

fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text.to_owned(),
    }
}

/// A transcriber for deployments without one: every job fails at once, for good.
pub struct Disabled;

#[async_trait]
impl Transcriber for Disabled {
    async fn transcribe(&self, _: &Path, _: &str) -> Result<Transcript, TranscribeError> {
        Err(TranscribeError::Disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let d = Duration::from_secs(30);
        assert_eq!(backoff(d, 1), 30_000);
        assert_eq!(backoff(d, 2), 60_000);
        assert_eq!(backoff(d, 3), 120_000);
        assert_eq!(backoff(d, 40), 3_600_000);
    }

    #[test]
    fn bounded_cuts_on_characters() {
        assert_eq!(bounded("héllo", 2), "hé");
        assert_eq!(bounded("hi", 5), "hi");
        assert_eq!(bounded("语音消息", 3), "语音消");
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("x"), None);
        assert!(TranscribeError::FileMissing("f".into()).is_permanent());
        assert!(!TranscribeError::Timeout(Duration::from_secs(1)).is_permanent());
    }
}
