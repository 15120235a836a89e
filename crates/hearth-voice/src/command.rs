//! [`CommandTranscriber`]: speech to text by an external program, such as
//! `scripts/transcribe.py` (faster-whisper).
//!
//! Two ways to run the program:
//!
//! * **worker** (default): the program is started once and kept: it prints a line
//!   `{"ready": true}` when its model is loaded, then answers each request line
//!   `{"path": FILE, "contentType": TYPE}` on stdin with one line on stdout, either
//!   `{"text", "language"?, "durationMs"?}` or `{"error": "…"}` (that file failed, the worker
//!   lives on). Loading a model costs seconds; a worker pays it once.
//! * **oneshot**: the program is run once per clip with the file path as its last argument,
//!   prints one result line as above and exits 0 (non-zero: failure, stderr says why).
//!
//! Whatever the program does, Hearth stays safe: stdout is read with a bound per line, stderr
//! is drained (its tail kept for error messages), and each process runs in its own process
//! group that is killed (SIGKILL) on timeout, on a protocol error, when a worker crashed, and
//! when the caller drops the call. A dead or killed worker is replaced on the next call.

use async_trait::async_trait;
use hearth_core::transcription::{TranscribeError, Transcriber, Transcript};
use serde::Deserialize;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// Longest stdout line accepted from the program (a transcript is far shorter).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// How much of the program's stderr is kept to explain a failure.
const STDERR_TAIL_BYTES: usize = 2_048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A long-lived process per concurrent job; the model loads once.
    #[default]
    Worker,
    /// One process per clip, the path as its last argument.
    Oneshot,
}

/// Runs a configured program to transcribe. See the module docs for the protocol.
pub struct CommandTranscriber {
    program: String,
    args: Vec<String>,
    mode: Mode,
    timeout: Duration,
    /// Calls running at once, and so workers alive at once.
    slots: Semaphore,
    /// Workers waiting for the next call.
    idle: Mutex<Vec<Worker>>,
}

impl CommandTranscriber {
    /// `command` is the program and its arguments; `timeout` bounds each call (a worker's
    /// start-up included); at most `concurrency` calls (and workers) run at once.
    pub fn new(
        command: &[String],
        mode: Mode,
        timeout: Duration,
        concurrency: usize,
    ) -> Result<CommandTranscriber, TranscribeError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| TranscribeError::Spawn("no program configured".into()))?;
        Ok(CommandTranscriber {
            program: program.clone(),
            args: args.to_vec(),
            mode,
            timeout,
            slots: Semaphore::new(concurrency.max(1)),
            idle: Mutex::default(),
        })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that children it starts die with it.
            .process_group(0)
            .kill_on_drop(true);
        command
    }

    async fn oneshot(
        &self,
        audio: &Path,
        deadline: Instant,
    ) -> Result<Transcript, TranscribeError> {
        let mut command = self.command();
        command.arg(audio).stdin(Stdio::null());
        let mut process = Process::spawn(command, &self.program)?;
        let Some(mut stdout) = process.child.stdout.take() else {
            return Err(TranscribeError::Spawn("no stdout pipe".into()));
        };
        let run = async {
            // Read at most one byte past the bound, so an endless writer cannot grow memory.
            let mut output = Vec::new();
            (&mut stdout)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_to_end(&mut output)
                .await
                .map_err(|e| TranscribeError::Failed(format!("reading its output: {e}")))?;
            if output.len() > MAX_LINE_BYTES {
                return Err(TranscribeError::Protocol(format!(
                    "more than {MAX_LINE_BYTES} bytes of output"
                )));
            }
            let status = process
                .child
                .wait()
                .await
                .map_err(|e| TranscribeError::Failed(format!("waiting for it: {e}")))?;
            Ok((output, status))
        };
        let (output, status) = match timeout_at(deadline, run).await {
            Ok(Ok(done)) => done,
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(TranscribeError::Timeout(self.timeout)),
        };
        if !status.success() {
            let tail = process.stderr_tail().await;
            return Err(TranscribeError::Failed(format!("{status}: {tail}")));
        }
        let line = output
            .split(|b| *b == b'\n')
            .find(|line| !line.iter().all(u8::is_ascii_whitespace))
            .ok_or_else(|| TranscribeError::Protocol("no output".into()))?;
        match parse_answer(line)? {
            Answer::Transcript(transcript) => Ok(transcript),
            Answer::Error(message) => Err(TranscribeError::Failed(message)),
            Answer::Ready => Err(TranscribeError::Protocol(
                "a worker's ready line from a oneshot program".into(),
            )),
        }
    }

    async fn via_worker(
        &self,
        audio: &Path,
        content_type: &str,
        deadline: Instant,
    ) -> Result<Transcript, TranscribeError> {
        let path = audio
            .to_str()
            .ok_or_else(|| TranscribeError::FileUnavailable("path is not UTF-8".into()))?;
        let request = serde_json::json!({"path": path, "contentType": content_type});
        let reused = self.take_idle();
        let mut worker = match reused {
            Some(worker) => worker,
            None => {
                match timeout_at(deadline, Worker::start(self.command(), &self.program)).await {
                    Ok(started) => started?,
                    Err(_) => return Err(TranscribeError::Timeout(self.timeout)),
                }
            }
        };
        // On timeout or crash the worker is dropped here, which kills it: its state is
        // unknown, and the next call starts a fresh one.
        match timeout_at(deadline, worker.request(&request)).await {
            Ok(Ok(Answer::Transcript(transcript))) => {
                self.put_idle(worker);
                Ok(transcript)
            }
            Ok(Ok(Answer::Error(message))) => {
                // That file failed; the worker answered properly and stays.
                self.put_idle(worker);
                Err(TranscribeError::Failed(message))
            }
            Ok(Ok(Answer::Ready)) => Err(TranscribeError::Protocol(
                "a second ready line from the worker".into(),
            )),
            Ok(Err(error)) => Err(worker.explain(error).await),
            Err(_) => Err(TranscribeError::Timeout(self.timeout)),
        }
    }

    fn take_idle(&self) -> Option<Worker> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut worker) = idle.pop() {
            if worker.is_alive() {
                return Some(worker);
            }
            tracing::warn!(program = %self.program, "transcriber worker died while idle; starting another");
        }
        None
    }

    fn put_idle(&self, worker: Worker) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(worker);
    }
}

