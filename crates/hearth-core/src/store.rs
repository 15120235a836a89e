//! The storage traits. Backends implement them; services depend only on them.
//!
//! Methods that change state take the inbox events announcing the change (`NewEvent`) and
//! write them in the same transaction, so a notification exists exactly when its change does.

use crate::StoreError;
use crate::admin::{Counts, RoomInfo, UserInfo, UserRole};
use crate::model::{
    ChatMessage, Conversation, ConversationRef, Member, NewMessage, NewUser, Role, Room, User,
    UserRef,
};
use async_trait::async_trait;
use hearth_proto::native::{ConversationState, InboxEvent};
use hearth_proto::room::MessageId;
use std::sync::Arc;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account; `UsernameTaken` / `EmailTaken` if either is in use (enforced by a
    /// unique index, so concurrent sign-ups cannot both win).
    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError>;
    /// The account with this (normalized) email and its password hash.
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>, StoreError>;
    async fn user(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// Renames the user (`StoreError::UsernameTaken` if another has the name, compared
    /// case-insensitively); false if there is no such user.
    async fn set_username(&self, id: i64, username: &str) -> Result<bool, StoreError>;
    async fn set_password_hash(&self, id: i64, password_hash: &str) -> Result<(), StoreError>;
    /// Sets (or with `None` clears) the user's avatar: the id of a file already checked to be
    /// an image they uploaded.
    async fn set_avatar(&self, id: i64, file_id: Option<&str>) -> Result<(), StoreError>;
    /// Users whose username starts with `prefix` (case-insensitively) or whose email is
    /// exactly `prefix`, at most `limit`.
    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<UserRef>, StoreError>;
    async fn set_last_seen(&self, user_id: i64, ms: i64) -> Result<(), StoreError>;
    async fn last_seen(&self, user_id: i64) -> Result<Option<i64>, StoreError>;
    /// The user if they may act: exists and is not banned. What a session resolves to.
    async fn active_user(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// A trivial round trip to the database, for readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Sessions are keyed by the SHA-256 of the token; the token itself is never stored.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;
    /// The session's user if the session exists and has not expired at `now_ms`.
    async fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<i64>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of the user (ban, admin revocation); how many there were.
    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, StoreError>;
    /// Live sessions, if the backend can count them.
    async fn count_sessions(&self, now_ms: i64) -> Result<Option<u64>, StoreError>;
    /// A trivial round trip to where sessions live (Redis in cluster mode).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The messages of every kind of conversation.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Creates the room, or renames it if the slug exists.
    async fn upsert_room(&self, slug: &str, name: &str) -> Result<Room, StoreError>;
    /// Every room, oldest first.
    async fn rooms(&self) -> Result<Vec<Room>, StoreError>;
    /// Deletes a room. One with messages is kept unless `force`, which deletes them too.
    async fn delete_room(&self, slug: &str, force: bool) -> Result<RoomDeletion, StoreError>;
    /// The newest `seq` of a conversation (0 if it has none).
    async fn last_seq(&self, conversation_id: i64) -> Result<i64, StoreError>;
    /// Stores `messages` atomically (all or none), giving them the next `seq`s in order and a
    /// time `max(now_ms, the conversation's last time)`, and moves each sender's read position
    /// past their own message. Returns them as stored, in the same order. A `client_msg_id`
    /// already used by its sender makes the whole call fail with `Backend` (callers check
    /// [`MessageStore::sent_messages`] first; the unique index is the last line of defence).
    async fn append_messages(
        &self,
        conversation: &ConversationRef,
        messages: Vec<NewMessage>,
        now_ms: i64,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Up to `limit` messages with `seq < before.seq` (the newest if `None`), newest first.
    /// `before` is what a client sent: its `seq` decides; its `ms` is only a hint.
    async fn messages_before(
        &self,
        conversation: &ConversationRef,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Messages `sender` already stored under these client ids (any conversation).
    async fn sent_messages(
        &self,
        sender: i64,
        client_msg_ids: &[String],
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Messages with `after < seq`, oldest first, at most `limit`, as `viewer` sees them.
    async fn messages_after(
        &self,
        conversation_id: i64,
        viewer: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    async fn message(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> Result<Option<ChatMessage>, StoreError>;
    /// Marks the message recalled and drops its content, its transcript and the words the
    /// system events after it repeat ([`crate::model::repeats_seq`]), in one transaction;
    /// false if it was already recalled.
    async fn recall(&self, conversation_id: i64, seq: i64) -> Result<bool, StoreError>;
    /// Drops the words of message `seq` from the system events after it that repeat them (a
    /// transcript posted while the voice message was being recalled); how many changed.
    async fn withhold_repeats(&self, conversation_id: i64, seq: i64) -> Result<u64, StoreError>;
    /// Which of `seqs` are withheld from `viewer`: recalled, or hidden by the viewer.
    async fn withheld_seqs(
        &self,
        viewer: i64,
        conversation_id: i64,
        seqs: &[i64],
    ) -> Result<Vec<i64>, StoreError>;
    /// Replaces the content of a message that is not recalled; false otherwise.
    async fn edit(
        &self,
        conversation_id: i64,
        seq: i64,
        content: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Hides one message for one user, with the event telling their devices.
    async fn hide(
        &self,
        user_id: i64,
        conversation_id: i64,
        seq: i64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError>;
}

/// What [`MessageStore::delete_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomDeletion {
    NotFound,
    /// Kept: it has this many messages and deletion was not forced.
    HasMessages(i64),
    /// Gone, with this many messages.
    Deleted(i64),
}

/// A notification for one user's inbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub user_id: i64,
    pub kind: &'static str,
    pub payload: serde_json::Value,
}

/// Which side of a friend request is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    pub from: UserRef,
    pub to: UserRef,
    pub note: String,
    pub created_ms: i64,
}

/// The result of a change: whether it applied, and the events written with it.
pub type Applied = Option<Vec<(i64, InboxEvent)>>;

#[async_trait]
pub trait SocialStore: Send + Sync {
    async fn are_friends(&self, a: i64, b: i64) -> Result<bool, StoreError>;
    /// Whether `a` blocked `b` or `b` blocked `a`.
    async fn blocked_either_way(&self, a: i64, b: i64) -> Result<bool, StoreError>;
    /// Both answers at once, for the direct-message check: `(friends, blocked either way)`.
    async fn direct_status(&self, a: i64, b: i64) -> Result<(bool, bool), StoreError>;
    /// Creates a pending request unless one is pending between the two (either direction):
    /// `None` then. Unique in the database.
    async fn create_friend_request(
        &self,
        from: i64,
        to: i64,
        note: &str,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    /// Settles the pending request `from → to`; accepting makes them friends.
    async fn decide_friend_request(
        &self,
        from: i64,
        to: i64,
        decision: Decision,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    /// Pending requests sent to and by `user`.
    async fn pending_friend_requests(
        &self,
        user: i64,
    ) -> Result<(Vec<FriendRequest>, Vec<FriendRequest>), StoreError>;
    async fn friends(&self, user: i64) -> Result<Vec<UserRef>, StoreError>;
    async fn remove_friend(
        &self,
        user: i64,
        friend: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    /// Blocks `target`: ends any friendship and pending request between the two.
    async fn block(
        &self,
        user: i64,
        target: i64,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    async fn unblock(&self, user: i64, target: i64) -> Result<bool, StoreError>;
    async fn blocked(&self, user: i64) -> Result<Vec<UserRef>, StoreError>;
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError>;
    async fn member(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<Member>, StoreError>;
    /// The conversation and the user's membership of it, in one read; `None` if not a member.
    async fn membership(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member)>, StoreError>;
    /// [`membership`](Self::membership) plus, for a direct conversation, what
    /// `SocialStore::direct_status` says of the two members (friends, either blocked the
    /// other; `(false, false)` otherwise): every check of a send in one read.
    async fn send_membership(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<Option<(Conversation, Member, (bool, bool))>, StoreError>;
    async fn members(&self, conversation_id: i64) -> Result<Vec<Member>, StoreError>;
    /// Whether the two users are both members of some group that is not dissolved. (A direct
    /// conversation alone does not count: it outlives the friendship and any block.)
    async fn share_group(&self, a: i64, b: i64) -> Result<bool, StoreError>;
    async fn member_ids(&self, conversation_id: i64) -> Result<Vec<i64>, StoreError>;
    /// The direct conversation of the two, created if it does not exist (unique per pair).
    async fn direct_conversation(
        &self,
        a: i64,
        b: i64,
        now_ms: i64,
    ) -> Result<Conversation, StoreError>;
    /// Creates a group with its owner and members; each event's payload is given the new
    /// group's `conversationId`.
    async fn create_group(
        &self,
        name: &str,
        owner: i64,
        members: &[i64],
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<(Conversation, Vec<(i64, InboxEvent)>), StoreError>;
    /// Adds those who are not members yet, unless that would pass `limit` members (then
    /// `None`, nothing added), and closes their pending join requests. Returns who was added.
    async fn add_members(
        &self,
        conversation_id: i64,
        users: &[i64],
        limit: usize,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Option<(Vec<i64>, Vec<(i64, InboxEvent)>)>, StoreError>;
    async fn remove_member(
        &self,
        conversation_id: i64,
        user_id: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    async fn set_role(
        &self,
        conversation_id: i64,
        user_id: i64,
        role: Role,
    ) -> Result<bool, StoreError>;
    /// Renames a group that is not dissolved; false if there is no such group.
    async fn rename_group(&self, conversation_id: i64, name: &str) -> Result<bool, StoreError>;
    /// Makes `to` the owner and `from` an admin.
    async fn transfer_ownership(
        &self,
        conversation_id: i64,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError>;
    /// Marks the group dissolved and removes every member.
    async fn dissolve(
        &self,
        conversation_id: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    /// Every conversation `user` is a member of, with their read position and unread count.
    async fn conversation_states(&self, user: i64) -> Result<Vec<ConversationState>, StoreError>;
    /// Moves the delivered position forward (never back); the new position if it moved.
    async fn mark_delivered(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Moves the read position forward (never back); the new position if it moved. (A read
    /// position counts as delivered too: `Member::delivered_seq` is never behind it.)
    async fn mark_read(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<i64>, StoreError>;
    async fn create_join_request(
        &self,
        conversation_id: i64,
        user_id: i64,
        note: &str,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
    /// Pending join requests of a group: who and their note.
    async fn join_requests(
        &self,
        conversation_id: i64,
    ) -> Result<Vec<(UserRef, String)>, StoreError>;
    /// Settles a pending join request; approving adds the member (if the limit allows: else
    /// `None`).
    async fn decide_join_request(
        &self,
        conversation_id: i64,
        user_id: i64,
        approve: bool,
        limit: usize,
        now_ms: i64,
        events: Vec<NewEvent>,
    ) -> Result<Applied, StoreError>;
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now_ms: i64,
    ) -> Result<Vec<(i64, InboxEvent)>, StoreError>;
    /// Events with `seq > after`, oldest first, at most `limit`; and the newest `seq`.
    async fn events_after(
        &self,
        user: i64,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<InboxEvent>, i64), StoreError>;
}

/// Operator tools: user roles and bans, counts. Only the durable (SQL) store has these.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Users whose username starts with `prefix` (case-insensitively), by username.
    async fn list_users(&self, prefix: &str, limit: usize) -> Result<Vec<UserInfo>, StoreError>;
    async fn user_info(&self, id: i64) -> Result<Option<UserInfo>, StoreError>;
    /// Looked up case-insensitively, as usernames are unique.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserInfo>, StoreError>;
    /// False if there is no such user.
    async fn set_user_role(&self, id: i64, role: UserRole) -> Result<bool, StoreError>;
    /// `Some(ms)` bans (since `ms`), `None` lifts the ban. False if there is no such user.
    async fn set_banned(&self, id: i64, banned_ms: Option<i64>) -> Result<bool, StoreError>;
    /// Rooms with their message counts and creation times.
    async fn room_infos(&self) -> Result<Vec<RoomInfo>, StoreError>;
    /// Counts of everything but sessions (which may live elsewhere).
    async fn counts(&self) -> Result<Counts, StoreError>;
}

/// The set of stores a node runs on, chosen at start-up.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub messages: Arc<dyn MessageStore>,
    pub social: Arc<dyn SocialStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub inbox: Arc<dyn InboxStore>,
    pub feed: Arc<dyn crate::search::FeedStore>,
    pub admin: Arc<dyn AdminStore>,
    pub files: Arc<dyn crate::files::FileStore>,
    pub transcriptions: Arc<dyn crate::transcription::TranscriptionStore>,
}
