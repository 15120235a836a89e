//! Operator tools shared by the `hearth admin` CLI and the `/api/admin/...` endpoints: rooms,
//! user roles and bans, session revocation, counts.
//!
//! The CLI runs in its own process against the database (and Redis) directly, so everything a
//! running node must learn about travels through the stores (a ban is checked on every
//! authentication) or the bus (`control` messages close a user's sockets on every node).

use crate::StoreError;
use crate::bus::{Bus, CONTROL_TOPIC, revoke_user_message};
use crate::store::{AdminStore, MessageStore, RoomDeletion, SessionStore, Stores, UserStore};
use crate::validate::{self, Invalid};
use bytes::Bytes;
use std::sync::Arc;

/// What a user may do beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRole {
    User,
    /// May use the admin API.
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
        }
    }

    /// Unknown values read as `User`: a role this version does not know grants nothing.
    pub fn parse(s: &str) -> UserRole {
        match s {
            "admin" => UserRole::Admin,
            _ => UserRole::User,
        }
    }
}

/// A user as an operator sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: UserRole,
    /// When the user was banned; `None` if they are not.
    pub banned_ms: Option<i64>,
    pub created_ms: i64,
    /// The file id of the avatar they chose, if any (served at `/api/users/{id}/avatar`).
    pub avatar: Option<String>,
}

/// A room as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    pub conversation_id: i64,
    pub slug: String,
    pub name: String,
    /// Messages stored in it (its last `seq`: sequence numbers have no gaps).
    pub messages: i64,
    pub created_ms: i64,
}

/// What the database holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub users: i64,
    pub banned_users: i64,
    pub admins: i64,
    pub rooms: i64,
    pub direct_conversations: i64,
    pub groups: i64,
    pub messages: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub counts: Counts,
    /// Live sessions; `None` when the session store cannot count them.
    pub sessions: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error("no such room: {0}")]
    NoSuchRoom(String),
    #[error("room {0:?} already exists")]
    RoomExists(String),
    #[error("room {slug:?} has {messages} messages; force the deletion to delete them too")]
    RoomHasMessages { slug: String, messages: i64 },
    /// Deleting it would not last: start-up creates every configured room again.
    #[error("room {0:?} is in the configuration (`rooms`); remove it there first")]
    ConfiguredRoom(String),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Admin {
    store: Arc<dyn AdminStore>,
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    messages: Arc<dyn MessageStore>,
    /// Where `control` messages go; `None` when no node can be reached (the CLI in embedded
    /// mode: sockets then end at their next session re-check).
    bus: Option<Arc<dyn Bus>>,
    /// Room slugs the configuration creates at start-up.
    configured_rooms: Vec<String>,
}

impl Admin {
    pub fn new(stores: &Stores, bus: Option<Arc<dyn Bus>>, configured_rooms: Vec<String>) -> Admin {
        Admin {
            store: stores.admin.clone(),
            users: stores.users.clone(),
            sessions: stores.sessions.clone(),
            messages: stores.messages.clone(),
            bus,
            configured_rooms,
        }
    }

    pub async fn list_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<UserInfo>, AdminError> {
        Ok(self.store.list_users(prefix, limit).await?)
    }

    pub async fn user(&self, id: i64) -> Result<UserInfo, AdminError> {
        self.store
            .user_info(id)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(id.to_string()))
    }

    pub async fn find_user(&self, username: &str) -> Result<UserInfo, AdminError> {
        self.store
            .user_by_username(username)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(username.chars().take(100).collect()))
    }

    pub async fn is_admin(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .store
            .user_info(id)
            .await?
            .is_some_and(|u| u.role == UserRole::Admin && u.banned_ms.is_none()))
    }

    pub async fn set_role(&self, id: i64, role: UserRole) -> Result<UserInfo, AdminError> {
        if !self.store.set_user_role(id, role).await? {
            return Err(AdminError::NoSuchUser(id.to_string()));
        }
        self.user(id).await
    }

    /// Bans the user: they cannot log in, their sessions end and their sockets close (1008)
    /// on every node.
    pub async fn ban(&self, id: i64) -> Result<UserInfo, AdminError> {
        // The flag first: from here on no session of theirs authenticates, even one created
        // between the two steps.
        if !self.store.set_banned(id, Some(crate::now_ms())).await? {
            return Err(AdminError::NoSuchUser(id.to_string()));
        }
        self.revoke_sessions(id).await?;
        self.user(id).await
    }

    /// Takes the user's avatar away (moderation): everyone sees the generated one again. The
    /// user may choose another; banning is the answer to one who keeps choosing bad ones.
    pub async fn remove_avatar(&self, id: i64) -> Result<UserInfo, AdminError> {
        self.user(id).await?;
        self.users.set_avatar(id, None).await?;
        self.user(id).await
    }

    pub async fn unban(&self, id: i64) -> Result<UserInfo, AdminError> {
        if !self.store.set_banned(id, None).await? {
            return Err(AdminError::NoSuchUser(id.to_string()));
        }
        self.user(id).await
    }

    /// Ends every session of the user and closes their sockets; how many sessions there were.
    pub async fn revoke_sessions(&self, id: i64) -> Result<u64, AdminError> {
        let revoked = self.sessions.delete_user_sessions(id).await?;
        if let Some(bus) = &self.bus {
            bus.publish(
                CONTROL_TOPIC.to_owned(),
                Bytes::from(revoke_user_message(id)),
            );
            // Waits until the publish has left (the CLI exits right after). Not fatal: each
            // socket also re-checks its session within 30 s.
            if let Err(error) = bus.ping().await {
                tracing::warn!(%error, "telling the nodes to close the user's sockets failed");
            }
        }
        Ok(revoked)
    }

    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, AdminError> {
        Ok(self.store.room_infos().await?)
    }

    /// Creates a room. Running nodes serve it after their next restart.
    pub async fn create_room(&self, slug: &str, name: &str) -> Result<RoomInfo, AdminError> {
        validate::room_slug(slug)?;
        validate::room_name(name)?;
        if self.room_info(slug).await?.is_some() {
            return Err(AdminError::RoomExists(slug.to_owned()));
        }
        self.messages.upsert_room(slug, name).await?;
        self.room_info(slug)
            .await?
            .ok_or_else(|| AdminError::NoSuchRoom(slug.to_owned()))
    }

    /// Deletes a room; one with messages only if `force` (its messages go too). Returns how
    /// many messages were deleted. Running nodes drop it at their next restart.
    pub async fn delete_room(&self, slug: &str, force: bool) -> Result<i64, AdminError> {
        if self.configured_rooms.iter().any(|r| r == slug) {
            return Err(AdminError::ConfiguredRoom(slug.to_owned()));
        }
        match self.messages.delete_room(slug, force).await? {
            RoomDeletion::NotFound => Err(AdminError::NoSuchRoom(slug.chars().take(64).collect())),
            RoomDeletion::HasMessages(messages) => Err(AdminError::RoomHasMessages {
                slug: slug.to_owned(),
                messages,
            }),
            RoomDeletion::Deleted(messages) => Ok(messages),
        }
    }

    pub async fn stats(&self) -> Result<Stats, AdminError> {
        Ok(Stats {
            counts: self.store.counts().await?,
            sessions: self.sessions.count_sessions(crate::now_ms()).await?,
        })
    }

    async fn room_info(&self, slug: &str) -> Result<Option<RoomInfo>, StoreError> {
        Ok(self
            .store
            .room_infos()
            .await?
            .into_iter()
            .find(|r| r.slug == slug))
    }
}
