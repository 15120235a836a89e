//! Per-user inboxes: notifications numbered per user (`users.inbox_seq` allocates, in the
//! same transaction that inserts, so numbers never skip).

use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::store::{InboxStore, NewEvent};
use hearth_proto::native::InboxEvent;
use sqlx::{Any, Transaction};

/// Writes `events` inside the caller's transaction; returns them numbered, with their owner.
pub(crate) async fn append_events(
    tx: &mut Transaction<'_, Any>,
    events: Vec<NewEvent>,
    now_ms: i64,
) -> Result<Vec<(i64, InboxEvent)>, StoreError> {
    let mut written = Vec::with_capacity(events.len());
    for event in events {
        sqlx::query("UPDATE users SET inbox_seq = inbox_seq + 1 WHERE id = ?")
            .bind(event.user_id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        let seq = sqlx::query_scalar::<_, i64>("SELECT inbox_seq FROM users WHERE id = ?")
            .bind(event.user_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(store_error)?;
        sqlx::query("INSERT INTO inbox (user_id, seq, kind, payload, ms) VALUES (?, ?, ?, ?, ?)")
            .bind(event.user_id)
            .bind(seq)
            .bind(event.kind)
            .bind(event.payload.to_string())
            .bind(now_ms)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        written.push((
            event.user_id,
            InboxEvent {
                seq,
                kind: event.kind.to_owned(),
                payload: event.payload,
                timestamp: now_ms,
            },
        ));
    }
    Ok(written)
}

#[async_trait]
impl InboxStore for SqlStore {
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now_ms: i64,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let written = append_events(&mut tx, events, now_ms).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(written)
    }

    async fn events_after(
        &self,
        user: i64,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<InboxEvent>, i64), StoreError> {
        let newest = sqlx::query_scalar::<_, i64>("SELECT inbox_seq FROM users WHERE id = ?")
            .bind(user)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?
            .unwrap_or(0);
        let rows = sqlx::query_as::<_, (i64, String, String, i64)>(
            "SELECT seq, kind, payload, ms FROM inbox WHERE user_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(user)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        let events = rows
            .into_iter()
            .map(|(seq, kind, payload, timestamp)| InboxEvent {
                seq,
                kind,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                timestamp,
            })
            .collect();
        Ok((events, newest))
    }
}
