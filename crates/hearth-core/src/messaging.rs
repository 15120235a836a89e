//! Messages in direct and group conversations: send with acknowledgement, pull, sync, read
//! positions and receipts, typing, recall, edit, delete-for-me.
//!
//! Every operation starts with the membership check ([`Messaging::membership`]): a user who is
//! not a member gets the same `not_member` answer whether or not the conversation exists.

use crate::delivery::{Deliver, push_events};
use crate::files::{FileStore, readable_by};
use crate::im_error::ImError;
pub use crate::member_cache::MemberCache;
use crate::member_cache::SendCheck;
use crate::model::{
    ChatMessage, Conversation, ConversationKind, ConversationRef, Member, MessageKind, NewMessage,
    Room, UserRef,
};
use crate::policy::{DirectPolicy, Policy};
use crate::store::{ConversationStore, InboxStore, MessageStore, NewEvent, SocialStore};
use crate::validate::{TextProblem, readable_text};
use crate::writer::{Committed, Submitted, Writers};
use crate::{Limits, now_ms};
use async_trait::async_trait;
use hearth_proto::native::{
    Ack, FileRef, ImMessage, ImServerFrame, Receipt, SyncState, Typing, global_message_id,
    valid_client_msg_id,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A page of a conversation, oldest first.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pulled {
    pub messages: Vec<ImMessage>,
    pub last_seq: i64,
}

/// A send queued on its conversation's writer (see [`Messaging::submit`]).
pub struct PendingSend {
    client_msg_id: String,
    conversation_id: i64,
    submitted: Submitted,
    transcription: Option<Arc<crate::transcription::TranscriptionQueue>>,
}

impl PendingSend {
    pub fn client_msg_id(&self) -> &str {
        &self.client_msg_id
    }

    /// Waits until the message is durably stored (or was, for a retry) and returns its ack.
    pub async fn ack(self) -> Result<Ack, ImError> {
        let stored = self
            .submitted
            .stored()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ImError::Store(crate::StoreError::Backend("nothing stored".into())))?;
        if stored.conversation_id != self.conversation_id {
            // A retry is answered with the message first sent under its id: this one names
            // another conversation, so it is a different message under a used id, not a retry.
            return Err(ImError::conflict(
                "client_msg_id_reused",
                "this clientMsgId was already used for a message in another conversation",
            ));
        }
        if stored.kind == MessageKind::Voice
            && let (Some(queue), Some(file)) = (&self.transcription, &stored.file)
        {
            // The message is stored and acknowledged whatever happens here: a transcription
            // that cannot be queued only means no transcript.
            if let Err(error) = queue
                .enqueue(stored.conversation_id, stored.seq, &file.id)
                .await
            {
                tracing::warn!(%error, "queueing a voice message for transcription failed");
            }
        }
        Ok(Ack {
            client_msg_id: self.client_msg_id,
            conversation_id: stored.conversation_id,
            id: global_message_id(stored.conversation_id, stored.seq),
            seq: stored.seq,
            timestamp: stored.ms,
        })
    }
}

pub struct Messaging {
    messages: Arc<dyn MessageStore>,
    conversations: Arc<dyn ConversationStore>,
    social: Arc<dyn SocialStore>,
    inbox: Arc<dyn InboxStore>,
    files: Arc<dyn FileStore>,
    deliver: Arc<dyn Deliver>,
    writers: Arc<Writers>,
    members: Arc<MemberCache>,
    limits: Limits,
    policy: Policy,
    /// Where stored voice messages go to be transcribed, when a transcriber is configured.
    transcription: std::sync::OnceLock<Arc<crate::transcription::TranscriptionQueue>>,
    /// When each (user, conversation) last had a typing notice passed on.
    typing: Mutex<HashMap<(i64, i64), std::time::Instant>>,
    /// Delivered positions this node stored.
    delivered_at: KnownPositions,
    /// Read positions this node stored.
    read_at: KnownPositions,
}

/// A direct or group conversation that is not dissolved: what members act in (rooms have
/// none).
fn members_only(conversation: &Conversation) -> bool {
    conversation.kind != ConversationKind::Room && !conversation.dissolved
}