#[async_trait]
impl Transcriber for CommandTranscriber {
    async fn transcribe(
        &self,
        audio: &Path,
        content_type: &str,
    ) -> Result<Transcript, TranscribeError> {
        if !is_audio(content_type) {
            return Err(TranscribeError::Unsupported(content_type.to_owned()));
        }
        let deadline = Instant::now() + self.timeout;
        let _slot = match timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err(TranscribeError::Spawn("transcriber closed".into())),
            Err(_) => return Err(TranscribeError::Timeout(self.timeout)),
        };
        match self.mode {
            Mode::Oneshot => self.oneshot(audio, deadline).await,
            Mode::Worker => self.via_worker(audio, content_type, deadline).await,
        }
    }
}

/// Types worth handing to a decoder: audio, audio tracks of video containers, and unknown.
fn is_audio(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || essence == "application/ogg"
        || essence == "application/octet-stream"
}

/// One line from the program.
#[derive(Debug, PartialEq)]
enum Answer {
    Ready,
    Transcript(Transcript),
    Error(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    ready: Option<bool>,
    text: Option<String>,
    language: Option<String>,
    duration_ms: Option<f64>,
    error: Option<String>,
}

fn parse_answer(line: &[u8]) -> Result<Answer, TranscribeError> {
    let shown = || String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    let parsed: Line = serde_json::from_slice(line)
        .map_err(|e| TranscribeError::Protocol(format!("{e} in {:?}", shown())))?;
    if let Some(error) = parsed.error {
        return Ok(Answer::Error(error.chars().take(1_000).collect()));
    }
    if parsed.ready == Some(true) {
        return Ok(Answer::Ready);
    }
    let text = parsed.text.ok_or_else(|| {
        TranscribeError::Protocol(format!("no \"text\" or \"error\" in {:?}", shown()))
    })?;
    Ok(Answer::Transcript(Transcript {
        text,
        language: parsed.language.filter(|l| !l.is_empty()),
        duration_ms: parsed
            .duration_ms
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| d as i64),
    }))
}

/// Reads one line of at most `max` bytes (without its newline). `None` at end of output; a
/// longer line is an error (and the stream is then of no further use).
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            // A partial last line is a process that died mid-answer: not an answer.
            return Ok(None);
        }
        let (chunk, found) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (&buffer[..end], true),
            None => (buffer, false),
        };
        if line.len() + chunk.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line longer than {max} bytes"),
            ));
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(found);
        reader.consume(used);
        if found {
            return Ok(Some(line));
        }
    }
}

/// A started program: its process group dies with this value (stragglers included).
struct Process {
    /// Declared before `child`: fields drop in order, so the group is killed while the
    /// leader's pid is still reserved (not yet reaped).
    _group: GroupKiller,
    child: Child,
    stderr: Option<JoinHandle<()>>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
}

impl Process {
    fn spawn(mut command: Command, program: &str) -> Result<Process, TranscribeError> {
        let mut child = command
            .spawn()
            .map_err(|e| TranscribeError::Spawn(format!("{program}: {e}")))?;
        let group = GroupKiller(child.id());
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().map(|pipe| {
            let tail = stderr_tail.clone();
            let program = program.to_owned();
            tokio::spawn(drain_stderr(pipe, tail, program))
        });
        Ok(Process {
            _group: group,
            child,
            stderr,
            stderr_tail,
        })
    }

    /// The end of what the program wrote on stderr, once it has been read (briefly waited for:
    /// a process that just died may still have some in the pipe).
    async fn stderr_tail(&mut self) -> String {
        if let Some(handle) = self.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), handle).await;
        }
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let text = String::from_utf8_lossy(&tail).trim().to_owned();
        if text.is_empty() {
            "no message on stderr".into()
        } else {
            text
        }
    }
}

