//! The transcription queue on a real SQLite store with real (fake-transcriber) processes:
//! timeouts kill, crashes are retried then failed, concurrency is bounded, and jobs survive
//! restarts.

mod common;

use common::*;
use hearth_core::transcription::{
    JobStatus, TranscribeError, Transcriber, TranscriptionQueue, TranscriptionStore,
};
use hearth_voice::{CommandTranscriber, Mode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A oneshot fake: `crash*` files die; `slow*` files first sleep for `$1` seconds (a marker
/// to find the process by); every other file is "heard".
const ONESHOT: &str = r#"
case "$2" in */crash*) echo "decoder exploded" >&2; exit 3 ;; esac
case "$2" in */slow*) sleep "$1" ;; esac
printf '{"text":"heard %s","language":"en","durationMs":1000}\n' "$(basename "$2")"
"#;

/// A worker fake: counts its starts in the file `$1`, answers requests by file name.
const WORKER: &str = r#"
echo start >> "$1"
echo '{"ready": true}'
while IFS= read -r line; do
  case "$line" in
    */slow*) sleep "$2" ;;
    */crash*) echo "worker crashed" >&2; exit 3 ;;
    */bad*) echo '{"error": "cannot decode"}' ;;
    *) echo '{"text": "fine"}' ;;
  esac
done
"#;

/// Waits (briefly: SIGKILL is not instant) until no process mentions `needle`.
async fn gone(needle: &str) {
    eventually(
        Duration::from_secs(3),
        &format!("no process with {needle:?}"),
        || async { processes_with(needle) == 0 },
    )
    .await;
}

