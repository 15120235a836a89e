//! Groups: create, invite, join requests with approval, roles, kick, leave, transfer,
//! dissolve. Members learn of changes through system messages in the group (they have `seq`s,
//! so every device sees them in order); the people affected from outside — invitees, the
//! requester, the kicked — through their inbox.

use crate::delivery::{Deliver, push_events};
use crate::im_error::ImError;
use crate::messaging::Messaging;
use crate::model::{Conversation, ConversationKind, Role, UserRef};
use crate::now_ms;
use crate::social::check_note;
use crate::store::{ConversationStore, NewEvent, SocialStore};
use crate::validate::single_line_text;
use serde_json::json;
use std::sync::Arc;

pub struct Groups {
    conversations: Arc<dyn ConversationStore>,
    social: Arc<dyn SocialStore>,
    deliver: Arc<dyn Deliver>,
    messaging: Arc<Messaging>,
}

fn event(user_id: i64, kind: &'static str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        user_id,
        kind,
        payload,
    }
}

impl Groups {
    pub fn new(
        conversations: Arc<dyn ConversationStore>,
        social: Arc<dyn SocialStore>,
        deliver: Arc<dyn Deliver>,
        messaging: Arc<Messaging>,
    ) -> Groups {
        Groups {
            conversations,
            social,
            deliver,
            messaging,
        }
    }

    fn limit(&self) -> usize {
        self.messaging.policy().group_member_limit
    }

    /// The group and the acting user's role in it, which must be at least `at_least`.
    async fn acting(
        &self,
        user: i64,
        group: i64,
        at_least: Role,
    ) -> Result<(Conversation, Role), ImError> {
        let (conversation, member) = self.messaging.membership(user, group).await?;
        if conversation.kind != ConversationKind::Group {
            return Err(ImError::invalid(
                "not_a_group",
                "that conversation is not a group",
            ));
        }
        if member.role < at_least {
            return Err(ImError::forbidden(
                "insufficient_role",
                format!("only a group {} can do that", at_least.as_str()),
            ));
        }
        Ok((conversation, member.role))
    }

    /// The group, for someone who is not (yet) a member.
    async fn group(&self, group: i64) -> Result<Conversation, ImError> {
        self.conversations
            .conversation(group)
            .await?
            .filter(|c| c.kind == ConversationKind::Group && !c.dissolved)
            .ok_or_else(|| ImError::not_found("no_group", "no such group"))
    }

    /// Invitees must be friends of the inviter and not blocked by or blocking them.
    async fn check_invitees(&self, inviter: i64, users: &[i64]) -> Result<(), ImError> {
        if users.len() > self.limit() {
            return Err(ImError::conflict("member_limit", "too many members"));
        }
        for &user in users {
            if user == inviter {
                return Err(ImError::invalid(
                    "bad_request",
                    "you are already in the group",
                ));
            }
            if !self.social.are_friends(inviter, user).await?
                || self.social.blocked_either_way(inviter, user).await?
            {
                return Err(ImError::forbidden(
                    "not_friends",
                    format!("user {user} is not your friend; only friends can be added"),
                ));
            }
        }
        Ok(())
    }

    /// A group name: one line of 1 to `max_group_name_chars` characters, with something to
    /// see and no control characters (line breaks and tabs included).
    fn check_name(&self, name: &str) -> Result<(), ImError> {
        let max = self.messaging.policy().max_group_name_chars;
        if single_line_text(name, max).is_err() {
            return Err(ImError::invalid(
                "bad_name",
                format!(
                    "a group name is 1 to {max} visible characters on one line, without \
                     control characters"
                ),
            ));
        }
        Ok(())
    }

    pub async fn create(
        &self,
        owner: &UserRef,
        name: &str,
        members: &[i64],
    ) -> Result<i64, ImError> {
        self.check_name(name)?;
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        if members.len() + 1 > self.limit() {
            return Err(ImError::conflict("member_limit", "too many members"));
        }
        self.check_invitees(owner.id, &members).await?;
        // The store gives each `group_added` the new group's `conversationId`.
        let events = members
            .iter()
            .map(|&m| event(m, "group_added", json!({"name": name, "by": owner})))
            .collect();
        let (group, events) = self
            .conversations
            .create_group(name, owner.id, &members, now_ms(), events)
            .await?;
        push_events(&*self.deliver, events);
        self.messaging
            .system_message(
                &group.as_ref(),
                owner,
                json!({"event": "created", "name": name, "members": members}),
            )
            .await?;
        Ok(group.id)
    }

