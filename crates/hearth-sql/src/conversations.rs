//! Direct and group conversations: membership, roles, read positions, join requests.
//!
//! Changes that depend on the member count first "touch" the conversation row
//! (`UPDATE … SET last_ms = last_ms`): on MySQL that takes the row lock, serializing them with
//! each other and with message writers; on SQLite the single writer already does.

use crate::social::pair_key;
use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::model::{Conversation, ConversationKind, Member, Role, UserRef};
use hearth_core::store::{Applied, ConversationStore, NewEvent};
use hearth_proto::native::{ConversationState, InboxEvent};
use sqlx::{Any, Transaction};
use std::collections::HashMap;

type ConversationRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    i64,
    i64,
    Option<String>,
);
type MemberRow = (i64, String, String, i64, i64, i64);

/// Unread messages are counted one by one among this many newest messages after a member's
/// read position (a badge shows "99+" past 99); any older unread message counts as one.
const UNREAD_COUNTED: i64 = 100;

const CONVERSATION_SELECT: &str = "SELECT id, kind, slug, name, owner_id, dissolved, last_seq, \
     direct_key FROM conversations WHERE ";
const MEMBER_SELECT: &str = "SELECT m.user_id, u.username, m.role, m.joined_seq, m.read_seq, \
     m.delivered_seq \
     FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ?";

fn conversation(row: ConversationRow) -> Conversation {
    let (id, kind, slug, name, owner_id, dissolved, last_seq, direct_key) = row;
    Conversation {
        id,
        kind: ConversationKind::parse(&kind).unwrap_or(ConversationKind::Group),
        slug,
        name,
        owner_id,
        dissolved: dissolved != 0,
        last_seq,
        direct_key,
    }
}

fn member((id, username, role, joined_seq, read_seq, delivered_seq): MemberRow) -> Member {
    Member {
        user: UserRef { id, username },
        role: Role::parse(&role).unwrap_or(Role::Member),
        joined_seq,
        read_seq,
        // A read message was delivered; a sender's own messages only move `read_seq`.
        delivered_seq: delivered_seq.max(read_seq),
    }
}

