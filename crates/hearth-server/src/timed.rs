//! A timing decorator over the storage traits: every call is one observation of
//! `hearth_store_op_seconds{store, op}` (and `hearth_store_errors_total` when it fails), and
//! stored messages are counted by conversation kind. Wrapping the trait objects times every
//! backend (SQLite, MySQL, Redis) the same way without touching a query.
//!
//! Pings are not timed: readiness probes would drown the real operations.

use crate::telemetry;
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::model::{
    ChatMessage, Conversation, ConversationRef, Member, NewMessage, NewUser, Role, Room, User,
    UserRef,
};
use hearth_core::store::{
    Applied, ConversationStore, Decision, FriendRequest, InboxStore, MessageStore, NewEvent,
    RoomDeletion, SessionStore, SocialStore, Stores, UserStore,
};
use hearth_proto::native::{ConversationState, InboxEvent};
use hearth_proto::room::MessageId;
use metrics::{counter, histogram};
use std::sync::Arc;
use std::time::Instant;

/// Wraps every store of `stores` (those added later pass through untimed).
pub fn timed(stores: Stores) -> Stores {
    Stores {
        users: Arc::new(Timed(stores.users.clone())),
        sessions: Arc::new(Timed(stores.sessions.clone())),
        messages: Arc::new(Timed(stores.messages.clone())),
        social: Arc::new(Timed(stores.social.clone())),
        conversations: Arc::new(Timed(stores.conversations.clone())),
        inbox: Arc::new(Timed(stores.inbox.clone())),
        ..stores
    }
}

struct Timed<T: ?Sized>(Arc<T>);

/// Times `$call` (an awaited store call returning `Result<_, StoreError>`).
macro_rules! timed {
    ($store:literal, $op:literal, $call:expr) => {{
        let start = Instant::now();
        let result = $call;
        histogram!(telemetry::STORE_SECONDS, "store" => $store, "op" => $op)
            .record(start.elapsed().as_secs_f64());
        if let Err(error) = &result {
            let kind = match error {
                StoreError::Unavailable(_) => "unavailable",
                _ => "backend",
            };
            counter!(telemetry::STORE_ERRORS, "store" => $store, "op" => $op, "kind" => kind)
                .increment(1);
        }
        result
    }};
}

#[async_trait]
impl UserStore for Timed<dyn UserStore> {
    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError> {
        timed!("users", "insert_user", self.0.insert_user(user).await)
    }
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        timed!(
            "users",
            "user_credentials",
            self.0.user_credentials(email).await
        )
    }
    async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        timed!("users", "user", self.0.user(id).await)
    }
    async fn set_username(&self, id: i64, username: &str) -> Result<bool, StoreError> {
        timed!(
            "users",
            "set_username",
            self.0.set_username(id, username).await
        )
    }
    async fn set_password_hash(&self, id: i64, password_hash: &str) -> Result<(), StoreError> {
        timed!(
            "users",
            "set_password_hash",
            self.0.set_password_hash(id, password_hash).await
        )
    }
    async fn set_avatar(&self, id: i64, file_id: Option<&str>) -> Result<(), StoreError> {
        timed!("users", "set_avatar", self.0.set_avatar(id, file_id).await)
    }
    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<UserRef>, StoreError> {
        timed!(
            "users",
            "search_users",
            self.0.search_users(prefix, limit).await
        )
    }
    async fn set_last_seen(&self, user_id: i64, ms: i64) -> Result<(), StoreError> {
        timed!(
            "users",
            "set_last_seen",
            self.0.set_last_seen(user_id, ms).await
        )
    }
    async fn last_seen(&self, user_id: i64) -> Result<Option<i64>, StoreError> {
        timed!("users", "last_seen", self.0.last_seen(user_id).await)
    }
    async fn active_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        timed!("users", "active_user", self.0.active_user(id).await)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

