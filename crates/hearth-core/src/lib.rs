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
//! * [`presence`] — online/offline and last-seen;
//! * [`transcription`] — offline voice transcription: the `Transcriber` trait and the
//!   persisted, bounded, retrying job queue that runs it.
//! * [`search`] — what full-text search reads from storage (the message feed, who may read what).
//! * [`admin`] — operator tools (rooms, roles, bans, session revocation, counts) for the CLI
//!   and the admin API.
//! * [`files`] — streamed uploads, content-addressed blobs behind [`files::BlobStore`], who may
//!   read a file; [`media`] — image sniffing and thumbnails.
//!
//! Backends (`hearth-sql`, `hearth-redis`) implement the traits; the server implements
//! [`delivery::Deliver`] and wires everything up. The core never imports a backend.

pub mod accounts;
pub mod admin;
pub mod bus;
pub mod delivery;
pub mod error;
pub mod files;
pub mod groups;
pub mod im_error;
pub mod limits;
pub mod local;
pub mod login_throttle;
pub mod media;
pub mod member_cache;
pub mod messaging;
pub mod model;
mod passwords;
pub mod policy;
pub mod presence;
pub mod rooms;
pub mod search;
pub mod social;
pub mod store;
pub mod transcription;
pub mod validate;
pub mod writer;

pub use error::StoreError;
pub use im_error::ImError;
pub use limits::Limits;
pub use policy::Policy;

/// Milliseconds since the Unix epoch, the unit of every timestamp in Hearth.
/// Bytes from the operating system's random source: session tokens, file ids, temp names.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is unrecoverable for a server that issues secrets.
    getrandom::fill(&mut bytes).expect("operating system random source");
    bytes
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
