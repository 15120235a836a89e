//! Who is online. A user is online while any of their sockets is connected; going offline
//! records the last-seen time. Changes are pushed to the user's friends; anyone who shares a
//! conversation with the user may ask.
//!
//! This node's sockets only: across nodes presence needs a shared registry (the scale-out
//! issue).

use crate::delivery::Deliver;
use crate::im_error::ImError;
use crate::now_ms;
use crate::store::{ConversationStore, SocialStore, UserStore};
use hearth_proto::native::{ImServerFrame, Presence as PresenceFrame};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Presence {
    /// Per online user, the platform of each open socket.
    sockets: Mutex<HashMap<i64, Vec<&'static str>>>,
    users: Arc<dyn UserStore>,
    social: Arc<dyn SocialStore>,
    conversations: Arc<dyn ConversationStore>,
    deliver: Arc<dyn Deliver>,
}

impl Presence {
    pub fn new(
        users: Arc<dyn UserStore>,
        social: Arc<dyn SocialStore>,
        conversations: Arc<dyn ConversationStore>,
        deliver: Arc<dyn Deliver>,
    ) -> Presence {
        Presence {
            sockets: Mutex::default(),
            users,
            social,
            conversations,
            deliver,
        }
    }

    /// The distinct platforms `user` is connected from (empty when offline).
    fn platforms(&self, user: i64) -> Vec<String> {
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let mut platforms: Vec<String> = sockets
            .get(&user)
            .into_iter()
            .flatten()
            .map(|p| (*p).to_owned())
            .collect();
        platforms.sort();
        platforms.dedup();
        platforms
    }

    /// A socket of `user` opened from `platform`.
    pub async fn connected(&self, user: i64, platform: &'static str) {
        let first = {
            let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
            let list = sockets.entry(user).or_default();
            list.push(platform);
            list.len() == 1
        };
        if first {
            self.announce(PresenceFrame {
                user_id: user,
                online: true,
                last_seen: None,
                platforms: vec![platform.to_owned()],
            })
            .await;
        }
    }

    /// A socket of `user` from `platform` closed.
    pub async fn disconnected(&self, user: i64, platform: &'static str) {
        let last = {
            let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
            match sockets.get_mut(&user) {
                Some(list) => {
                    if let Some(i) = list.iter().position(|p| *p == platform) {
                        list.swap_remove(i);
                    }
                    let empty = list.is_empty();
                    if empty {
                        sockets.remove(&user);
                    }
                    empty
                }
                None => false,
            }
        };
        if last {
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

    /// Presence of `users` as `viewer` may see it: friends and fellow members only.
    pub async fn query(&self, viewer: i64, users: &[i64]) -> Result<Vec<PresenceFrame>, ImError> {
        if users.len() > 200 {
            return Err(ImError::invalid("too_many", "at most 200 users per query"));
        }
        let mut answer = Vec::with_capacity(users.len());
        for &user in users {
            let visible = user == viewer
                || self.social.are_friends(viewer, user).await?
                || self.conversations.share_conversation(viewer, user).await?;
            if !visible {
                return Err(ImError::forbidden(
                    "presence_hidden",
                    format!(
                        "presence of user {user} is visible only to friends and fellow members"
                    ),
                ));
            }
            let platforms = self.platforms(user);
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
