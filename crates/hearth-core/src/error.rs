//! The error every storage backend reports, in terms the core can act on.

/// What went wrong in a store.
///
/// `Unavailable` means "try again later, nothing was written" (connection refused, pool timed
/// out, Redis down); the gateway turns it into HTTP 503 or an `unavailable` error frame.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("username already taken")]
    UsernameTaken,
    #[error("email already registered")]
    EmailTaken,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Backend(String),
}