#[async_trait]
impl SessionStore for Timed<dyn SessionStore> {
    async fn insert_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        timed!(
            "sessions",
            "insert_session",
            self.0
                .insert_session(token_hash, user_id, expires_at_ms)
                .await
        )
    }
    async fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        timed!(
            "sessions",
            "session_user",
            self.0.session_user(token_hash, now_ms).await
        )
    }
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        timed!(
            "sessions",
            "delete_session",
            self.0.delete_session(token_hash).await
        )
    }
    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        timed!(
            "sessions",
            "delete_user_sessions",
            self.0.delete_user_sessions(user_id).await
        )
    }
    async fn count_sessions(&self, now_ms: i64) -> Result<Option<u64>, StoreError> {
        timed!(
            "sessions",
            "count_sessions",
            self.0.count_sessions(now_ms).await
        )
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

#[async_trait]
impl MessageStore for Timed<dyn MessageStore> {
    async fn upsert_room(&self, slug: &str, name: &str) -> Result<Room, StoreError> {
        timed!(
            "messages",
            "upsert_room",
            self.0.upsert_room(slug, name).await
        )
    }
    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        timed!("messages", "rooms", self.0.rooms().await)
    }
    async fn delete_room(&self, slug: &str, force: bool) -> Result<RoomDeletion, StoreError> {
        timed!(
            "messages",
            "delete_room",
            self.0.delete_room(slug, force).await
        )
    }
    async fn last_seq(&self, conversation_id: i64) -> Result<i64, StoreError> {
        timed!(
            "messages",
            "last_seq",
            self.0.last_seq(conversation_id).await
        )
    }
    async fn append_messages(
        &self,
        conversation: &ConversationRef,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let kind = conversation.kind.as_str();
        let stored = timed!(
            "messages",
            "append_messages",
            self.0.append_messages(conversation, messages, now_ms).await
        );
        if let Ok(stored) = &stored {
            counter!(telemetry::MESSAGES_STORED, "kind" => kind).increment(stored.len() as u64);
        }
        stored
    }
    async fn messages_before(
        &self,
        conversation: &ConversationRef,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        timed!(
            "messages",
            "messages_before",
            self.0.messages_before(conversation, before, limit).await
        )
    }
    async fn sent_messages(
        &self,
        sender: i64,
        client_msg_ids: &[String],
    ) -> Result<Vec<ChatMessage>, StoreError> {
        timed!(
            "messages",
            "sent_messages",
            self.0.sent_messages(sender, client_msg_ids).await
        )
    }
    async fn messages_after(
        &self,
        conversation_id: i64,
        viewer: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        timed!(
            "messages",
            "messages_after",
            self.0
                .messages_after(conversation_id, viewer, after, limit)
                .await
        )
    }
    async fn message(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        timed!(
            "messages",
            "message",
            self.0.message(conversation_id, seq).await
        )
    }
    async fn recall(&self, conversation_id: i64, seq: i64) -> Result<bool, StoreError> {
        timed!(
            "messages",
            "recall",
            self.0.recall(conversation_id, seq).await
        )
    }
    async fn withhold_repeats(&self, conversation_id: i64, seq: i64) -> Result<u64, StoreError> {
        timed!(
            "messages",
            "withhold_repeats",
            self.0.withhold_repeats(conversation_id, seq).await
        )
    }
    async fn withheld_seqs(
        &self,
        viewer: i64,
        conversation_id: i64,
        seqs: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        timed!(
            "messages",
            "withheld_seqs",
            self.0.withheld_seqs(viewer, conversation_id, seqs).await
        )
    }
    async fn edit(
        &self,
        conversation_id: i64,
        seq: i64,
        content: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        timed!(
            "messages",
            "edit",
            self.0.edit(conversation_id, seq, content, now_ms).await
        )
    }
    async fn hide(
        &self,
        user_id: i64,
        conversation_id: i64,
        seq: i64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError> {
        timed!(
            "messages",
            "hide",
            self.0.hide(user_id, conversation_id, seq, events).await
        )
    }
}

#[async_trait]
impl SocialStore for Timed<dyn SocialStore> {
    async fn are_friends(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        timed!("social", "are_friends", self.0.are_friends(a, b).await)
    }
    async fn blocked_either_way(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        timed!(
            "social",
            "blocked_either_way",
            self.0.blocked_either_way(a, b).await
        )
    }
    async fn direct_status(&self, a: i64, b: i64) -> Result<(bool, bool), StoreError> {
        timed!("social", "direct_status", self.0.direct_status(a, b).await)
    }
    async fn create_friend_request(
        &self,
        from: i64,
        to: i64,
        note: &str,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "social",
            "create_friend_request",
            self.0
                .create_friend_request(from, to, note, now_ms, events)
                .await
        )
    }
    async fn decide_friend_request(
        &self,
        from: i64,
        to: i64,
        decision: Decision,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "social",
            "decide_friend_request",
            self.0
                .decide_friend_request(from, to, decision, now_ms, events)
                .await
        )
    }
    async fn pending_friend_requests(
        &self,
        user: i64,
    ) -> Result<(Vec<FriendRequest>, Vec<FriendRequest>), StoreError> {
        timed!(
            "social",
            "pending_friend_requests",
            self.0.pending_friend_requests(user).await
        )
    }
    async fn friends(&self, user: i64) -> Result<Vec<UserRef>, StoreError> {
        timed!("social", "friends", self.0.friends(user).await)
    }
    async fn remove_friend(
        &self,
        user: i64,
        friend: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "social",
            "remove_friend",
            self.0.remove_friend(user, friend, events).await
        )
    }
    async fn block(
        &self,
        user: i64,
        target: i64,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "social",
            "block",
            self.0.block(user, target, now_ms, events).await
        )
    }
    async fn unblock(&self, user: i64, target: i64) -> Result<bool, StoreError> {
        timed!("social", "unblock", self.0.unblock(user, target).await)
    }
    async fn blocked(&self, user: i64) -> Result<Vec<UserRef>, StoreError> {
        timed!("social", "blocked", self.0.blocked(user).await)
    }
}

