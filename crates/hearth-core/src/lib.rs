//! Hearth's domain logic, independent of any database, cache or transport.
//!
//! The core owns the storage traits ([`store`]) and the services built on them:
//!
//! * [`accounts`] — sign-up, login, sessions (only token hashes are stored), logout;
//! * [`rooms`] — public rooms: one writer task per room orders, batches and stores messages,
//!   then hands them to a [`rooms::RoomEvents`] sink (the server's fan-out) in `seq` order.
//!
//! Backends (`hearth-sql`, `hearth-redis`) implement the traits; the server wires them up. The
//! core never imports a backend.

pub mod accounts;
pub mod error;
pub mod limits;
pub mod model;
pub mod rooms;
pub mod store;
pub mod validate;

pub use error::StoreError;
pub use limits::Limits;

/// Milliseconds since the Unix epoch, the unit of every timestamp in Hearth.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
