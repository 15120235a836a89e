//! Who is online. A user is online while any of their sockets is connected; going offline
//! records the last-seen time. Changes are pushed to the user's friends; anyone who shares a
//! conversation with the user may ask.
//!
//! Where presence is kept is a [`PresenceStore`]: this process in embedded mode, Redis with
//! per-node heartbeats in cluster mode (a dead node's users go offline when its heartbeat
//! expires, announced by [`Presence::reap`]).

use crate::bus::PresenceStore;
use crate::delivery::Deliver;
use crate::im_error::ImError;
use crate::now_ms;
use crate::store::{ConversationStore, SocialStore, UserStore};
use hearth_proto::native::{ImServerFrame, Presence as PresenceFrame};
use std::sync::Arc;

pub struct Presence {
    store: Arc<dyn PresenceStore>,
    users: Arc<dyn UserStore>,
    social: Arc<dyn SocialStore>,
    conversations: Arc<dyn ConversationStore>,
    deliver: Arc<dyn Deliver>,
}

impl Presence {
    pub fn new(
        store: Arc<dyn PresenceStore>,
        users: Arc<dyn UserStore>,
        social: Arc<dyn SocialStore>,
        conversations: Arc<dyn ConversationStore>,
        deliver: Arc<dyn Deliver>,
    ) -> Presence {
        Presence {
            store,
            users,
            social,
            conversations,
            deliver,
        }
    }

    /// A socket of `user` opened from `platform`. Presence is best effort: a backend error
    /// is logged, never fatal to the socket.
    pub async fn connected(&self, user: i64, platform: &'static str) {
        match self.store.connected(user, platform).await {
            Ok(true) => {
                self.announce(PresenceFrame {
                    user_id: user,
                    online: true,
                    last_seen: None,
                    platforms: vec![platform.to_owned()],
                })
                .await
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "recording presence failed"),
        }
    }

    /// A socket of `user` from `platform` closed.
    pub async fn disconnected(&self, user: i64, platform: &'static str) {
        match self.store.disconnected(user, platform).await {
            Ok(true) => self.went_offline(user).await,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "recording presence failed"),
        }
    }

    /// Announces the users of nodes that stopped heartbeating as offline. Run periodically.
    pub async fn reap(&self) {
        match self.store.reap().await {
            Ok(users) => {
                for user in users {
                    self.went_offline(user).await;
                }
            }
            Err(error) => tracing::debug!(%error, "presence reaping failed"),
        }
    }

    async fn went_offline(&self, user: i64) {
        let seen = now_ms();
        if let Err(error) = self.users.set_last_seen(user, seen).await {
            tracing::warn!(%error, "recording last-seen failed");
        }
        self.announce(PresenceFrame {
            user_id: user,
            online: false,
            last_seen: Some(seen),
            platforms: Vec::new(),
        })
        .await;
    }

    async fn announce(&self, frame: PresenceFrame) {
        match self.social.friends(frame.user_id).await {
            Ok(friends) => {
                let ids: Vec<i64> = friends.iter().map(|f| f.id).collect();
                self.deliver.to_users(&ids, &ImServerFrame::Presence(frame));
            }
            Err(error) => tracing::warn!(%error, "announcing presence failed"),
        }
    }

    /// Presence of `users` as `viewer` may see it: friends and fellow group members only, and
    /// never across a block (either way).
    pub async fn query(&self, viewer: i64, users: &[i64]) -> Result<Vec<PresenceFrame>, ImError> {
        if users.len() > 200 {
            return Err(ImError::invalid("too_many", "at most 200 users per query"));
        }
        let mut answer = Vec::with_capacity(users.len());
        for &user in users {
            let visible = user == viewer || {
                let (friends, blocked) = self.social.direct_status(viewer, user).await?;
                !blocked && (friends || self.conversations.share_group(viewer, user).await?)
            };
            if !visible {
                return Err(ImError::forbidden(
                    "presence_hidden",
                    format!(
                        "presence of user {user} is visible only to friends and fellow members"
                    ),
                ));
            }
            let platforms = self.store.platforms(user).await?;
            let online = !platforms.is_empty();
            answer.push(PresenceFrame {
                user_id: user,
                online,
                last_seen: if online {
                    None
                } else {
                    self.users.last_seen(user).await?
                },
                platforms,
            });
        }
        Ok(answer)
    }
}
