//! Offline voice transcription for Hearth.
//!
//! The core owns the [`Transcriber`] trait and the job queue
//! ([`hearth_core::transcription`]); this crate holds the implementations and their
//! configuration (`[transcriber]` in the config file):
//!
//! * [`CommandTranscriber`] runs a local program — normally `scripts/transcribe.py --worker`,
//!   faster-whisper on the CPU — with bounded output, a timeout and a kill of its whole
//!   process group, and restarts a worker that crashed;
//! * [`Disabled`] fails every job at once (`kind = "none"`, the default).
//!
//! [`start`] is the constructor the server calls: it builds the transcriber from the
//! configuration and starts the queue on the given store, audio source and result sink.

mod command;

pub use command::{CommandTranscriber, MAX_LINE_BYTES, Mode};
pub use hearth_core::transcription::{Disabled, Transcriber};

use hearth_core::transcription::{
    AudioSource, QueueConfig, TranscriptSink, TranscriptionQueue, TranscriptionStore,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Which transcriber a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// No transcription: voice messages keep no transcript.
    #[default]
    None,
    /// A local program (see [`CommandTranscriber`]).
    Command,
}

/// `[transcriber]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscriberConfig {
    pub kind: Kind,
    /// Program and arguments, e.g.
    /// `["/root/.cache/hearth-whisper/bin/python", "scripts/transcribe.py", "--worker"]`.
    pub command: Vec<String>,
    /// `worker` (one long-lived process per concurrent job) or `oneshot` (a process per clip,
    /// the file path appended to `command`).
    pub mode: Mode,
    /// Longest one transcription may take, a worker's start-up included.
    pub timeout_secs: u64,
    /// Transcriptions running at once on a node (each worker holds a model: ~260 MB for
    /// tiny.en).
    pub concurrency: usize,
    /// Attempts per voice message before it is given up.
    pub max_attempts: u32,
}

impl Default for TranscriberConfig {
    fn default() -> Self {
        TranscriberConfig {
            kind: Kind::None,
            command: Vec::new(),
            mode: Mode::Worker,
            timeout_secs: 120,
            concurrency: 1,
            max_attempts: 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("transcriber.command must name a program when transcriber.kind is \"command\"")]
    MissingCommand,
    #[error("transcriber.timeout_secs must be 1..=3600")]
    BadTimeout,
    #[error("transcriber.concurrency must be 1..=64")]
    BadConcurrency,
    #[error("transcriber.max_attempts must be 1..=100")]
    BadAttempts,
}

impl TranscriberConfig {
    pub fn enabled(&self) -> bool {
        self.kind != Kind::None
    }

    pub fn check(&self) -> Result<(), VoiceError> {
        if self.kind == Kind::Command && self.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(VoiceError::MissingCommand);
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return Err(VoiceError::BadTimeout);
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(VoiceError::BadConcurrency);
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(VoiceError::BadAttempts);
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The transcriber this configuration describes.
    pub fn transcriber(&self) -> Result<Arc<dyn Transcriber>, VoiceError> {
        self.check()?;
        Ok(match self.kind {
            Kind::None => Arc::new(Disabled),
            Kind::Command => Arc::new(
                CommandTranscriber::new(&self.command, self.mode, self.timeout(), self.concurrency)
                    .map_err(|_| VoiceError::MissingCommand)?,
            ),
        })
    }

    /// The queue's settings: the same timeout, concurrency and attempts.
    pub fn queue_config(&self) -> QueueConfig {
        QueueConfig {
            concurrency: self.concurrency,
            timeout: self.timeout(),
            max_attempts: self.max_attempts,
            // An abandoned job is retaken a minute after its attempt must have ended.
            lease: self.timeout() + Duration::from_secs(60),
            ..QueueConfig::default()
        }
    }
}

/// The Python of the venv `scripts/install-transcriber.sh` makes: `$HEARTH_WHISPER_VENV`, or
/// `~/.cache/hearth-whisper`. `None` when it is not installed there.
pub fn installed_python() -> Option<std::path::PathBuf> {
    let venv = std::env::var_os("HEARTH_WHISPER_VENV")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| std::path::PathBuf::from(home).join(".cache/hearth-whisper"))
        })?;
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// Starts transcribing: `None` when the configuration disables it (then nothing should be
/// enqueued). The queue picks up jobs left pending by an earlier run at once.
pub fn start(
    config: &TranscriberConfig,
    store: Arc<dyn TranscriptionStore>,
    audio: Arc<dyn AudioSource>,
    sink: Arc<dyn TranscriptSink>,
) -> Result<Option<TranscriptionQueue>, VoiceError> {
    if !config.enabled() {
        config.check()?;
        return Ok(None);
    }
    let transcriber = config.transcriber()?;
    Ok(Some(TranscriptionQueue::start(
        store,
        transcriber,
        audio,
        sink,
        config.queue_config(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_disabled_and_valid() {
        let config = TranscriberConfig::default();
        assert!(!config.enabled());
        assert!(config.check().is_ok());
        assert_eq!(config.queue_config().timeout, Duration::from_secs(120));
        assert_eq!(config.queue_config().concurrency, 1);
    }

    #[test]
    fn command_kind_needs_a_program() {
        let config = TranscriberConfig {
            kind: Kind::Command,
            ..TranscriberConfig::default()
        };
        assert!(matches!(config.check(), Err(VoiceError::MissingCommand)));
        let config = TranscriberConfig {
            command: vec!["true".into()],
            concurrency: 0,
            ..config
        };
        assert!(matches!(config.check(), Err(VoiceError::BadConcurrency)));
    }
}