    /// Any member may add their friends; they join at once.
    pub async fn invite(
        &self,
        user: &UserRef,
        group: i64,
        invitees: &[i64],
    ) -> Result<(), ImError> {
        let (conversation, _) = self.acting(user.id, group, Role::Member).await?;
        let mut invitees = invitees.to_vec();
        invitees.sort_unstable();
        invitees.dedup();
        self.check_invitees(user.id, &invitees).await?;
        let events = invitees
            .iter()
            .map(|&m| {
                event(
                    m,
                    "group_added",
                    json!({"conversationId": group, "name": conversation.name, "by": user}),
                )
            })
            .collect();
        let added = self
            .conversations
            .add_members(group, &invitees, self.limit(), now_ms(), events)
            .await?
            .ok_or_else(|| ImError::conflict("member_limit", "the group is full"))?;
        self.deliver.members_changed(group);
        let (added, events) = added;
        push_events(&*self.deliver, events);
        if !added.is_empty() {
            self.messaging
                .system_message(
                    &conversation.as_ref(),
                    user,
                    json!({"event": "joined", "userIds": added, "by": user.id}),
                )
                .await?;
        }
        Ok(())
    }

    pub async fn request_join(
        &self,
        user: &UserRef,
        group: i64,
        note: &str,
    ) -> Result<(), ImError> {
        let conversation = self.group(group).await?;
        check_note(note, self.messaging.policy().max_note_chars)?;
        if self.conversations.member(group, user.id).await?.is_some() {
            return Err(ImError::conflict(
                "already_member",
                "you are already a member",
            ));
        }
        let mut events: Vec<NewEvent> = self
            .conversations
            .members(group)
            .await?
            .into_iter()
            .filter(|m| m.role >= Role::Admin)
            .map(|m| {
                event(m.user.id, "join_request", json!({"conversationId": group, "name": conversation.name, "user": user, "note": note}))
            })
            .collect();
        events.push(event(
            user.id,
            "join_request_sent",
            json!({"conversationId": group, "name": conversation.name}),
        ));
        let applied = self
            .conversations
            .create_join_request(group, user.id, note, now_ms(), events)
            .await?
            .ok_or_else(|| {
                ImError::conflict("request_pending", "your request is already pending")
            })?;
        push_events(&*self.deliver, applied);
        Ok(())
    }

    pub async fn join_requests(
        &self,
        user: i64,
        group: i64,
    ) -> Result<Vec<(UserRef, String)>, ImError> {
        self.acting(user, group, Role::Admin).await?;
        Ok(self.conversations.join_requests(group).await?)
    }

    /// An owner or admin approves or rejects a pending join request. Deciding the request of
    /// someone who is a member already (a request left from before invites closed them) is
    /// `already_member`: the request is closed quietly, and nothing is posted.
    pub async fn decide_join(
        &self,
        admin: &UserRef,
        group: i64,
        applicant: i64,
        approve: bool,
    ) -> Result<(), ImError> {
        let (conversation, _) = self.acting(admin.id, group, Role::Admin).await?;
        if self.conversations.member(group, applicant).await?.is_some() {
            self.conversations
                .decide_join_request(group, applicant, false, self.limit(), now_ms(), Vec::new())
                .await?;
            return Err(ImError::conflict(
                "already_member",
                "that user is already a member",
            ));
        }
        let kind = if approve {
            "join_approved"
        } else {
            "join_rejected"
        };
        let events = vec![event(
            applicant,
            kind,
            json!({"conversationId": group, "name": conversation.name, "by": admin}),
        )];
        let applied = self
            .conversations
            .decide_join_request(group, applicant, approve, self.limit(), now_ms(), events)
            .await?
            .ok_or_else(|| {
                ImError::conflict(
                    "no_request",
                    "no pending request from that user, or the group is full",
                )
            })?;
        push_events(&*self.deliver, applied);
        if approve {
            self.deliver.members_changed(group);
            self.messaging
                .system_message(
                    &conversation.as_ref(),
                    admin,
                    json!({"event": "joined", "userIds": [applicant], "by": admin.id}),
                )
                .await?;
        }
        Ok(())
    }

    /// The owner removes anyone else; an admin removes plain members.
    pub async fn kick(&self, actor: &UserRef, group: i64, target: i64) -> Result<(), ImError> {
        let (conversation, role) = self.acting(actor.id, group, Role::Admin).await?;
        if target == actor.id {
            return Err(ImError::invalid("bad_request", "use leave to leave"));
        }
        let member = self
            .conversations
            .member(group, target)
            .await?
            .ok_or_else(|| ImError::not_found("not_a_member", "that user is not a member"))?;
        if member.role >= role {
            return Err(ImError::forbidden(
                "insufficient_role",
                "you can only remove members below your role",
            ));
        }
        // Announce first, so the removed member's devices see why they lost the group.
        self.messaging
            .system_message(
                &conversation.as_ref(),
                actor,
                json!({"event": "kicked", "userId": target, "by": actor.id}),
            )
            .await?;
        let events = vec![event(
            target,
            "group_removed",
            json!({"conversationId": group, "name": conversation.name, "by": actor}),
        )];
        let applied = self
            .conversations
            .remove_member(group, target, events)
            .await?;
        self.deliver.members_changed(group);
        push_events(&*self.deliver, applied.unwrap_or_default());
        Ok(())
    }

