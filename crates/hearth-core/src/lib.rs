//! Hearth's domain logic, independent of any database, cache or transport.
//!
//! The core owns the storage traits ([`store`]), the delivery trait ([`delivery`]) and the
//! services built on them:
//!
//! * [`accounts`] — sign-up, login, sessions (only token hashes are stored), logout;
//! * [`writer`] — one writer task per active conversation: dedupes retried sends, group-commits,
//!   then routes what it stored, in `seq` order;
//! * [`rooms`] — public rooms of the chat-room protocol (`hello`, posting, history);
//! * [`messaging`] — direct and group messages: acked sends, pulls, sync, receipts, typing,
//!   recall, edit, delete-for-me;
//! * [`social`] — friend requests, friends, blocks; [`groups`] — group membership and roles;
//! * [`presence`] — online/offline and last-seen.
//!
//! Backends (`hearth-sql`, `hearth-redis`) implement the traits; the server implements
//! [`delivery::Deliver`] and wires everything up. The core never imports a backend.

pub mod accounts;
pub mod bus;
pub mod delivery;
pub mod error;
pub mod groups;
pub mod im_error;
pub mod limits;
pub mod local;
pub mod messaging;
pub mod model;
pub mod policy;
pub mod presence;
pub mod rooms;
pub mod social;
pub mod store;
pub mod validate;
pub mod writer;

pub use error::StoreError;
pub use im_error::ImError;
pub use limits::Limits;
pub use policy::Policy;

/// Milliseconds since the Unix epoch, the unit of every timestamp in Hearth.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
