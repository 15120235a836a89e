//! JSON bodies of the HTTP API (`/api/...`).

use serde::{Deserialize, Serialize};

/// `POST /api/create-account`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    pub username: String,
    pub email: String,
    pub password: String,
}

/// `POST /api/login` (cookie) and `POST /api/sessions` (bearer token).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Every HTTP error body: `{"id": "LOGIN_FAILED", "message": "…"}`.
///
/// The reference client reads only `id`; `message` is for humans.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub id: String,
    pub message: String,
}

/// The ids the reference protocol defines, plus the few Hearth adds for HTTP-level failures.
pub mod error_id {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const LOGIN_FAILED: &str = "LOGIN_FAILED";
    pub const USERNAME_EXISTS: &str = "USERNAME_EXISTS";
    pub const EMAIL_EXISTS: &str = "EMAIL_EXISTS";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
}

/// `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub email: String,
}

/// `POST /api/sessions`: the native login for non-browser clients, which send the token back
/// as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub user: Me,
}