/// Typing notices passed on per user and conversation at most this often; the ones between
/// are dropped (a client repeats them every few seconds while the user types, so nothing is
/// lost, and a flood of them reaches nobody).
const TYPING_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// (user, conversation) pairs remembered for the typing limit before stale ones are dropped.
const TYPING_REMEMBERED: usize = 10_000;
/// (user, conversation) positions remembered before all are forgotten (forgetting costs one
/// store round trip per pair, not correctness).
const POSITIONS_REMEMBERED: usize = 10_000;

/// Positions (read, delivered) per (user, conversation) that this node stored: a report at
/// or behind one is no news, and costs no store work.
#[derive(Default)]
struct KnownPositions(Mutex<HashMap<(i64, i64), i64>>);

impl KnownPositions {
    fn is_news(&self, key: (i64, i64), seq: i64) -> bool {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.get(&key).is_none_or(|&at| seq > at)
    }

    /// After the store took `seq` (whether or not it moved anything).
    fn stored(&self, key: (i64, i64), seq: i64) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= POSITIONS_REMEMBERED {
            known.clear();
        }
        let at = known.entry(key).or_insert(seq);
        *at = (*at).max(seq);
    }
}

/// Routes what a writer committed: rooms to every socket, other conversations to members.
pub struct Router {
    conversations: Arc<dyn ConversationStore>,
    deliver: Arc<dyn Deliver>,
    members: Arc<MemberCache>,
    rooms: Mutex<HashMap<i64, Room>>,
}

impl Router {
    pub fn new(
        conversations: Arc<dyn ConversationStore>,
        deliver: Arc<dyn Deliver>,
        members: Arc<MemberCache>,
    ) -> Router {
        Router {
            conversations,
            deliver,
            members,
            rooms: Mutex::default(),
        }
    }

    pub fn add_rooms(&self, rooms: &[Room]) {
        let mut map = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        for room in rooms {
            map.insert(room.conversation_id, room.clone());
        }
    }
}

#[async_trait]
impl Committed for Router {
    async fn committed(&self, conversation: &ConversationRef, messages: &[ChatMessage]) {
        if conversation.kind == ConversationKind::Room {
            let room = self
                .rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&conversation.id)
                .cloned();
            if let Some(room) = room {
                self.deliver.room_messages(&room, messages);
            }
            return;
        }
        match self
            .members
            .get(&*self.conversations, conversation.id)
            .await
        {
            Ok(members) => {
                let frames: Vec<ImServerFrame> = messages
                    .iter()
                    .map(|m| ImServerFrame::Message(m.to_native()))
                    .collect();
                self.deliver.all_to_users(&members, &frames);
            }
            // Stored but not pushed: members find it by seq on their next sync.
            Err(error) => tracing::warn!(%error, "cannot route messages; clients will sync"),
        }
    }
}