/// Kills a process group (SIGKILL) when dropped.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) else {
            return;
        };
        if pid > 0 {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours. The group id
            // is the pid of a child we spawned with process_group(0). If that child has been
            // reaped already, the id still names its group while any member lives, and is
            // otherwise free (ESRCH): Linux hands out pids in sequence, so it is not reused
            // this soon.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// Copies stderr into the log and keeps its last bytes; ends at end of stream.
async fn drain_stderr(
    mut pipe: tokio::process::ChildStderr,
    tail: Arc<Mutex<Vec<u8>>>,
    program: String,
) {
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let chunk = &buffer[..n];
                tracing::debug!(program = %program, "{}", String::from_utf8_lossy(chunk).trim_end());
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                tail.extend_from_slice(chunk);
                if tail.len() > STDERR_TAIL_BYTES {
                    let cut = tail.len() - STDERR_TAIL_BYTES;
                    tail.drain(..cut);
                }
            }
        }
    }
}

/// A long-lived transcriber process with its model loaded.
struct Worker {
    process: Process,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// What broke while talking to a worker.
enum WorkerFault {
    Io(std::io::Error),
    Closed,
    Protocol(TranscribeError),
}

impl Worker {
    async fn start(mut command: Command, program: &str) -> Result<Worker, TranscribeError> {
        command.stdin(Stdio::piped());
        let mut process = Process::spawn(command, program)?;
        let (Some(stdin), Some(stdout)) = (process.child.stdin.take(), process.child.stdout.take())
        else {
            return Err(TranscribeError::Spawn("no stdio pipes".into()));
        };
        let mut worker = Worker {
            process,
            stdin,
            stdout: BufReader::new(stdout),
        };
        match worker.read_answer().await {
            Ok(Answer::Ready) => {
                tracing::info!(program, "transcriber worker ready");
                Ok(worker)
            }
            Ok(other) => Err(TranscribeError::Protocol(format!(
                "expected a ready line first, got {other:?}"
            ))),
            Err(fault) => match worker.explain(fault).await {
                TranscribeError::Failed(why) => Err(TranscribeError::Spawn(format!(
                    "worker did not start: {why}"
                ))),
                other => Err(other),
            },
        }
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.process.child.try_wait(), Ok(None))
    }

    async fn request(&mut self, request: &serde_json::Value) -> Result<Answer, WorkerFault> {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.stdin.write_all(&line).await.map_err(WorkerFault::Io)?;
        self.stdin.flush().await.map_err(WorkerFault::Io)?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Result<Answer, WorkerFault> {
        match read_line_bounded(&mut self.stdout, MAX_LINE_BYTES).await {
            Ok(Some(line)) => parse_answer(&line).map_err(WorkerFault::Protocol),
            Ok(None) => Err(WorkerFault::Closed),
            Err(error) => Err(WorkerFault::Io(error)),
        }
    }

    /// Turns a fault into the error to report, with the worker's last words when it died.
    async fn explain(mut self, fault: WorkerFault) -> TranscribeError {
        match fault {
            WorkerFault::Protocol(error) => error,
            WorkerFault::Io(_) | WorkerFault::Closed => {
                let status =
                    tokio::time::timeout(Duration::from_secs(1), self.process.child.wait())
                        .await
                        .ok()
                        .and_then(Result::ok);
                let tail = self.process.stderr_tail().await;
                match (fault, status) {
                    (_, Some(status)) => {
                        TranscribeError::Failed(format!("worker exited ({status}): {tail}"))
                    }
                    (WorkerFault::Io(error), None) => {
                        TranscribeError::Failed(format!("worker pipe: {error}: {tail}"))
                    }
                    _ => TranscribeError::Failed(format!("worker closed its output: {tail}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert_eq!(
            parse_answer(br#"{"ready": true}"#).ok(),
            Some(Answer::Ready)
        );
        assert_eq!(
            parse_answer(br#"{"text": "hi", "language": "en", "durationMs": 1500.4}"#).ok(),
            Some(Answer::Transcript(Transcript {
                text: "hi".into(),
                language: Some("en".into()),
                duration_ms: Some(1500),
            }))
        );
        assert_eq!(
            parse_answer(br#"{"error": "bad file"}"#).ok(),
            Some(Answer::Error("bad file".into()))
        );
        assert!(parse_answer(b"hello").is_err());
        assert!(parse_answer(br#"{"language": "en"}"#).is_err());
    }

    #[test]
    fn audio_types() {
        for ok in [
            "audio/ogg; codecs=opus",
            "audio/webm",
            "video/webm",
            "",
            "AUDIO/WAV",
        ] {
            assert!(is_audio(ok), "{ok}");
        }
        for bad in ["text/plain", "image/png", "application/pdf"] {
            assert!(!is_audio(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let mut input: &[u8] = b"short\nthis line is too long\n";
        assert_eq!(
            read_line_bounded(&mut input, 8).await.ok().flatten(),
            Some(b"short".to_vec())
        );
        assert!(read_line_bounded(&mut input, 8).await.is_err());
        let mut partial: &[u8] = b"no newline";
        assert!(matches!(
            read_line_bounded(&mut partial, 100).await,
            Ok(None)
        ));
    }
}
