//! Friends and blocks. Every step writes inbox events (reference 001's system messages
//! 203/205/207 and their siblings) in the same transaction as the change, and pushes them to
//! whoever is connected; the rest find them at their next sync.

use crate::delivery::{Deliver, push_events};
use crate::im_error::ImError;
use crate::model::{User, UserRef};
use crate::now_ms;
use crate::policy::Policy;
use crate::store::{Applied, Decision, FriendRequest, NewEvent, SocialStore, UserStore};
use crate::validate::{TextProblem, readable_text};
use hearth_proto::native::{ImServerFrame, Profile};
use serde_json::json;
use std::sync::Arc;

pub struct Social {
    social: Arc<dyn SocialStore>,
    users: Arc<dyn UserStore>,
    deliver: Arc<dyn Deliver>,
    policy: Policy,
}

/// A friend-request or join-request note: checked like a message's text (so tabs and line
/// breaks are fine, other control characters are `bad_content`), may be empty, and holds at
/// most `max_chars` characters (`note_too_long`).
pub(crate) fn check_note(note: &str, max_chars: usize) -> Result<(), ImError> {
    readable_text(note, max_chars, true).map_err(|problem| match problem {
        TextProblem::StrayControls => ImError::invalid(
            "bad_content",
            "notes must not contain control characters other than tabs and line breaks",
        ),
        // A note may be empty, so `Blank` does not happen.
        TextProblem::TooLong | TextProblem::Blank => ImError::invalid(
            "note_too_long",
            format!("notes are limited to {max_chars} characters"),
        ),
    })
}

fn event(user_id: i64, kind: &'static str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        user_id,
        kind,
        payload,
    }
}

impl Social {
    pub fn new(
        social: Arc<dyn SocialStore>,
        users: Arc<dyn UserStore>,
        deliver: Arc<dyn Deliver>,
        policy: Policy,
    ) -> Social {
        Social {
            social,
            users,
            deliver,
            policy,
        }
    }

    /// Another existing user, or `user_not_found`.
    async fn other(&self, me: &UserRef, id: i64) -> Result<UserRef, ImError> {
        if id == me.id {
            return Err(ImError::invalid("bad_request", "that is you"));
        }
        self.users
            .user(id)
            .await?
            .map(|u| u.as_ref())
            .ok_or_else(|| ImError::not_found("user_not_found", "no such user"))
    }

    /// Pushes the events of a change between `me` and `other`, or refuses. Every applied
    /// change drops the pair's cached send checks, requests included: simpler than telling
    /// which changes touch friendship or blocks, and they are rare.
    fn applied(
        &self,
        (me, other): (i64, i64),
        applied: Applied,
        refusal: ImError,
    ) -> Result<(), ImError> {
        match applied {
            Some(events) => {
                self.deliver.relation_changed(me, other);
                push_events(&*self.deliver, events);
                Ok(())
            }
            None => Err(refusal),
        }
    }

    pub async fn request(&self, me: &UserRef, to: i64, note: &str) -> Result<(), ImError> {
        let to = self.other(me, to).await?;
        check_note(note, self.policy.max_note_chars)?;
        if self.social.blocked_either_way(me.id, to.id).await? {
            return Err(ImError::forbidden(
                "blocked",
                "one of you has blocked the other",
            ));
        }
        if self.social.are_friends(me.id, to.id).await? {
            return Err(ImError::conflict(
                "already_friends",
                "you are already friends",
            ));
        }
        let events = vec![
            event(to.id, "friend_request", json!({"from": me, "note": note})),
            event(
                me.id,
                "friend_request_sent",
                json!({"to": to, "note": note}),
            ),
        ];
        let applied = self
            .social
            .create_friend_request(me.id, to.id, note, now_ms(), events)
            .await?;
        self.applied(
            (me.id, to.id),
            applied,
            ImError::conflict(
                "request_pending",
                "a friend request between you is already pending",
            ),
        )
    }

