//! Transcription jobs of voice messages, and the transcripts they produce.
//!
//! Claims are optimistic: read a few due jobs, then take each with an `UPDATE … WHERE` that
//! re-checks it is still due and unchanged (`attempts` is the claim's identity). Whichever
//! node's update matches wins; the others see 0 rows and move on. Every later change of a
//! claimed job names the claim, so a node that lost its job (lease ran out) changes nothing.
//!
//! The `format!`ed statements only splice in constants (column lists, the dialect's keyword);
//! every value is a bound parameter.

use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::transcription::{JobStatus, Transcript, TranscriptionJob, TranscriptionStore};

const COLUMNS: &str =
    "conversation_id, seq, file_id, status, attempts, last_error, created_ms, updated_ms";

type JobRow = (i64, i64, String, String, i64, Option<String>, i64, i64);

fn job(row: JobRow) -> Result<TranscriptionJob, StoreError> {
    let (conversation_id, seq, file_id, status, attempts, last_error, created_ms, updated_ms) = row;
    Ok(TranscriptionJob {
        conversation_id,
        seq,
        file_id,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown job status {status:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error,
        created_ms,
        updated_ms,
    })
}

/// Languages are ISO codes; anything longer is not one (and would not fit MySQL's column).
fn language(transcript: &Transcript) -> Option<&str> {
    transcript
        .language
        .as_deref()
        .filter(|l| !l.is_empty() && l.len() <= 16)
}

#[async_trait]
impl TranscriptionStore for SqlStore {
    async fn enqueue_transcription(
        &self,
        conversation_id: i64,
        seq: i64,
        file_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "{} INTO transcription_jobs (conversation_id, seq, file_id, status, attempts, \
             next_attempt_ms, created_ms, updated_ms) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
            self.backend.insert_ignore()
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .bind(seq)
            .bind(file_id)
            .bind(now_ms)
            .bind(now_ms)
            .bind(now_ms)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn unqueued_voice_messages(
        &self,
        recent: i64,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        // The newest feed rows by id (the primary key), then their messages; a message edited
        // or recalled has more than one row, hence DISTINCT.
        sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT DISTINCT m.conversation_id, m.seq, m.file_id FROM message_feed f \
             JOIN messages m ON m.conversation_id = f.conversation_id AND m.seq = f.seq \
             LEFT JOIN transcription_jobs j ON j.conversation_id = m.conversation_id \
             AND j.seq = m.seq \
             WHERE f.id > (SELECT COALESCE(MAX(id), 0) FROM message_feed) - ? \
             AND m.kind = 'voice' AND m.file_id IS NOT NULL AND m.transcript IS NULL \
             AND m.recalled = 0 AND j.seq IS NULL",
        )
        .bind(recent)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)
    }

    async fn claim_transcriptions(
        &self,
        limit: usize,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> Result<Vec<TranscriptionJob>, StoreError> {
        // Read from the writer: a job enqueued a moment ago must be visible to the claim.
        let due = format!(
            "SELECT {COLUMNS} FROM transcription_jobs \
             WHERE (status = 'pending' AND next_attempt_ms <= ?) \
                OR (status = 'running' AND claimed_ms < ?) \
             ORDER BY next_attempt_ms, conversation_id, seq LIMIT ?"
        );
        let rows = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(due))
            .bind(now_ms)
            .bind(stale_before_ms)
            .bind(limit as i64)
            .fetch_all(&self.write)
            .await
            .map_err(store_error)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let mut candidate = job(row)?;
            let taken = sqlx::query(
                "UPDATE transcription_jobs \
                 SET status = 'running', attempts = attempts + 1, claimed_ms = ?, updated_ms = ? \
                 WHERE conversation_id = ? AND seq = ? AND attempts = ? \
                   AND ((status = 'pending' AND next_attempt_ms <= ?) \
                     OR (status = 'running' AND claimed_ms < ?))",
            )
            .bind(now_ms)
            .bind(now_ms)
            .bind(candidate.conversation_id)
            .bind(candidate.seq)
            .bind(i64::from(candidate.attempts))
            .bind(now_ms)
            .bind(stale_before_ms)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
            if taken.rows_affected() == 1 {
                candidate.status = JobStatus::Running;
                candidate.attempts = candidate.attempts.saturating_add(1);
                candidate.updated_ms = now_ms;
                claimed.push(candidate);
            }
        }
        Ok(claimed)
    }

    async fn save_transcript(
        &self,
        conversation_id: i64,
        seq: i64,
        text: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET transcript = ? \
             WHERE conversation_id = ? AND seq = ? AND recalled = 0",
        )
        .bind(text)
        .bind(conversation_id)
        .bind(seq)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn complete_transcription(
        &self,
        job: &TranscriptionJob,
        transcript: &Transcript,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let finished = sqlx::query(
            "UPDATE transcription_jobs \
             SET status = 'done', last_error = NULL, language = ?, updated_ms = ? \
             WHERE conversation_id = ? AND seq = ? AND status = 'running' AND attempts = ?",
        )
        .bind(language(transcript))
        .bind(now_ms)
        .bind(job.conversation_id)
        .bind(job.seq)
        .bind(i64::from(job.attempts))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if finished.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE messages SET transcript = ? \
             WHERE conversation_id = ? AND seq = ? AND recalled = 0",
        )
        .bind(&transcript.text)
        .bind(job.conversation_id)
        .bind(job.seq)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    async fn fail_transcription(
        &self,
        job: &TranscriptionJob,
        error: &str,
        retry_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (status, due) = match retry_at_ms {
            Some(at) => (JobStatus::Pending, at),
            None => (JobStatus::Failed, now_ms),
        };
        let done = sqlx::query(
            "UPDATE transcription_jobs \
             SET status = ?, last_error = ?, next_attempt_ms = ?, claimed_ms = NULL, updated_ms = ? \
             WHERE conversation_id = ? AND seq = ? AND status = 'running' AND attempts = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(due)
        .bind(now_ms)
        .bind(job.conversation_id)
        .bind(job.seq)
        .bind(i64::from(job.attempts))
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_transcription(
        &self,
        job: &TranscriptionJob,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE transcription_jobs \
             SET status = 'pending', attempts = attempts - 1, next_attempt_ms = ?, \
                 claimed_ms = NULL, updated_ms = ? \
             WHERE conversation_id = ? AND seq = ? AND status = 'running' AND attempts = ?",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(job.conversation_id)
        .bind(job.seq)
        .bind(i64::from(job.attempts))
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn transcription_job(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transcription_jobs WHERE conversation_id = ? AND seq = ?"
        );
        sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .bind(seq)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?
            .map(job)
            .transpose()
    }

    async fn transcript(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query_as::<_, (Option<String>,)>(
            "SELECT transcript FROM messages WHERE conversation_id = ? AND seq = ?",
        )
        .bind(conversation_id)
        .bind(seq)
        .fetch_optional(&self.read)
        .await
        .map_err(store_error)?;
        Ok(row.and_then(|(text,)| text))
    }
}