fn clip(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, b"RIFF").unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_job_is_killed_at_its_timeout_without_holding_up_others() {
    let dir = temp_dir("slow");
    let sql = open(&sqlite_url(&dir)).await;
    let (conversation, seqs) = voice_messages(&sql.clone().stores(), 4).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql);
    let marker = "31.4159";
    let transcriber = CommandTranscriber::new(
        &shell(ONESHOT, &[marker]),
        Mode::Oneshot,
        Duration::from_secs(30),
        2,
    )
    .unwrap();
    let sink = Arc::new(Recorder::default());
    let queue = TranscriptionQueue::start(
        store.clone(),
        Arc::new(transcriber),
        Arc::new(Files),
        sink.clone(),
        quick(2, Duration::from_secs(2), 2),
    );
    let started = Instant::now();
    queue
        .enqueue(conversation, seqs[0], &clip(&dir, "slow.wav"))
        .await
        .unwrap();
    for (i, seq) in seqs[1..].iter().enumerate() {
        let file = clip(&dir, &format!("quick{i}.wav"));
        assert!(queue.enqueue(conversation, *seq, &file).await.unwrap());
        // Enqueueing is idempotent.
        assert!(!queue.enqueue(conversation, *seq, &file).await.unwrap());
    }
    eventually(Duration::from_secs(10), "the quick clips", || async {
        sink.texts().len() == 3
    })
    .await;
    // The slow clip holds one slot until its 2 s timeout; the others went through the other.
    let quick = started.elapsed();
    assert!(
        quick < Duration::from_millis(1_500),
        "quick clips took {quick:?}"
    );

    eventually(
        Duration::from_secs(15),
        "the slow clip to give up",
        || async {
            store
                .transcription_job(conversation, seqs[0])
                .await
                .unwrap()
                .is_some_and(|job| job.status == JobStatus::Failed)
        },
    )
    .await;
    let job = store
        .transcription_job(conversation, seqs[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.attempts, 2);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{job:?}"
    );
    let failures = sink.failures();
    assert_eq!(failures.len(), 1);
    assert!(matches!(failures[0].2, TranscribeError::Timeout(_)));
    // Killed, not left running: no `sleep 31.4159` remains.
    gone(&format!("sleep {marker}")).await;
    for (i, seq) in seqs[1..].iter().enumerate() {
        assert_eq!(
            store.transcript(conversation, *seq).await.unwrap(),
            Some(format!("heard quick{i}.wav"))
        );
    }
    assert_eq!(store.transcript(conversation, seqs[0]).await.unwrap(), None);
    queue.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_worker_is_restarted_and_the_job_fails_after_its_attempts() {
    let dir = temp_dir("crash");
    let sql = open(&sqlite_url(&dir)).await;
    let (conversation, seqs) = voice_messages(&sql.clone().stores(), 3).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql);
    let starts = dir.join("starts");
    let transcriber = Arc::new(
        CommandTranscriber::new(
            &shell(WORKER, &[&starts.display().to_string(), "30"]),
            Mode::Worker,
            Duration::from_secs(10),
            1,
        )
        .unwrap(),
    );
    let sink = Arc::new(Recorder::default());
    let queue = TranscriptionQueue::start(
        store.clone(),
        transcriber.clone(),
        Arc::new(Files),
        sink.clone(),
        quick(1, Duration::from_secs(10), 3),
    );
    queue
        .enqueue(conversation, seqs[0], &clip(&dir, "crash.wav"))
        .await
        .unwrap();
    queue
        .enqueue(conversation, seqs[1], &clip(&dir, "bad.wav"))
        .await
        .unwrap();
    queue
        .enqueue(conversation, seqs[2], &clip(&dir, "good.wav"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "all three jobs to settle",
        || async {
            let mut settled = 0;
            for seq in &seqs {
                if let Some(job) = store.transcription_job(conversation, *seq).await.unwrap()
                    && matches!(job.status, JobStatus::Done | JobStatus::Failed)
                {
                    settled += 1;
                }
            }
            settled == 3
        },
    )
    .await;

    let crashed = store
        .transcription_job(conversation, seqs[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crashed.status, JobStatus::Failed);
    assert_eq!(crashed.attempts, 3);
    let error = crashed.last_error.unwrap_or_default();
    assert!(
        error.contains("worker exited") && error.contains("worker crashed"),
        "{error}"
    );
    // A file the worker could not decode is an answer, not a crash: the worker survives it.
    let bad = store
        .transcription_job(conversation, seqs[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bad.status, JobStatus::Failed);
    assert!(bad.last_error.unwrap_or_default().contains("cannot decode"));
    assert_eq!(
        store.transcript(conversation, seqs[2]).await.unwrap(),
        Some("fine".into())
    );
    assert_eq!(sink.failures().len(), 2);
    // Every crash took its worker down, so each later request needed a fresh one: three
    // crashes mean at least three starts (four unless a crash was the very last request).
    let started = std::fs::read_to_string(&starts).unwrap().lines().count();
    assert!((3..=4).contains(&started), "worker starts: {started}");
    queue.shutdown().await;

    // Outside the queue too, a hung worker is killed at the transcriber's own timeout and the
    // next call gets a fresh one.
    let hang = CommandTranscriber::new(
        &shell(WORKER, &[&starts.display().to_string(), "27.1828"]),
        Mode::Worker,
        Duration::from_secs(1),
        1,
    )
    .unwrap();
    let slow = dir.join("slow.wav");
    let error = hang.transcribe(&slow, "audio/wav").await.unwrap_err();
    assert!(matches!(error, TranscribeError::Timeout(_)), "{error}");
    gone("27.1828").await;
    let fine = hang.transcribe(&dir.join("good.wav"), "audio/wav").await;
    assert_eq!(fine.map(|t| t.text).ok(), Some("fine".into()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_concurrency_jobs_run_at_once() {
    let dir = temp_dir("concurrency");
    let sql = open(&sqlite_url(&dir)).await;
    let (conversation, seqs) = voice_messages(&sql.clone().stores(), 6).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql);
    // Each run marks itself running, records how many are, and stays for a moment.
    let script = r#"
mkdir "$1/run.$$"
ls -d "$1"/run.* | wc -l >> "$1/counts"
sleep 0.3
rmdir "$1/run.$$"
echo '{"text": "ok"}'
"#;
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let transcriber = CommandTranscriber::new(
        &shell(script, &[&runs.display().to_string()]),
        Mode::Oneshot,
        Duration::from_secs(10),
        // More than the queue allows: the queue's bound is the one under test.
        8,
    )
    .unwrap();
    let sink = Arc::new(Recorder::default());
    let queue = TranscriptionQueue::start(
        store.clone(),
        Arc::new(transcriber),
        Arc::new(Files),
        sink.clone(),
        quick(2, Duration::from_secs(10), 1),
    );
    for (i, seq) in seqs.iter().enumerate() {
        queue
            .enqueue(conversation, *seq, &clip(&dir, &format!("{i}.wav")))
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(20), "six transcripts", || async {
        sink.texts().len() == 6
    })
    .await;
    let counts: Vec<usize> = std::fs::read_to_string(runs.join("counts"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 6);
    assert_eq!(counts.iter().max(), Some(&2), "{counts:?}");
    queue.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_fails_at_once_without_retries() {
    let dir = temp_dir("missing");
    let sql = open(&sqlite_url(&dir)).await;
    let (conversation, seqs) = voice_messages(&sql.clone().stores(), 1).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql);
    let sink = Arc::new(Recorder::default());
    let queue = TranscriptionQueue::start(
        store.clone(),
        Arc::new(
            CommandTranscriber::new(
                &shell(ONESHOT, &["1"]),
                Mode::Oneshot,
                Duration::from_secs(5),
                1,
            )
            .unwrap(),
        ),
        Arc::new(Files),
        sink.clone(),
        quick(1, Duration::from_secs(5), 5),
    );
    let gone = dir.join("never-uploaded.wav").display().to_string();
    queue.enqueue(conversation, seqs[0], &gone).await.unwrap();
    eventually(Duration::from_secs(10), "the failure", || async {
        !sink.failures().is_empty()
    })
    .await;
    let job = store
        .transcription_job(conversation, seqs[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Failed, 1));
    assert!(matches!(
        sink.failures()[0].2,
        TranscribeError::FileMissing(_)
    ));
    queue.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_restarts() {
    let dir = temp_dir("restart");
    let url = sqlite_url(&dir);
    let sql = open(&url).await;
    let (conversation, seqs) = voice_messages(&sql.clone().stores(), 3).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql.clone());

    // 1. Enqueued while no queue ran (say, the node stopped right after storing the message).
    let t0 = hearth_core::now_ms() - 20_000;
    store
        .enqueue_transcription(conversation, seqs[0], &clip(&dir, "a.wav"), t0)
        .await
        .unwrap();
    // 2. Claimed 10 s ago by a node that was then killed: running. The first queue below
    //    (30 s lease) must leave it alone; the second (6 s lease) takes it over.
    store
        .enqueue_transcription(conversation, seqs[1], &clip(&dir, "b.wav"), t0)
        .await
        .unwrap();
    let claimed = store
        .claim_transcriptions(10, t0 + 10_000, 0)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    // Put the first back: only the second stays claimed by the "dead node".
    assert!(
        store
            .release_transcription(&claimed[0], t0 + 10_000)
            .await
            .unwrap()
    );
    // 3. Running when the node shut down gracefully: released, not counted. This node's
    //    transcriber hangs on every file.
    let hanging = CommandTranscriber::new(
        &shell(r#"sleep "$1""#, &["23.7"]),
        Mode::Oneshot,
        Duration::from_secs(30),
        1,
    )
    .unwrap();
    let sink = Arc::new(Recorder::default());
    let mut config = quick(1, Duration::from_secs(30), 3);
    config.poll_interval = Duration::from_secs(60);
    let first = TranscriptionQueue::start(
        store.clone(),
        Arc::new(hanging),
        Arc::new(Files),
        sink.clone(),
        config,
    );
    // With one slot it takes `a` (due first) and leaves `c` pending.
    first
        .enqueue(conversation, seqs[2], &clip(&dir, "c-slow.wav"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the first node to start a job",
        || async { processes_with("sleep 23.7") > 0 },
    )
    .await;
    first.shutdown().await;
    gone("sleep 23.7").await;
    for seq in [seqs[0], seqs[2]] {
        let job = store
            .transcription_job(conversation, seq)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Pending, 0),
            "{job:?}"
        );
    }
    let abandoned = store
        .transcription_job(conversation, seqs[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(abandoned.status, JobStatus::Running);
    sql.close().await;
    drop(store);

    // Restart on the same database file: everything gets transcribed.
    let sql = open(&url).await;
    let store: Arc<dyn TranscriptionStore> = Arc::new(sql);
    let sink = Arc::new(Recorder::default());
    let second = TranscriptionQueue::start(
        store.clone(),
        Arc::new(
            CommandTranscriber::new(
                &shell(ONESHOT, &["1"]),
                Mode::Oneshot,
                Duration::from_secs(5),
                1,
            )
            .unwrap(),
        ),
        Arc::new(Files),
        sink.clone(),
        quick(1, Duration::from_secs(5), 3),
    );
    // `c-slow` sleeps 1 s here, within the 5 s timeout.
    eventually(Duration::from_secs(20), "three transcripts", || async {
        sink.texts().len() == 3
    })
    .await;
    assert_eq!(
        store.transcript(conversation, seqs[0]).await.unwrap(),
        Some("heard a.wav".into())
    );
    assert_eq!(
        store.transcript(conversation, seqs[1]).await.unwrap(),
        Some("heard b.wav".into())
    );
    let taken_over = store
        .transcription_job(conversation, seqs[1])
        .await
        .unwrap()
        .unwrap();
    // Its dead node's attempt counted: 1 then, 2 now.
    assert_eq!(
        (taken_over.status, taken_over.attempts),
        (JobStatus::Done, 2)
    );
    second.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