impl SqlStore {
    async fn conversation_where(
        &self,
        condition: &'static str,
        key: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let sql = format!("{CONVERSATION_SELECT}{condition}");
        let row = sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.write)
            .await
            .map_err(store_error)?;
        Ok(row.map(conversation))
    }

    /// Locks the conversation row for the rest of the transaction.
    async fn touch(tx: &mut Transaction<'_, Any>, conversation_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE conversations SET last_ms = last_ms WHERE id = ?")
            .bind(conversation_id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn member_count(
        tx: &mut Transaction<'_, Any>,
        conversation_id: i64,
    ) -> Result<usize, StoreError> {
        let n =
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM members WHERE conversation_id = ?")
                .bind(conversation_id)
                .fetch_one(&mut **tx)
                .await
                .map_err(store_error)?;
        Ok(n as usize)
    }

    /// Adds a member who sees messages from now on; false if already a member.
    async fn insert_member(
        &self,
        tx: &mut Transaction<'_, Any>,
        conversation_id: i64,
        user_id: i64,
        role: Role,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "{} INTO members (conversation_id, user_id, role, joined_seq, read_seq, joined_ms) \
             SELECT id, ?, ?, last_seq, last_seq, ? FROM conversations WHERE id = ?",
            self.backend.insert_ignore()
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(role.as_str())
            .bind(now_ms)
            .bind(conversation_id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_conversation(
        &self,
        tx: &mut Transaction<'_, Any>,
        kind: ConversationKind,
        name: &str,
        direct_key: Option<&str>,
        owner: Option<i64>,
        now_ms: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO conversations (kind, name, direct_key, owner_id, created_ms, last_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(direct_key)
        .bind(owner)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        sqlx::query_scalar::<_, i64>(self.backend.last_insert_id())
            .fetch_one(&mut **tx)
            .await
    }
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError> {
        let sql = format!("{CONVERSATION_SELECT}id = ?");
        let row = sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(conversation))
    }

    async fn member(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<Member>, StoreError> {
        let sql = format!("{MEMBER_SELECT} AND m.user_id = ?");
        let row = sqlx::query_as::<_, MemberRow>(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(member))
    }

    async fn membership(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member)>, StoreError> {
        let sql = format!("SELECT {MEMBERSHIP_COLUMNS}, 0, 0 {MEMBERSHIP_FROM}");
        Ok(self
            .membership_row(sql, conversation_id, user_id)
            .await?
            .map(|(c, m, _)| (c, m)))
    }

    async fn send_membership(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member, (bool, bool))>, StoreError> {
        // The peer is the direct conversation's other member; groups skip both sub-queries.
        let sql = format!(
            "SELECT {MEMBERSHIP_COLUMNS}, \
             CASE WHEN c.kind = 'direct' THEN (SELECT COUNT(*) FROM members o \
               JOIN friendships f ON f.user_id = m.user_id AND f.friend_id = o.user_id \
               WHERE o.conversation_id = c.id AND o.user_id <> m.user_id) ELSE 0 END, \
             CASE WHEN c.kind = 'direct' THEN (SELECT COUNT(*) FROM members o \
               JOIN blocks b ON (b.user_id = m.user_id AND b.blocked_id = o.user_id) \
                 OR (b.user_id = o.user_id AND b.blocked_id = m.user_id) \
               WHERE o.conversation_id = c.id AND o.user_id <> m.user_id) ELSE 0 END \
             {MEMBERSHIP_FROM}"
        );
        self.membership_row(sql, conversation_id, user_id).await
    }

    async fn members(&self, conversation_id: i64) -> Result<Vec<Member>, StoreError> {
        let sql = format!("{MEMBER_SELECT} ORDER BY m.joined_ms, m.user_id");
        let rows = sqlx::query_as::<_, MemberRow>(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(member).collect())
    }

    async fn share_group(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        let shared = sqlx::query_scalar::<_, i64>(
            "SELECT ma.conversation_id FROM members ma \
             JOIN members mb ON mb.conversation_id = ma.conversation_id \
             JOIN conversations c ON c.id = ma.conversation_id \
             WHERE ma.user_id = ? AND mb.user_id = ? AND c.kind = 'group' AND c.dissolved = 0 \
             LIMIT 1",
        )
        .bind(a)
        .bind(b)
        .fetch_optional(&self.read)
        .await
        .map_err(store_error)?;
        Ok(shared.is_some())
    }

    async fn member_ids(&self, conversation_id: i64) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT user_id FROM members WHERE conversation_id = ?")
            .bind(conversation_id)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)
    }

    async fn direct_conversation(
        &self,
        a: i64,
        b: i64,
        now_ms: i64,
    ) -> Result<Conversation, StoreError> {
        let key = pair_key(a, b);
        if let Some(found) = self.conversation_where("direct_key = ?", &key).await? {
            return Ok(found);
        }
        let mut tx = self.begin_write().await?;
        match self
            .insert_conversation(
                &mut tx,
                ConversationKind::Direct,
                "",
                Some(&key),
                None,
                now_ms,
            )
            .await
        {
            Ok(id) => {
                for user in [a, b] {
                    self.insert_member(&mut tx, id, user, Role::Member, now_ms)
                        .await?;
                }
                tx.commit().await.map_err(store_error)?;
            }
            // Created concurrently by the other side: use theirs.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => drop(tx),
            Err(e) => return Err(store_error(e)),
        }
        self.conversation_where("direct_key = ?", &key)
            .await?
            .ok_or_else(|| StoreError::Backend("direct conversation vanished".into()))
    }

    async fn create_group(
        &self,
        name: &str,
        owner: i64,
        members: &[i64],
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<(Conversation, Vec<(i64, InboxEvent)>), StoreError> {
        let mut tx = self.begin_write().await?;
        let id = self
            .insert_conversation(
                &mut tx,
                ConversationKind::Group,
                name,
                None,
                Some(owner),
                now_ms,
            )
            .await
            .map_err(store_error)?;
        self.insert_member(&mut tx, id, owner, Role::Owner, now_ms)
            .await?;
        for &user in members {
            self.insert_member(&mut tx, id, user, Role::Member, now_ms)
                .await?;
        }
        // The events announce a group that had no id until now.
        let events = events
            .into_iter()
            .map(|mut e| {
                if let Some(payload) = e.payload.as_object_mut() {
                    payload.insert("conversationId".to_owned(), id.into());
                }
                e
            })
            .collect();
        let events = Self::finish(tx, events, now_ms).await?.unwrap_or_default();
        let group = Conversation {
            id,
            kind: ConversationKind::Group,
            slug: None,
            name: name.to_owned(),
            owner_id: Some(owner),
            dissolved: false,
            last_seq: 0,
            direct_key: None,
        };
        Ok((group, events))
    }

    async fn add_members(
        &self,
        conversation_id: i64,
        users: &[i64],
        limit: usize,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Option<(Vec<i64>, Vec<(i64, InboxEvent)>)>, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::touch(&mut tx, conversation_id).await?;
        let count = Self::member_count(&mut tx, conversation_id).await?;
        let mut added = Vec::new();
        for &user in users {
            if self
                .insert_member(&mut tx, conversation_id, user, Role::Member, now_ms)
                .await?
            {
                added.push(user);
                // A member now: whatever they asked to join with is answered by this.
                sqlx::query(
                    "UPDATE join_requests SET status = 'superseded', pending_key = NULL, \
                     decided_ms = ? WHERE pending_key = ?",
                )
                .bind(now_ms)
                .bind(format!("{conversation_id}:{user}"))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            }
        }
        if count + added.len() > limit {
            return Ok(None);
        }
        let events = events
            .into_iter()
            .filter(|e| added.contains(&e.user_id))
            .collect();
        let written = Self::finish(tx, events, now_ms).await?.unwrap_or_default();
        Ok(Some((added, written)))
    }

    async fn remove_member(
        &self,
        conversation_id: i64,
        user_id: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM members WHERE conversation_id = ? AND user_id = ?")
            .bind(conversation_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Self::finish(tx, events, hearth_core::now_ms()).await
    }

    async fn set_role(
        &self,
        conversation_id: i64,
        user_id: i64,
        role: Role,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE members SET role = ? \
             WHERE conversation_id = ? AND user_id = ? AND role <> 'owner'",
        )
        .bind(role.as_str())
        .bind(conversation_id)
        .bind(user_id)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn rename_group(&self, conversation_id: i64, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE conversations SET name = ? \
             WHERE id = ? AND kind = 'group' AND dissolved = 0",
        )
        .bind(name)
        .bind(conversation_id)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn transfer_ownership(
        &self,
        conversation_id: i64,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let demoted = sqlx::query(
            "UPDATE members SET role = 'admin' \
             WHERE conversation_id = ? AND user_id = ? AND role = 'owner'",
        )
        .bind(conversation_id)
        .bind(from)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        let promoted = sqlx::query(
            "UPDATE members SET role = 'owner' WHERE conversation_id = ? AND user_id = ?",
        )
        .bind(conversation_id)
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if demoted.rows_affected() == 0 || promoted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE conversations SET owner_id = ? WHERE id = ?")
            .bind(to)
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    async fn dissolve(
        &self,
        conversation_id: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let now_ms = hearth_core::now_ms();
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE conversations SET dissolved = 1 WHERE id = ? AND dissolved = 0")
                .bind(conversation_id)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        for sql in [
            "DELETE FROM members WHERE conversation_id = ?",
            "UPDATE join_requests SET status = 'canceled', pending_key = NULL \
             WHERE conversation_id = ? AND status = 'pending'",
        ] {
            sqlx::query(sql)
                .bind(conversation_id)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        Self::finish(tx, events, now_ms).await
    }

    async fn conversation_states(&self, user: i64) -> Result<Vec<ConversationState>, StoreError> {
        type StateRow = (i64, String, String, i64, i64, String, i64, i64);
        let rows = sqlx::query_as::<_, StateRow>(
            "SELECT c.id, c.kind, c.name, c.last_seq, c.last_ms, m.role, m.joined_seq, m.read_seq \
             FROM members m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.user_id = ? AND c.dissolved = 0 ORDER BY c.last_ms DESC, c.id DESC",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        let peers: HashMap<i64, UserRef> = sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT mine.conversation_id, u.id, u.username FROM members mine \
             JOIN conversations c ON c.id = mine.conversation_id AND c.kind = 'direct' \
             JOIN members theirs ON theirs.conversation_id = mine.conversation_id \
             AND theirs.user_id <> mine.user_id \
             JOIN users u ON u.id = theirs.user_id WHERE mine.user_id = ?",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(conversation, id, username)| (conversation, UserRef { id, username }))
        .collect();
        // What is unread among the newest UNREAD_COUNTED messages after the read position:
        // other members' messages, not recalled ones, not ones the user deleted for
        // themselves, not system messages (edits, recalls, transcripts, joins).
        // Each conversation reads at most that many rows of its key.
        let greatest = self.backend.greatest();
        let counted: HashMap<i64, i64> =
            sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(format!(
                "SELECT m.conversation_id, COUNT(*) FROM members me \
                 JOIN conversations c ON c.id = me.conversation_id \
                 JOIN messages m ON m.conversation_id = me.conversation_id \
                 AND m.seq > {greatest}(me.read_seq, me.joined_seq, c.last_seq - ?) \
                 WHERE me.user_id = ? AND c.dissolved = 0 AND m.kind <> 'system' \
                 AND m.recalled = 0 AND m.sender_id <> ? \
                 AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = me.user_id \
                 AND h.conversation_id = m.conversation_id AND h.seq = m.seq) \
                 GROUP BY m.conversation_id"
            )))
            .bind(UNREAD_COUNTED)
            .bind(user)
            .bind(user)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, name, last_seq, last_ms, role, joined_seq, read_seq)| {
                    let kind = ConversationKind::parse(&kind).unwrap_or(ConversationKind::Group);
                    let peer = peers.get(&id).cloned();
                    let seen = read_seq.max(joined_seq);
                    ConversationState {
                        id,
                        kind,
                        name: peer.as_ref().map_or(name, |p| p.username.clone()),
                        role: (kind == ConversationKind::Group)
                            .then(|| Role::parse(&role))
                            .flatten(),
                        peer,
                        last_seq,
                        joined_seq,
                        read_seq: seen,
                        // Beyond the newest UNREAD_COUNTED, every message counts.
                        unread: counted.get(&id).copied().unwrap_or(0)
                            + (last_seq - seen - UNREAD_COUNTED).max(0),
                        last_activity: last_ms,
                    }
                },
            )
            .collect())
    }

    async fn mark_delivered(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        // Reading delivers too: a position at or behind `read_seq` is no news.
        let done = sqlx::query(
            "UPDATE members SET delivered_seq = ? \
             WHERE conversation_id = ? AND user_id = ? AND delivered_seq < ? AND read_seq < ?",
        )
        .bind(seq)
        .bind(conversation_id)
        .bind(user_id)
        .bind(seq)
        .bind(seq)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok((done.rows_affected() > 0).then_some(seq))
    }

    async fn mark_read(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        let done = sqlx::query(
            "UPDATE members SET read_seq = ? \
             WHERE conversation_id = ? AND user_id = ? AND read_seq < ?",
        )
        .bind(seq)
        .bind(conversation_id)
        .bind(user_id)
        .bind(seq)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok((done.rows_affected() > 0).then_some(seq))
    }

    async fn create_join_request(
        &self,
        conversation_id: i64,
        user_id: i64,
        note: &str,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO join_requests (conversation_id, user_id, note, status, pending_key, created_ms) \
             VALUES (?, ?, ?, 'pending', ?, ?)",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(note)
        .bind(format!("{conversation_id}:{user_id}"))
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => Self::finish(tx, events, now_ms).await,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn join_requests(
        &self,
        conversation_id: i64,
    ) -> Result<Vec<(UserRef, String)>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, String)>(
            "SELECT u.id, u.username, r.note FROM join_requests r JOIN users u ON u.id = r.user_id \
             WHERE r.conversation_id = ? AND r.status = 'pending' ORDER BY r.id",
        )
        .bind(conversation_id)
        .fetch_all(&self.read)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, username, note)| (UserRef { id, username }, note))
            .collect())
    }

    async fn decide_join_request(
        &self,
        conversation_id: i64,
        user_id: i64,
        approve: bool,
        limit: usize,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::touch(&mut tx, conversation_id).await?;
        let settled = sqlx::query(
            "UPDATE join_requests SET status = ?, pending_key = NULL, decided_ms = ? \
             WHERE pending_key = ?",
        )
        .bind(if approve { "approved" } else { "rejected" })
        .bind(now_ms)
        .bind(format!("{conversation_id}:{user_id}"))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if settled.rows_affected() == 0 {
            return Ok(None);
        }
        if approve {
            if Self::member_count(&mut tx, conversation_id).await? >= limit {
                return Ok(None);
            }
            self.insert_member(&mut tx, conversation_id, user_id, Role::Member, now_ms)
                .await?;
        }
        Self::finish(tx, events, now_ms).await
    }
}

/// The conversation's and the member's columns of a membership read, in `MembershipRow` order.
const MEMBERSHIP_COLUMNS: &str = "c.id, c.kind, c.slug, c.name, c.owner_id, c.dissolved, \
     c.last_seq, c.direct_key, m.user_id, u.username, m.role, m.joined_seq, m.read_seq, \
     m.delivered_seq";
const MEMBERSHIP_FROM: &str = "FROM members m JOIN conversations c ON c.id = m.conversation_id \
     JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? AND m.user_id = ?";

/// A conversation row, a member row, then two counts (friendships, blocks).
type MembershipRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    i64,
    i64,
    Option<String>,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
);

impl SqlStore {
    /// Runs a membership read built from the constants above.
    async fn membership_row(
        &self,
        sql: String,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member, (bool, bool))>, StoreError> {
        // Built only from the constant fragments above: no data in the SQL text.
        let row = sqlx::query_as::<_, MembershipRow>(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(|r| {
            let c = (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7);
            let m = (r.8, r.9, r.10, r.11, r.12, r.13);
            (conversation(c), member(m), (r.14 > 0, r.15 > 0))
        }))
    }
}