#[async_trait]
impl ConversationStore for Timed<dyn ConversationStore> {
    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError> {
        timed!(
            "conversations",
            "conversation",
            self.0.conversation(id).await
        )
    }
    async fn member(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<Member>, StoreError> {
        timed!(
            "conversations",
            "member",
            self.0.member(conversation_id, user_id).await
        )
    }
    async fn membership(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member)>, StoreError> {
        timed!(
            "conversations",
            "membership",
            self.0.membership(conversation_id, user_id).await
        )
    }
    async fn send_membership(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member, (bool, bool))>, StoreError> {
        timed!(
            "conversations",
            "send_membership",
            self.0.send_membership(conversation_id, user_id).await
        )
    }
    async fn members(&self, conversation_id: i64) -> Result<Vec<Member>, StoreError> {
        timed!(
            "conversations",
            "members",
            self.0.members(conversation_id).await
        )
    }
    async fn share_group(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        timed!(
            "conversations",
            "share_group",
            self.0.share_group(a, b).await
        )
    }
    async fn member_ids(&self, conversation_id: i64) -> Result<Vec<i64>, StoreError> {
        timed!(
            "conversations",
            "member_ids",
            self.0.member_ids(conversation_id).await
        )
    }
    async fn direct_conversation(
        &self,
        a: i64,
        b: i64,
        now_ms: i64,
    ) -> Result<Conversation, StoreError> {
        timed!(
            "conversations",
            "direct_conversation",
            self.0.direct_conversation(a, b, now_ms).await
        )
    }
    async fn create_group(
        &self,
        name: &str,
        owner: i64,
        members: &[i64],
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<(Conversation, Vec<(i64, InboxEvent)>), StoreError> {
        timed!(
            "conversations",
            "create_group",
            self.0
                .create_group(name, owner, members, now_ms, events)
                .await
        )
    }
    async fn add_members(
        &self,
        conversation_id: i64,
        users: &[i64],
        limit: usize,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Option<(Vec<i64>, Vec<(i64, InboxEvent)>)>, StoreError> {
        timed!(
            "conversations",
            "add_members",
            self.0
                .add_members(conversation_id, users, limit, now_ms, events)
                .await
        )
    }
    async fn remove_member(
        &self,
        conversation_id: i64,
        user_id: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "conversations",
            "remove_member",
            self.0.remove_member(conversation_id, user_id, events).await
        )
    }
    async fn set_role(
        &self,
        conversation_id: i64,
        user_id: i64,
        role: Role,
    ) -> Result<bool, StoreError> {
        timed!(
            "conversations",
            "set_role",
            self.0.set_role(conversation_id, user_id, role).await
        )
    }
    async fn rename_group(&self, conversation_id: i64, name: &str) -> Result<bool, StoreError> {
        timed!(
            "conversations",
            "rename_group",
            self.0.rename_group(conversation_id, name).await
        )
    }
    async fn transfer_ownership(
        &self,
        conversation_id: i64,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        timed!(
            "conversations",
            "transfer_ownership",
            self.0.transfer_ownership(conversation_id, from, to).await
        )
    }
    async fn dissolve(
        &self,
        conversation_id: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "conversations",
            "dissolve",
            self.0.dissolve(conversation_id, events).await
        )
    }
    async fn conversation_states(&self, user: i64) -> Result<Vec<ConversationState>, StoreError> {
        timed!(
            "conversations",
            "conversation_states",
            self.0.conversation_states(user).await
        )
    }
    async fn mark_delivered(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        timed!(
            "conversations",
            "mark_delivered",
            self.0.mark_delivered(conversation_id, user_id, seq).await
        )
    }
    async fn mark_read(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        timed!(
            "conversations",
            "mark_read",
            self.0.mark_read(conversation_id, user_id, seq).await
        )
    }
    async fn create_join_request(
        &self,
        conversation_id: i64,
        user_id: i64,
        note: &str,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError> {
        timed!(
            "conversations",
            "create_join_request",
            self.0
                .create_join_request(conversation_id, user_id, note, now_ms, events)
                .await
        )
    }
    async fn join_requests(
        &self,
        conversation_id: i64,
    ) -> Result<Vec<(UserRef, String)>, StoreError> {
        timed!(
            "conversations",
            "join_requests",
            self.0.join_requests(conversation_id).await
        )
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
        timed!(
            "conversations",
            "decide_join_request",
            self.0
                .decide_join_request(conversation_id, user_id, approve, limit, now_ms, events)
                .await
        )
    }
}

#[async_trait]
impl InboxStore for Timed<dyn InboxStore> {
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now_ms: i64,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError> {
        timed!(
            "inbox",
            "append_events",
            self.0.append_events(events, now_ms).await
        )
    }
    async fn events_after(
        &self,
        user: i64,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<InboxEvent>, i64), StoreError> {
        timed!(
            "inbox",
            "events_after",
            self.0.events_after(user, after, limit).await
        )
    }
}