    pub async fn leave(&self, user: &UserRef, group: i64) -> Result<(), ImError> {
        let (conversation, role) = self.acting(user.id, group, Role::Member).await?;
        if role == Role::Owner {
            return Err(ImError::conflict(
                "owner_must_transfer",
                "transfer ownership or dissolve the group before leaving",
            ));
        }
        self.messaging
            .system_message(
                &conversation.as_ref(),
                user,
                json!({"event": "left", "userId": user.id}),
            )
            .await?;
        let events = vec![event(
            user.id,
            "group_left",
            json!({"conversationId": group, "name": conversation.name}),
        )];
        let applied = self
            .conversations
            .remove_member(group, user.id, events)
            .await?;
        self.deliver.members_changed(group);
        push_events(&*self.deliver, applied.unwrap_or_default());
        Ok(())
    }

    /// The owner or an admin renames the group. Every member is told by a system message
    /// (`renamed`, with the new name); the same name again changes nothing and says nothing.
    pub async fn rename(&self, actor: &UserRef, group: i64, name: &str) -> Result<(), ImError> {
        self.check_name(name)?;
        let (conversation, _) = self.acting(actor.id, group, Role::Admin).await?;
        if conversation.name == name {
            return Ok(());
        }
        if !self.conversations.rename_group(group, name).await? {
            return Err(ImError::conflict("changed", "the group changed; try again"));
        }
        // Cached memberships hold the conversation, name included.
        self.deliver.members_changed(group);
        self.messaging
            .system_message(
                &conversation.as_ref(),
                actor,
                json!({"event": "renamed", "name": name, "by": actor.id}),
            )
            .await
    }

    pub async fn transfer(&self, owner: &UserRef, group: i64, to: i64) -> Result<(), ImError> {
        let (conversation, _) = self.acting(owner.id, group, Role::Owner).await?;
        if to == owner.id || self.conversations.member(group, to).await?.is_none() {
            return Err(ImError::invalid(
                "not_a_member",
                "ownership goes to another member",
            ));
        }
        if !self
            .conversations
            .transfer_ownership(group, owner.id, to)
            .await?
        {
            return Err(ImError::conflict("changed", "the group changed; try again"));
        }
        self.messaging
            .system_message(
                &conversation.as_ref(),
                owner,
                json!({"event": "owner_changed", "userId": to, "by": owner.id}),
            )
            .await
    }

    /// A role as a client names it: `member`, `admin` or `owner` (which [`Groups::set_role`]
    /// refuses in turn); anything else is `bad_role`.
    pub fn parse_role(name: &str) -> Result<Role, ImError> {
        Role::parse(name)
            .ok_or_else(|| ImError::invalid("bad_role", "a role is \"admin\" or \"member\""))
    }

    /// The owner makes a member an admin or an admin a member.
    pub async fn set_role(
        &self,
        owner: &UserRef,
        group: i64,
        target: i64,
        role: Role,
    ) -> Result<(), ImError> {
        let (conversation, _) = self.acting(owner.id, group, Role::Owner).await?;
        if role == Role::Owner {
            return Err(ImError::invalid(
                "bad_role",
                "use transfer to change the owner",
            ));
        }
        let member = self
            .conversations
            .member(group, target)
            .await?
            .ok_or_else(|| ImError::not_found("not_a_member", "that user is not a member"))?;
        if member.role == Role::Owner {
            return Err(ImError::invalid(
                "bad_role",
                "the owner's role changes by transfer",
            ));
        }
        if member.role != role && self.conversations.set_role(group, target, role).await? {
            self.messaging
                .system_message(&conversation.as_ref(), owner, json!({"event": "role_changed", "userId": target, "role": role, "by": owner.id}))
                .await?;
        }
        Ok(())
    }

    pub async fn dissolve(&self, owner: &UserRef, group: i64) -> Result<(), ImError> {
        let (conversation, _) = self.acting(owner.id, group, Role::Owner).await?;
        self.messaging
            .system_message(
                &conversation.as_ref(),
                owner,
                json!({"event": "dissolved", "by": owner.id}),
            )
            .await?;
        let events = self
            .conversations
            .member_ids(group)
            .await?
            .into_iter()
            .map(|m| {
                event(
                    m,
                    "group_dissolved",
                    json!({"conversationId": group, "name": conversation.name, "by": owner}),
                )
            })
            .collect();
        let applied = self.conversations.dissolve(group, events).await?;
        self.deliver.members_changed(group);
        push_events(&*self.deliver, applied.unwrap_or_default());
        Ok(())
    }
}
