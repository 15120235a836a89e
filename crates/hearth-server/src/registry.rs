//! Which sockets each user has open on this node, and their bounded mailboxes.
//!
//! Native frames (messages of direct and group conversations, acks to other devices, inbox
//! events, receipts, typing, presence) are encoded once by the caller and pushed as shared
//! bytes into the mailbox of every socket of every recipient. A mailbox that is full means
//! the socket is not keeping up: it is told to close (4001) and the client resyncs by `seq`,
//! so a slow client costs a bounded amount of memory.

use axum::extract::ws::Utf8Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// What a socket's task receives besides room broadcasts.
#[derive(Debug, Clone)]
pub enum Outbound {
    Frame(Utf8Bytes),
    /// Close with this code: the session was revoked (1008).
    Close(u16, &'static str),
}

struct Socket {
    id: u64,
    session: String,
    /// Speaks the native protocol (it asked for a sync), so it understands `resync`.
    native: bool,
    mailbox: mpsc::Sender<Outbound>,
    /// Rung when the mailbox overflowed.
    overflow: Arc<Notify>,
}

/// The receiving end a connection owns.
pub struct Mailbox {
    pub id: u64,
    pub frames: mpsc::Receiver<Outbound>,
    pub overflow: Arc<Notify>,
}

pub struct Registry {
    sockets: Mutex<HashMap<i64, Vec<Socket>>>,
    next_id: AtomicU64,
    capacity: usize,
}

impl Registry {
    pub fn new(capacity: usize) -> Registry {
        Registry {
            sockets: Mutex::default(),
            next_id: AtomicU64::new(1),
            capacity: capacity.max(16),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Socket>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket of `user` opened with the session whose token hash is `session`.
    pub fn register(&self, user: i64, session: String) -> Mailbox {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.capacity);
        let overflow = Arc::new(Notify::new());
        self.lock().entry(user).or_default().push(Socket {
            id,
            session,
            native: false,
            mailbox: tx,
            overflow: overflow.clone(),
        });
        Mailbox {
            id,
            frames: rx,
            overflow,
        }
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

    /// Pushes one encoded frame to every socket of these users.
    pub fn send(&self, users: &[i64], frame: &Utf8Bytes) {
        let sockets = self.lock();
        for user in users {
            for socket in sockets.get(user).into_iter().flatten() {
                if socket
                    .mailbox
                    .try_send(Outbound::Frame(frame.clone()))
                    .is_err()
                {
                    socket.overflow.notify_one();
                }
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
    pub fn to_native_sockets(&self, frame: &Utf8Bytes) {
        let sockets = self.lock();
        for socket in sockets.values().flatten().filter(|s| s.native) {
            if socket
                .mailbox
                .try_send(Outbound::Frame(frame.clone()))
                .is_err()
            {
                socket.overflow.notify_one();
            }
        }
    }

    /// Closes every socket opened with this session (logout).
    pub fn revoke(&self, session: &str) {
        let sockets = self.lock();
        for socket in sockets.values().flatten().filter(|s| s.session == session) {
            if socket
                .mailbox
                .try_send(Outbound::Close(1008, "logged out"))
                .is_err()
            {
                socket.overflow.notify_one();
            }
        }
    }
}
