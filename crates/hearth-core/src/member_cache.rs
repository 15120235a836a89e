//! What a node remembers about conversation membership, so the two hot paths skip a read:
//! routing a stored message (who is in the conversation) and checking a send (may this user
//! write here: member, conversation alive, and for a direct conversation, friends and not
//! blocked).
//!
//! Filled on demand. Every change that could alter an answer drops it on every node:
//! membership changes through [`Deliver::members_changed`], friendships and blocks through
//! [`Deliver::relation_changed`]. The bus is at most once: what it loses it loses while
//! disconnected, so a node clears everything when its bus reconnects, and entries also expire
//! after [`MEMBER_CACHE_TTL`] whatever happens.
//!
//! A read that overlapped an invalidation could carry the answer from before the change, so
//! it is returned but not kept: every invalidation moves an epoch, and a read is only cached
//! if the epoch did not move while it ran.
//!
//! [`Deliver::members_changed`]: crate::delivery::Deliver::members_changed
//! [`Deliver::relation_changed`]: crate::delivery::Deliver::relation_changed

use crate::StoreError;
use crate::model::{Conversation, Member};
use crate::store::ConversationStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const MEMBER_CACHE_TTL: Duration = Duration::from_secs(30);
/// Entries of each kind kept at most; past it, expired ones are swept, and if that is not
/// enough, everything goes (refilled on demand).
const MAX_ENTRIES: usize = 100_000;

/// What a send needs to know: the conversation, the sender's membership and, for a direct
/// conversation, `(friends, blocked either way)` (see `ConversationStore::send_membership`).
/// Kept current in what a send checks (kind, dissolved, membership and `joined_seq`,
/// friendship, blocks); not in `last_seq`, roles or the owner, which a send does not use.
pub type SendCheck = (Conversation, Member, (bool, bool));

#[derive(Default)]
pub struct MemberCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Moved by every invalidation.
    epoch: u64,
    /// Per conversation, when its member list was read and the members.
    members: HashMap<i64, (Instant, Arc<[i64]>)>,
    /// Per conversation and sender, when the send check was read and what it said.
    sends: HashMap<i64, HashMap<i64, (Instant, Arc<SendCheck>)>>,
    sends_len: usize,
    /// Each cached direct conversation under its two users (lower id first), so that a
    /// friendship or block between them finds it.
    direct: HashMap<(i64, i64), i64>,
}

fn fresh(at: &Instant) -> bool {
    at.elapsed() < MEMBER_CACHE_TTL
}

fn pair(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

impl MemberCache {
    /// The members of a direct or group conversation.
    pub async fn get(
        &self,
        store: &dyn ConversationStore,
        conversation: i64,
    ) -> Result<Arc<[i64]>, StoreError> {
        let epoch = {
            let inner = self.lock();
            if let Some((at, ids)) = inner.members.get(&conversation)
                && fresh(at)
            {
                return Ok(ids.clone());
            }
            inner.epoch
        };
        let ids: Arc<[i64]> = store.member_ids(conversation).await?.into();
        let mut inner = self.lock();
        if inner.epoch == epoch {
            if inner.members.len() >= MAX_ENTRIES {
                inner.members.retain(|_, (at, _)| fresh(at));
                if inner.members.len() >= MAX_ENTRIES {
                    inner.members.clear();
                }
            }
            inner
                .members
                .insert(conversation, (Instant::now(), ids.clone()));
        }
        Ok(ids)
    }

    /// What `ConversationStore::send_membership` says of `user` in `conversation`; `None`
    /// (not a member, or no such conversation) is not cached.
    pub async fn send_check(
        &self,
        store: &dyn ConversationStore,
        conversation: i64,
        user: i64,
    ) -> Result<Option<Arc<SendCheck>>, StoreError> {
        let epoch = {
            let inner = self.lock();
            if let Some((at, check)) = inner.sends.get(&conversation).and_then(|s| s.get(&user))
                && fresh(at)
            {
                return Ok(Some(check.clone()));
            }
            inner.epoch
        };
        let Some(check) = store.send_membership(conversation, user).await? else {
            return Ok(None);
        };
        let check = Arc::new(check);
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.keep_send_check(conversation, user, check.clone());
        }
        Ok(Some(check))
    }

    /// The membership of `conversation` changed (or it was dissolved).
    pub fn invalidate(&self, conversation: i64) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.members.remove(&conversation);
        inner.drop_sends(conversation);
    }

    /// Friendship or blocks between `a` and `b` changed: their direct conversation's send
    /// checks go.
    pub fn invalidate_pair(&self, a: i64, b: i64) {
        let mut inner = self.lock();
        inner.epoch += 1;
        if let Some(conversation) = inner.direct.remove(&pair(a, b)) {
            inner.drop_sends(conversation);
        }
    }

    /// Forgets everything (the bus reconnected: invalidations may have been lost).
    pub fn clear(&self) {
        let mut inner = self.lock();
        let epoch = inner.epoch + 1;
        *inner = Inner {
            epoch,
            ..Inner::default()
        };
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn keep_send_check(&mut self, conversation: i64, user: i64, check: Arc<SendCheck>) {
        if self.sends_len >= MAX_ENTRIES || self.direct.len() >= MAX_ENTRIES {
            self.sweep_sends();
        }
        if let Some(peer) = check.0.direct_peer(user) {
            self.direct.insert(pair(user, peer), conversation);
        }
        let senders = self.sends.entry(conversation).or_default();
        if senders.insert(user, (Instant::now(), check)).is_none() {
            self.sends_len += 1;
        }
    }

    fn drop_sends(&mut self, conversation: i64) {
        if let Some(senders) = self.sends.remove(&conversation) {
            self.sends_len -= senders.len();
        }
    }

    /// Drops expired send checks; everything if that is not enough.
    fn sweep_sends(&mut self) {
        for senders in self.sends.values_mut() {
            senders.retain(|_, (at, _)| fresh(at));
        }
        self.sends.retain(|_, senders| !senders.is_empty());
        self.sends_len = self.sends.values().map(HashMap::len).sum();
        if self.sends_len >= MAX_ENTRIES {
            self.sends.clear();
            self.sends_len = 0;
        }
        let sends = &self.sends;
        self.direct.retain(|_, c| sends.contains_key(c));
    }
}