impl Messaging {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        messages: Arc<dyn MessageStore>,
        conversations: Arc<dyn ConversationStore>,
        social: Arc<dyn SocialStore>,
        inbox: Arc<dyn InboxStore>,
        files: Arc<dyn FileStore>,
        deliver: Arc<dyn Deliver>,
        writers: Arc<Writers>,
        members: Arc<MemberCache>,
        limits: Limits,
        policy: Policy,
    ) -> Messaging {
        Messaging {
            messages,
            conversations,
            social,
            inbox,
            files,
            deliver,
            writers,
            members,
            limits,
            policy,
            transcription: std::sync::OnceLock::new(),
            typing: Mutex::default(),
            delivered_at: KnownPositions::default(),
            read_at: KnownPositions::default(),
        }
    }

    /// From now on, stored voice messages are queued for transcription.
    pub fn set_transcription(&self, queue: Arc<crate::transcription::TranscriptionQueue>) {
        let _ = self.transcription.set(queue);
    }

    /// Posts what voice message `seq` says as a `transcribed` system message, in the voice
    /// message's sender's name. Idempotent (the transcription queue may deliver a result
    /// twice): the post carries a client id derived from the message, so a repeat is the same
    /// message.
    pub async fn post_transcript(
        &self,
        conversation_id: i64,
        seq: i64,
        text: &str,
    ) -> Result<(), ImError> {
        let Some(voice) = self.messages.message(conversation_id, seq).await? else {
            return Ok(()); // gone (its room was deleted): nothing to say it on
        };
        if voice.recalled {
            return Ok(()); // its words were taken back
        }
        // The event goes to every member; one who joined after the voice message must not
        // learn what it says. Then it only says that the transcript is there: the others read
        // it on the voice message itself.
        let late_joiner = self
            .conversations
            .members(conversation_id)
            .await?
            .iter()
            .any(|m| m.joined_seq >= seq);
        let event = if late_joiner {
            serde_json::json!({"event": "transcribed", "seq": seq})
        } else {
            serde_json::json!({"event": "transcribed", "seq": seq, "text": text})
        };
        let Some(conversation) = self.conversations.conversation(conversation_id).await? else {
            return Ok(());
        };
        let message = NewMessage {
            sender: voice.sender,
            kind: MessageKind::System,
            content: event.to_string(),
            reply_to: None,
            client_msg_id: Some(format!("transcript:{conversation_id}:{seq}")),
            file: None,
        };
        self.writers
            .append(&conversation.as_ref(), vec![message])
            .await?;
        self.withhold_if_recalled(conversation_id, seq).await?;
        Ok(())
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The conversation and the user's membership; rooms and strangers are refused alike.
    pub async fn membership(
        &self,
        user: i64,
        conversation_id: i64,
    ) -> Result<(Conversation, Member), ImError> {
        self.conversations
            .membership(conversation_id, user)
            .await?
            .filter(|(c, _)| members_only(c))
            .ok_or_else(ImError::not_member)
    }

    /// Whether `a` may write to `b` directly under the configured policy.
    pub async fn check_direct(&self, a: i64, b: i64) -> Result<(), ImError> {
        self.direct_allowed(self.social.direct_status(a, b).await?)
    }

    /// The send checks' cached view of `user` in `conversation_id` (see `MemberCache`):
    /// refused like [`Messaging::membership`] for rooms, strangers and dissolved groups.
    async fn cached_membership(
        &self,
        user: i64,
        conversation_id: i64,
    ) -> Result<Arc<SendCheck>, ImError> {
        self.members
            .send_check(&*self.conversations, conversation_id, user)
            .await?
            .filter(|check| members_only(&check.0))
            .ok_or_else(ImError::not_member)
    }

    /// In a direct conversation, whether the two may still write to each other (friendship
    /// and blocks under the policy); anywhere else, yes.
    fn direct_check(&self, (conversation, _, direct): &SendCheck) -> Result<(), ImError> {
        if conversation.kind == ConversationKind::Direct {
            self.direct_allowed(*direct)
        } else {
            Ok(())
        }
    }

    /// Whether a typing notice of `user` in `conversation_id` is passed on now; remembers it.
    fn typing_due(&self, user: i64, conversation_id: i64) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.typing.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() >= TYPING_REMEMBERED {
            last.retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
        }
        match last.get(&(user, conversation_id)) {
            Some(at) if now.duration_since(*at) < TYPING_EVERY => false,
            _ => {
                last.insert((user, conversation_id), now);
                true
            }
        }
    }

    /// The policy applied to what `SocialStore::direct_status` says of two users.
    fn direct_allowed(&self, (friends, blocked): (bool, bool)) -> Result<(), ImError> {
        if blocked {
            return Err(ImError::forbidden(
                "blocked",
                "one of you has blocked the other",
            ));
        }
        if self.policy.direct_messages == DirectPolicy::Friends && !friends {
            return Err(ImError::forbidden(
                "not_friends",
                "direct messages are between friends",
            ));
        }
        Ok(())
    }

    /// The direct conversation with `peer`, created on first use.
    pub async fn open_direct(&self, user: &UserRef, peer: i64) -> Result<i64, ImError> {
        if peer == user.id {
            return Err(ImError::invalid("bad_request", "that is you"));
        }
        self.check_direct(user.id, peer).await?;
        let conversation = self
            .conversations
            .direct_conversation(user.id, peer, now_ms())
            .await?;
        self.deliver.members_changed(conversation.id);
        Ok(conversation.id)
    }

    /// Sends a message from `sender`, stored once (a retry with the same `client_msg_id` gets
    /// the first ack). `image`, `file` and `voice` messages carry `file_id`, an upload the
    /// sender can read; their `content` is a caption and may be empty.
    ///
    /// In two steps: this checks the send and queues it on the conversation's writer, returning
    /// once it is queued; [`PendingSend::ack`] then waits for the commit. Sends submitted one
    /// after another are stored in that order, so a socket pipelines its sends by awaiting each
    /// `submit` and keeping the acks in flight.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit(
        &self,
        sender: &UserRef,
        conversation_id: i64,
        client_msg_id: String,
        kind: MessageKind,
        content: String,
        reply_to: Option<i64>,
        file_id: Option<String>,
    ) -> Result<PendingSend, ImError> {
        if !valid_client_msg_id(&client_msg_id) {
            return Err(ImError::invalid(
                "bad_client_msg_id",
                "clientMsgId must be 1 to 64 printable ASCII characters",
            ));
        }
        match (kind, &file_id) {
            (MessageKind::System, _) => {
                return Err(ImError::invalid(
                    "bad_kind",
                    "system messages come from the server",
                ));
            }
            (MessageKind::Text, Some(_)) => {
                return Err(ImError::invalid(
                    "unexpected_file",
                    "text messages carry no file; send an image, file or voice message",
                ));
            }
            (MessageKind::Image | MessageKind::File | MessageKind::Voice, None) => {
                return Err(ImError::invalid(
                    "file_required",
                    "image, file and voice messages need the fileId of an upload",
                ));
            }
            (MessageKind::Text, None) => self.check_text(&content, false)?,
            // A caption: may be empty, not long.
            _ => self.check_text(&content, true)?,
        }
        // Membership and, for a direct conversation, friendship and blocks: remembered
        // between sends (see `MemberCache`). A reply needs the conversation's current
        // `last_seq`, so it reads them afresh.
        let check = match reply_to {
            None => {
                self.members
                    .send_check(&*self.conversations, conversation_id, sender.id)
                    .await?
            }
            Some(_) => self
                .conversations
                .send_membership(conversation_id, sender.id)
                .await?
                .map(Arc::new),
        };
        let check = check
            .as_deref()
            .filter(|check| members_only(&check.0))
            .ok_or_else(ImError::not_member)?;
        let (conversation, member, _) = check;
        let file = match file_id {
            Some(id) => Some(self.attachable(sender.id, kind, &id).await?),
            None => None,
        };
        self.direct_check(check)?;
        if let Some(seq) = reply_to
            && (seq <= member.joined_seq || seq > conversation.last_seq)
        {
            return Err(ImError::invalid(
                "bad_reply_to",
                "replyTo is not a message you can see here",
            ));
        }
        let message = NewMessage {
            sender: sender.clone(),
            kind,
            content,
            reply_to,
            client_msg_id: Some(client_msg_id.clone()),
            file,
        };
        let submitted = self
            .writers
            .submit(&conversation.as_ref(), vec![message])
            .await?;
        Ok(PendingSend {
            client_msg_id,
            conversation_id: conversation.id,
            submitted,
            transcription: self.transcription.get().cloned(),
        })
    }

    /// The upload `file_id` if `user` may attach it to a message of `kind`: they can read it
    /// (it is theirs, or was shared with them), and an image message needs an image.
    async fn attachable(
        &self,
        user: i64,
        kind: MessageKind,
        file_id: &str,
    ) -> Result<FileRef, ImError> {
        let file = readable_by(&*self.files, user, file_id).await?;
        if kind == MessageKind::Image && !file.is_image() {
            return Err(ImError::invalid(
                "not_an_image",
                "image messages need a PNG, JPEG, GIF or WebP upload; send it as a file",
            ));
        }
        Ok(file.to_ref())
    }

    /// A message's text, or an upload's caption (`may_be_blank`).
    fn check_text(&self, content: &str, may_be_blank: bool) -> Result<(), ImError> {
        let max = self.limits.max_content_chars;
        readable_text(content, max, may_be_blank).map_err(|problem| match problem {
            TextProblem::Blank => ImError::invalid("empty_content", "message is empty"),
            TextProblem::StrayControls => ImError::invalid(
                "bad_content",
                "messages must not contain control characters other than tabs and line breaks",
            ),
            TextProblem::TooLong => ImError::invalid(
                "content_too_long",
                format!("messages are limited to {max} characters"),
            ),
        })
    }

    /// Messages after `after`, oldest first, never from before the user joined.
    pub async fn pull(
        &self,
        user: i64,
        conversation_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Pulled, ImError> {
        let (conversation, member) = self.membership(user, conversation_id).await?;
        let limit = limit.clamp(1, self.policy.max_page);
        let after = after.max(member.joined_seq);
        let mut messages = self
            .messages
            .messages_after(conversation_id, user, after, limit)
            .await?;
        self.withhold_repeated_words(&member, conversation_id, &mut messages)
            .await?;
        // The reader may see the files: they can read the messages.
        crate::files::describe_files(&*self.files, &mut messages).await?;
        Ok(Pulled {
            messages: messages.iter().map(ChatMessage::to_native).collect(),
            last_seq: conversation.last_seq,
        })
    }

    /// Edits and transcripts repeat a message's words: withheld from `viewer` where that
    /// message is not theirs to read — from before they joined, hidden by them, or recalled
    /// (for events stored before recalls scrubbed them).
    async fn withhold_repeated_words(
        &self,
        viewer: &Member,
        conversation_id: i64,
        messages: &mut [ChatMessage],
    ) -> Result<(), ImError> {
        // (index in the page, the seq whose words it repeats)
        let repeats: Vec<(usize, i64)> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, m.repeats()?)))
            .collect();
        let asked: Vec<i64> = repeats
            .iter()
            .map(|&(_, seq)| seq)
            .filter(|&seq| seq > viewer.joined_seq)
            .collect();
        let withheld = if asked.is_empty() {
            Vec::new()
        } else {
            self.messages
                .withheld_seqs(viewer.user.id, conversation_id, &asked)
                .await?
        };
        for (i, seq) in repeats {
            if seq <= viewer.joined_seq || withheld.contains(&seq) {
                messages[i].withhold_repeated_words();
            }
        }
        Ok(())
    }

    /// Every conversation's position, and inbox events after `inbox_after`.
    pub async fn sync(&self, user: i64, inbox_after: i64) -> Result<SyncState, ImError> {
        let conversations = self.conversations.conversation_states(user).await?;
        let (inbox, inbox_seq) = self
            .inbox
            .events_after(user, inbox_after.max(0), self.policy.max_page)
            .await?;
        Ok(SyncState {
            conversations,
            inbox,
            inbox_seq,
        })
    }

    /// Moves the read position (reading delivers too) and tells every member (the reader's
    /// other devices clear their unread count from it). A position at or behind the one this
    /// node last stored costs no store work.
    /// In a direct conversation across a block, only the reader's own devices are told.
    pub async fn read(&self, user: i64, conversation_id: i64, seq: i64) -> Result<(), ImError> {
        let (conversation, _) = self.membership(user, conversation_id).await?;
        let seq = seq.clamp(0, conversation.last_seq);
        if !self.read_at.is_news((user, conversation_id), seq) {
            return Ok(());
        }
        let moved = self
            .conversations
            .mark_read(conversation_id, user, seq)
            .await?;
        self.read_at.stored((user, conversation_id), seq);
        if let Some(seq) = moved {
            let check = self.cached_membership(user, conversation_id).await?;
            let members: Arc<[i64]> = if self.direct_check(&check).is_err() {
                Arc::new([user])
            } else {
                self.members
                    .get(&*self.conversations, conversation_id)
                    .await?
            };
            let receipt = ImServerFrame::Receipt(Receipt {
                conversation_id,
                user_id: user,
                seq,
            });
            self.deliver.to_users(&members, &receipt);
        }
        Ok(())
    }

    /// Moves forward the position up to which one of the user's devices has received the
    /// conversation, and tells the other members (the "delivered" tick). Kept in direct
    /// conversations and in groups of up to [`Policy::delivery_receipts_max_members`]: in a
    /// bigger group every message would set off a write and a broadcast per member. Across a
    /// block nobody is told.
    pub async fn delivered(
        &self,
        user: i64,
        conversation_id: i64,
        seq: i64,
    ) -> Result<(), ImError> {
        let check = self.cached_membership(user, conversation_id).await?;
        let members = self
            .members
            .get(&*self.conversations, conversation_id)
            .await?;
        // A direct conversation (two members) always keeps them, whatever the policy says.
        if members.len() > self.policy.delivery_receipts_max_members.max(2) {
            return Ok(());
        }
        if !self.delivered_at.is_news((user, conversation_id), seq) {
            return Ok(());
        }
        let (conversation, member) = self.membership(user, conversation_id).await?;
        let seq = seq.clamp(0, conversation.last_seq);
        let moved = self
            .conversations
            .mark_delivered(conversation_id, user, seq)
            .await?;
        self.delivered_at
            .stored((user, conversation_id), seq.max(member.read_seq));
        let Some(seq) = moved else {
            return Ok(());
        };
        if self.direct_check(&check).is_err() {
            return Ok(());
        }
        let others: Vec<i64> = members.iter().copied().filter(|m| *m != user).collect();
        let delivery = ImServerFrame::Delivery(Receipt {
            conversation_id,
            user_id: user,
            seq,
        });
        self.deliver.to_users(&others, &delivery);
        Ok(())
    }

    /// Tells the other members that `user` is typing (as often as [`TYPING_EVERY`]). Nothing
    /// is stored. Refused where a message would be (a direct conversation across a block, or
    /// with someone no longer a friend when direct messages are between friends).
    pub async fn typing(&self, user: i64, conversation_id: i64) -> Result<(), ImError> {
        let check = self.cached_membership(user, conversation_id).await?;
        self.direct_check(&check)?;
        if !self.typing_due(user, conversation_id) {
            return Ok(());
        }
        let members = self
            .members
            .get(&*self.conversations, conversation_id)
            .await?;
        let others: Vec<i64> = members.iter().copied().filter(|m| *m != user).collect();
        let frame = ImServerFrame::Typing(Typing {
            conversation_id,
            user_id: user,
        });
        self.deliver.to_users(&others, &frame);
        Ok(())
    }

    /// The message, if the user may act on it as its sender.
    async fn own_message(
        &self,
        user: i64,
        conversation_id: i64,
        seq: i64,
    ) -> Result<(Conversation, ChatMessage), ImError> {
        let (conversation, member) = self.membership(user, conversation_id).await?;
        let message = self
            .messages
            .message(conversation_id, seq)
            .await?
            .filter(|m| m.seq > member.joined_seq)
            .ok_or_else(|| ImError::not_found("no_message", "no such message"))?;
        if message.sender.id != user || message.kind == MessageKind::System {
            return Err(ImError::forbidden(
                "not_sender",
                "only its sender can change a message",
            ));
        }
        if message.recalled {
            return Err(ImError::conflict("recalled", "the message was recalled"));
        }
        Ok((conversation, message))
    }

    /// Recalls the user's own message within the recall window; members get a system message.
    pub async fn recall(
        &self,
        user: &UserRef,
        conversation_id: i64,
        seq: i64,
    ) -> Result<(), ImError> {
        let (conversation, message) = self.own_message(user.id, conversation_id, seq).await?;
        let window_ms = self.policy.recall_window_secs as i64 * 1_000;
        if now_ms() - message.ms > window_ms {
            return Err(ImError::conflict(
                "recall_window_passed",
                format!(
                    "messages can be recalled for {} seconds after sending",
                    self.policy.recall_window_secs
                ),
            ));
        }
        if self.messages.recall(conversation_id, seq).await? {
            self.system_message(
                &conversation.as_ref(),
                user,
                json!({"event": "recalled", "seq": seq}),
            )
            .await?;
        }
        Ok(())
    }

    /// Replaces the content of the user's own message; members get a system message with it.
    pub async fn edit(
        &self,
        user: &UserRef,
        conversation_id: i64,
        seq: i64,
        content: String,
    ) -> Result<(), ImError> {
        self.check_text(&content, true)?;
        let (conversation, message) = self.own_message(user.id, conversation_id, seq).await?;
        if message.content == content {
            return Ok(()); // nothing changes, so nothing is said
        }
        // Text needs words; the caption of an upload may be emptied.
        if message.kind == MessageKind::Text {
            self.check_text(&content, false)?;
        }
        // The edit goes out as a message every member reads, with the new text in it: a
        // member who joined after the message must not learn what it says.
        let members = self.conversations.members(conversation_id).await?;
        if members.iter().any(|m| m.joined_seq >= seq) {
            return Err(ImError::forbidden(
                "edit_after_join",
                "someone joined after this message; editing it would show them its text",
            ));
        }
        if self
            .messages
            .edit(conversation_id, seq, &content, now_ms())
            .await?
        {
            self.system_message(
                &conversation.as_ref(),
                user,
                json!({"event": "edited", "seq": seq, "content": content}),
            )
            .await?;
            self.withhold_if_recalled(conversation_id, seq).await?;
        }
        Ok(())
    }

    /// After posting an event that repeats message `seq`'s words: if a recall ran while it
    /// was being posted, the recall's scrub may have missed it.
    async fn withhold_if_recalled(&self, conversation_id: i64, seq: i64) -> Result<(), ImError> {
        if self
            .messages
            .message(conversation_id, seq)
            .await?
            .is_none_or(|m| m.recalled)
        {
            self.messages.withhold_repeats(conversation_id, seq).await?;
        }
        Ok(())
    }

    /// Hides a message for this user only, on all their devices.
    pub async fn hide(&self, user: i64, conversation_id: i64, seq: i64) -> Result<(), ImError> {
        let (_, member) = self.membership(user, conversation_id).await?;
        self.messages
            .message(conversation_id, seq)
            .await?
            .filter(|m| m.seq > member.joined_seq)
            .ok_or_else(|| ImError::not_found("no_message", "no such message"))?;
        let event = NewEvent {
            user_id: user,
            kind: "message_hidden",
            payload: json!({"conversationId": conversation_id, "seq": seq}),
        };
        let events = self
            .messages
            .hide(user, conversation_id, seq, vec![event])
            .await?;
        push_events(&*self.deliver, events);
        Ok(())
    }

    /// The members with their roles and positions. Across a block (or a friendship ended,
    /// where direct messages are between friends) receipts stop, so the other member's
    /// positions are not shown either: they read as never moved past joining.
    pub async fn members(&self, user: i64, conversation_id: i64) -> Result<Vec<Member>, ImError> {
        // The membership check, and what it knows of blocks and friendship.
        let check = self.cached_membership(user, conversation_id).await?;
        let mut members = self.conversations.members(conversation_id).await?;
        if self.direct_check(&check).is_err() {
            for member in members.iter_mut().filter(|m| m.user.id != user) {
                member.read_seq = member.joined_seq;
                member.delivered_seq = member.joined_seq;
            }
        }
        Ok(members)
    }

    /// Stores a server-written message (joins, leaves, recalls, …) in the conversation.
    pub async fn system_message(
        &self,
        conversation: &ConversationRef,
        actor: &UserRef,
        body: serde_json::Value,
    ) -> Result<(), ImError> {
        let message = NewMessage {
            sender: actor.clone(),
            kind: MessageKind::System,
            content: body.to_string(),
            reply_to: None,
            client_msg_id: None,
            file: None,
        };
        self.writers.append(conversation, vec![message]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_news_only_past_what_was_stored() {
        let known = KnownPositions::default();
        let key = (1, 7);
        assert!(known.is_news(key, 0), "nothing stored yet");
        assert!(known.is_news(key, 5));
        // Asked about is not stored: a store failure must not make the retry look stale.
        assert!(known.is_news(key, 5));
        known.stored(key, 5);
        assert!(!known.is_news(key, 5));
        assert!(!known.is_news(key, 3));
        assert!(known.is_news(key, 6));
        known.stored(key, 2); // never moves back
        assert!(!known.is_news(key, 4));
        assert!(known.is_news((2, 7), 1), "per user and conversation");
    }
}
