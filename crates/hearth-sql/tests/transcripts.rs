//! The transcription job store on both backends: SQLite in a temp dir, and MySQL/MariaDB at
//! `HEARTH_TEST_MYSQL` (default `mysql://root@127.0.0.1:3306`; unreachable fails, never skips).

mod common;

use common::{TempMySql, TempSqlite};
use hearth_core::model::{MessageKind, NewMessage};
use hearth_core::transcription::{JobStatus, Transcript, TranscriptionStore};
use hearth_sql::SqlStore;

/// Two voice messages in a fresh room: (conversation id, [seq, seq]).
async fn two_voice_messages(sql: &SqlStore) -> (i64, Vec<i64>) {
    let stores = sql.clone().stores();
    let user = common::user(&stores, "speaker").await;
    let room = stores.messages.upsert_room("voice", "Voice").await.unwrap();
    let voice = |i: usize| NewMessage {
        kind: MessageKind::Voice,
        content: format!("{{\"fileId\":\"f{i}\"}}"),
        ..NewMessage::text(user.as_ref(), String::new())
    };
    let stored = stores
        .messages
        .append_messages(&room.conversation(), vec![voice(1), voice(2)], 1_000)
        .await
        .unwrap();
    (room.conversation_id, stored.iter().map(|m| m.seq).collect())
}

async fn job_lifecycle(sql: SqlStore) {
    let (c, seqs) = two_voice_messages(&sql).await;
    let (a, b) = (seqs[0], seqs[1]);
    let store: &dyn TranscriptionStore = &sql;

    assert!(
        store
            .enqueue_transcription(c, a, "file-a", 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue_transcription(c, a, "other", 1_001)
            .await
            .unwrap()
    );
    assert!(
        store
            .enqueue_transcription(c, b, "file-b", 2_000)
            .await
            .unwrap()
    );
    let job = store.transcription_job(c, a).await.unwrap().unwrap();
    assert_eq!(
        (job.file_id.as_str(), job.status, job.attempts),
        ("file-a", JobStatus::Pending, 0)
    );

    // Not due yet at 500; at 1,500 only `a` is.
    assert!(
        store
            .claim_transcriptions(5, 500, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_transcriptions(5, 1_500, 0).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let first = claimed[0].clone();
    assert_eq!(
        (first.seq, first.status, first.attempts),
        (a, JobStatus::Running, 1)
    );
    // A running job with a fresh claim is nobody else's; `b` is not due before 2,000.
    assert!(
        store
            .claim_transcriptions(5, 1_600, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_transcriptions(5, 2_050, 0).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let b_job = claimed[0].clone();
    assert_eq!((b_job.seq, b_job.attempts), (b, 1));

    // A failed attempt with a retry time: pending, due then.
    assert!(
        store
            .fail_transcription(&b_job, "boom", Some(10_000), 2_100)
            .await
            .unwrap()
    );
    let b_job = store.transcription_job(c, b).await.unwrap().unwrap();
    assert_eq!(
        (b_job.status, b_job.last_error.as_deref()),
        (JobStatus::Pending, Some("boom"))
    );
    assert!(
        store
            .claim_transcriptions(5, 9_999, 0)
            .await
            .unwrap()
            .is_empty()
    );

    // `a`'s node "dies": once its claim is stale another claim takes it, and the old claim's
    // answers change nothing.
    let retaken = store.claim_transcriptions(1, 3_000, 2_000).await.unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!((retaken[0].seq, retaken[0].attempts), (a, 2));
    let transcript = Transcript {
        text: "hello 世界".into(),
        language: Some("en".into()),
        duration_ms: Some(1_200),
    };
    assert!(
        !store
            .complete_transcription(&first, &transcript, 3_100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .fail_transcription(&first, "late", None, 3_100)
            .await
            .unwrap()
    );
    assert!(!store.release_transcription(&first, 3_100).await.unwrap());
    assert_eq!(store.transcript(c, a).await.unwrap(), None);

    assert!(
        store
            .complete_transcription(&retaken[0], &transcript, 3_200)
            .await
            .unwrap()
    );
    assert_eq!(
        store.transcript(c, a).await.unwrap().as_deref(),
        Some("hello 世界")
    );
    let done = store.transcription_job(c, a).await.unwrap().unwrap();
    assert_eq!((done.status, done.attempts), (JobStatus::Done, 2));
    // Done jobs are never claimed again.
    assert!(
        store
            .claim_transcriptions(5, 5_000, 4_000)
            .await
            .unwrap()
            .is_empty()
    );

    // Release undoes a claim's count; failing for good is final.
    let again = store.claim_transcriptions(5, 10_000, 0).await.unwrap();
    assert_eq!((again[0].seq, again[0].attempts), (b, 2));
    assert!(
        store
            .release_transcription(&again[0], 10_001)
            .await
            .unwrap()
    );
    let released = store.transcription_job(c, b).await.unwrap().unwrap();
    assert_eq!(
        (released.status, released.attempts),
        (JobStatus::Pending, 1)
    );
    let last = store.claim_transcriptions(5, 10_002, 0).await.unwrap();
    assert!(
        store
            .fail_transcription(&last[0], "gave up", None, 10_003)
            .await
            .unwrap()
    );
    let failed = store.transcription_job(c, b).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(
        store
            .claim_transcriptions(5, 99_999, 99_999)
            .await
            .unwrap()
            .is_empty()
    );
    // Unknown messages have no transcript and no job.
    assert_eq!(store.transcript(c, 999).await.unwrap(), None);
    assert!(store.transcription_job(c, 999).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_sqlite() {
    let store = TempSqlite::open("hearth_t_transcripts").await;
    job_lifecycle(store.sql.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_mysql() {
    let store = TempMySql::open("hearth_t_transcripts").await;
    job_lifecycle(store.sql.clone()).await;
    store.close().await;
}
