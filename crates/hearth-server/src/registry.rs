//! Which sockets each user has open on this node.
//!
//! Native frames (messages of direct and group conversations, acks to other devices, inbox
//! events, receipts, typing, presence) are framed once by the caller and written as shared
//! bytes to the [`Outlet`] of every socket of every recipient. An outlet whose backlog is full
//! stops the socket (4001) and the client resyncs by `seq`, so a slow client costs a bounded
//! amount of memory.

use crate::outlet::{Outlet, Stop};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

struct Socket {
    id: u64,
    session: String,
    /// Speaks the native protocol (it asked for a sync), so it understands `resync`.
    native: bool,
    outlet: Arc<Outlet>,
    /// Raised when the user's profile changes; the socket's task reloads the user.
    profile_changed: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Registry {
    sockets: Mutex<HashMap<i64, Vec<Socket>>>,
    next_id: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Socket>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new socket id, unique on this node.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers socket `id` of `user`, opened with the session whose token hash is `session`.
    /// `profile_changed` is raised by [`Registry::profile_changed`].
    pub fn register(
        &self,
        user: i64,
        id: u64,
        session: String,
        outlet: Arc<Outlet>,
        profile_changed: Arc<AtomicBool>,
    ) {
        self.lock().entry(user).or_default().push(Socket {
            id,
            session,
            native: false,
            outlet,
            profile_changed,
        });
    }

    pub fn unregister(&self, user: i64, id: u64) {
        let mut sockets = self.lock();
        if let Some(list) = sockets.get_mut(&user) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                sockets.remove(&user);
            }
        }
    }

    /// Writes one framed message to every socket of these users.
    /// `frames` framed messages, joined in `wire`, to every socket of these users.
    pub fn send(&self, users: &[i64], wire: &Bytes, frames: u64) {
        let sockets = self.lock();
        for user in users {
            for socket in sockets.get(user).into_iter().flatten() {
                socket.outlet.send_frames(wire.clone(), frames);
            }
        }
    }

    pub fn mark_native(&self, user: i64, id: u64) {
        if let Some(socket) = self
            .lock()
            .get_mut(&user)
            .and_then(|list| list.iter_mut().find(|s| s.id == id))
        {
            socket.native = true;
        }
    }

    /// A frame for every native socket on this node (a `resync` hint after a bus outage).
    pub fn to_native_sockets(&self, wire: &Bytes) {
        let sockets = self.lock();
        for socket in sockets.values().flatten().filter(|s| s.native) {
            socket.outlet.send(wire.clone());
        }
    }

    /// Closes every socket of the user on this node (ban, admin revocation).
    pub fn revoke_user(&self, user: i64) {
        let sockets = self.lock();
        for socket in sockets.get(&user).into_iter().flatten() {
            socket.outlet.stop(Stop::Revoked);
        }
    }

    /// Tells every socket of the user on this node that the user's name or picture changed,
    /// so that what it posts next carries the new name (sockets hold the user they opened as).
    pub fn profile_changed(&self, user: i64) {
        let sockets = self.lock();
        for socket in sockets.get(&user).into_iter().flatten() {
            socket.profile_changed.store(true, Ordering::Release);
        }
    }

    /// Closes every socket opened with this session (logout).
    pub fn revoke(&self, session: &str) {
        let sockets = self.lock();
        for socket in sockets.values().flatten().filter(|s| s.session == session) {
            socket.outlet.stop(Stop::Revoked);
        }
    }
}