    /// Accepts, rejects (as the recipient) or cancels (as the sender) a pending request.
    pub async fn decide(
        &self,
        me: &UserRef,
        other: i64,
        decision: Decision,
    ) -> Result<(), ImError> {
        let other = self.other(me, other).await?;
        let (from, to, events) = match decision {
            Decision::Accept => (
                other.id,
                me.id,
                vec![
                    event(other.id, "friend_accepted", json!({"by": me})),
                    event(me.id, "friend_added", json!({"friend": other})),
                ],
            ),
            Decision::Reject => (
                other.id,
                me.id,
                vec![
                    event(other.id, "friend_rejected", json!({"by": me})),
                    event(me.id, "friend_request_closed", json!({"from": other})),
                ],
            ),
            Decision::Cancel => (
                me.id,
                other.id,
                vec![
                    event(other.id, "friend_request_canceled", json!({"from": me})),
                    event(me.id, "friend_request_closed", json!({"to": other})),
                ],
            ),
        };
        let applied = self
            .social
            .decide_friend_request(from, to, decision, now_ms(), events)
            .await?;
        self.applied(
            (me.id, other.id),
            applied,
            ImError::not_found("no_request", "no such pending request"),
        )
    }

    pub async fn pending(
        &self,
        me: i64,
    ) -> Result<(Vec<FriendRequest>, Vec<FriendRequest>), ImError> {
        Ok(self.social.pending_friend_requests(me).await?)
    }

    pub async fn friends(&self, me: i64) -> Result<Vec<UserRef>, ImError> {
        Ok(self.social.friends(me).await?)
    }

    /// Tells the user's friends and their own devices that their name or picture changed, so
    /// that open lists, headers and chats show it without a reload. Fellow group members see
    /// it when they next load the member list, as with presence. Best effort: the change is
    /// stored, and every later read has it.
    pub async fn profile_changed(&self, user: &User) {
        match self.social.friends(user.id).await {
            Ok(friends) => {
                let mut ids: Vec<i64> = friends.iter().map(|f| f.id).collect();
                ids.push(user.id);
                let frame = ImServerFrame::Profile(Profile {
                    user_id: user.id,
                    username: user.username.clone(),
                    avatar: user.avatar.clone(),
                });
                self.deliver.to_users(&ids, &frame);
            }
            Err(error) => tracing::warn!(%error, "announcing a profile change failed"),
        }
    }

    pub async fn remove(&self, me: &UserRef, friend: i64) -> Result<(), ImError> {
        let friend = self.other(me, friend).await?;
        let events = vec![
            event(friend.id, "friend_removed", json!({"by": me})),
            event(me.id, "friend_removed", json!({"friend": friend})),
        ];
        let applied = self.social.remove_friend(me.id, friend.id, events).await?;
        self.applied(
            (me.id, friend.id),
            applied,
            ImError::conflict("not_friends", "you are not friends"),
        )
    }

    /// Blocks a user: ends any friendship and pending request; they can no longer request or
    /// write to you directly. They are not told.
    pub async fn block(&self, me: &UserRef, target: i64) -> Result<(), ImError> {
        let target = self.other(me, target).await?;
        let events = vec![event(me.id, "user_blocked", json!({"user": target}))];
        let applied = self
            .social
            .block(me.id, target.id, now_ms(), events)
            .await?;
        self.applied(
            (me.id, target.id),
            applied,
            ImError::conflict("already_blocked", "already blocked"),
        )
    }

    pub async fn unblock(&self, me: &UserRef, target: i64) -> Result<(), ImError> {
        let target = self.other(me, target).await?;
        if self.social.unblock(me.id, target.id).await? {
            self.deliver.relation_changed(me.id, target.id);
            Ok(())
        } else {
            Err(ImError::conflict("not_blocked", "that user is not blocked"))
        }
    }

    pub async fn blocked(&self, me: i64) -> Result<Vec<UserRef>, ImError> {
        Ok(self.social.blocked(me).await?)
    }

    /// Users by username prefix or exact email, to find someone to befriend.
    pub async fn search(&self, query: &str) -> Result<Vec<UserRef>, ImError> {
        let query = query.trim();
        if query.is_empty() || query.len() > 100 {
            return Err(ImError::invalid(
                "bad_query",
                "the query must be 1 to 100 bytes",
            ));
        }
        Ok(self.users.search_users(query, 20).await?)
    }
}
