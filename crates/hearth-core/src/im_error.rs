//! Errors of the instant-messaging services, each with a stable code clients branch on.

use crate::StoreError;

/// What kind of refusal: the gateway maps it to an HTTP status; the code goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Bad input (400).
    Invalid,
    /// Not allowed for this user (403). Also used for things that do not exist, so that ids
    /// cannot be probed.
    Forbidden,
    /// The target does not exist (404): only for things every user may know about.
    NotFound,
    /// The state does not allow it (409): already friends, request pending, limit reached.
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum ImError {
    #[error("{message}")]
    Refused {
        refusal: Refusal,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ImError {
        Self::refused(Refusal::Invalid, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ImError {
        Self::refused(Refusal::Forbidden, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ImError {
        Self::refused(Refusal::NotFound, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ImError {
        Self::refused(Refusal::Conflict, code, message)
    }

    fn refused(refusal: Refusal, code: &'static str, message: impl Into<String>) -> ImError {
        ImError::Refused {
            refusal,
            code,
            message: message.into(),
        }
    }

    /// The code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            ImError::Refused { code, .. } => code,
            ImError::Store(StoreError::Unavailable(_)) => "unavailable",
            ImError::Store(_) => "internal",
        }
    }

    /// "You are not in that conversation (or it does not exist)": one answer for both.
    pub fn not_member() -> ImError {
        ImError::forbidden(
            "not_member",
            "no such conversation, or you are not a member of it",
        )
    }
}
