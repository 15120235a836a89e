//! Friend requests, friendships and blocks.
//!
//! Duplicates are impossible by construction: friendships are keyed by the pair (stored in
//! both directions), and a pending request carries `pair_key = "<low>:<high>"` under a unique
//! index, cleared when the request is settled.

use crate::inbox::append_events;
use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::model::UserRef;
use hearth_core::store::{Applied, Decision, FriendRequest, NewEvent, SocialStore};
use sqlx::{Any, Transaction};

pub(crate) fn pair_key(a: i64, b: i64) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

type RequestRow = (i64, String, i64, String, String, i64);

fn request((from_id, from_name, to_id, to_name, note, created_ms): RequestRow) -> FriendRequest {
    FriendRequest {
        from: UserRef {
            id: from_id,
            username: from_name,
        },
        to: UserRef {
            id: to_id,
            username: to_name,
        },
        note,
        created_ms,
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl SqlStore {
    /// Writes the events and commits: the common end of every applied change.
    pub(crate) async fn finish(
        mut tx: Transaction<'_, Any>,
        events: Vec<NewEvent>,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let written = append_events(&mut tx, events, now_ms).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(written))
    }

    async fn users_by(&self, sql: &'static str, user: i64) -> Result<Vec<UserRef>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String)>(sql)
            .bind(user)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| UserRef { id, username })
            .collect())
    }

    async fn pending_requests(
        &self,
        sql: &'static str,
        user: i64,
    ) -> Result<Vec<FriendRequest>, StoreError> {
        let rows = sqlx::query_as::<_, RequestRow>(sql)
            .bind(user)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(request).collect())
    }
}

#[async_trait]
impl SocialStore for SqlStore {
    async fn are_friends(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        let n = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM friendships WHERE user_id = ? AND friend_id = ?",
        )
        .bind(a)
        .bind(b)
        .fetch_one(&self.read)
        .await
        .map_err(store_error)?;
        Ok(n > 0)
    }

    async fn blocked_either_way(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        let n = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM blocks \
             WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?)",
        )
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .fetch_one(&self.read)
        .await
        .map_err(store_error)?;
        Ok(n > 0)
    }

    async fn direct_status(&self, a: i64, b: i64) -> Result<(bool, bool), StoreError> {
        let (friends, blocked) = sqlx::query_as::<_, (i64, i64)>(
            "SELECT (SELECT COUNT(*) FROM friendships WHERE user_id = ? AND friend_id = ?), \
             (SELECT COUNT(*) FROM blocks \
              WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?))",
        )
        .bind(a)
        .bind(b)
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .fetch_one(&self.read)
        .await
        .map_err(store_error)?;
        Ok((friends > 0, blocked > 0))
    }

    async fn create_friend_request(
        &self,
        from: i64,
        to: i64,
        note: &str,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO friend_requests (from_id, to_id, note, status, pair_key, created_ms) \
             VALUES (?, ?, ?, 'pending', ?, ?)",
        )
        .bind(from)
        .bind(to)
        .bind(note)
        .bind(pair_key(from, to))
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => Self::finish(tx, events, now_ms).await,
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn decide_friend_request(
        &self,
        from: i64,
        to: i64,
        decision: Decision,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let status = match decision {
            Decision::Accept => "accepted",
            Decision::Reject => "rejected",
            Decision::Cancel => "canceled",
        };
        let mut tx = self.begin_write().await?;
        let settled = sqlx::query(
            "UPDATE friend_requests SET status = ?, pair_key = NULL, decided_ms = ? \
             WHERE from_id = ? AND to_id = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(now_ms)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if settled.rows_affected() == 0 {
            return Ok(None);
        }
        if decision == Decision::Accept {
            let sql = format!(
                "{} INTO friendships (user_id, friend_id, created_ms) VALUES (?, ?, ?), (?, ?, ?)",
                self.backend.insert_ignore()
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(from)
                .bind(to)
                .bind(now_ms)
                .bind(to)
                .bind(from)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        Self::finish(tx, events, now_ms).await
    }

    async fn pending_friend_requests(
        &self,
        user: i64,
    ) -> Result<(Vec<FriendRequest>, Vec<FriendRequest>), StoreError> {
        const INCOMING: &str = "SELECT r.from_id, fu.username, r.to_id, tu.username, r.note, r.created_ms \
             FROM friend_requests r JOIN users fu ON fu.id = r.from_id JOIN users tu ON tu.id = r.to_id \
             WHERE r.status = 'pending' AND r.to_id = ? ORDER BY r.id";
        const OUTGOING: &str = "SELECT r.from_id, fu.username, r.to_id, tu.username, r.note, r.created_ms \
             FROM friend_requests r JOIN users fu ON fu.id = r.from_id JOIN users tu ON tu.id = r.to_id \
             WHERE r.status = 'pending' AND r.from_id = ? ORDER BY r.id";
        Ok((
            self.pending_requests(INCOMING, user).await?,
            self.pending_requests(OUTGOING, user).await?,
        ))
    }

    async fn friends(&self, user: i64) -> Result<Vec<UserRef>, StoreError> {
        self.users_by(
            "SELECT u.id, u.username FROM friendships f JOIN users u ON u.id = f.friend_id \
             WHERE f.user_id = ? ORDER BY u.username_key",
            user,
        )
        .await
    }

    async fn remove_friend(
        &self,
        user: i64,
        friend: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query(
            "DELETE FROM friendships \
             WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
        )
        .bind(user)
        .bind(friend)
        .bind(friend)
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if removed.rows_affected() == 0 {
            return Ok(None);
        }
        Self::finish(tx, events, hearth_core::now_ms()).await
    }

    async fn block(
        &self,
        user: i64,
        target: i64,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "{} INTO blocks (user_id, blocked_id, created_ms) VALUES (?, ?, ?)",
            self.backend.insert_ignore()
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(target)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(
            "DELETE FROM friendships \
             WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
        )
        .bind(user)
        .bind(target)
        .bind(target)
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        sqlx::query(
            "UPDATE friend_requests SET status = 'canceled', pair_key = NULL, decided_ms = ? \
             WHERE pair_key = ?",
        )
        .bind(now_ms)
        .bind(pair_key(user, target))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        Self::finish(tx, events, now_ms).await
    }

    async fn unblock(&self, user: i64, target: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?")
            .bind(user)
            .bind(target)
            .execute(&self.write)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn blocked(&self, user: i64) -> Result<Vec<UserRef>, StoreError> {
        self.users_by(
            "SELECT u.id, u.username FROM blocks b JOIN users u ON u.id = b.blocked_id \
             WHERE b.user_id = ? ORDER BY u.username_key",
            user,
        )
        .await
    }
}
