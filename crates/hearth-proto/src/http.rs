//! JSON bodies of the HTTP API (`/api/...`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Decodes a request body. Bodies are JSON objects: serde alone would also read a body struct
/// from an array of its fields (`["ann@example.com", "pw"]`).
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let crate::strict::StrictObject(object) = serde_json::from_slice(bytes)?;
    from_object(object)
}

/// The second step of [`decode_body`], for servers whose framework already parsed the object.
pub fn from_object<T: DeserializeOwned>(
    object: Map<String, Value>,
) -> Result<T, serde_json::Error> {
    T::deserialize(Value::Object(object))
}

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

/// `PATCH /api/me`: the fields to change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub username: Option<String>,
    /// The id of an image the user uploaded, or `null` to remove the avatar; absent leaves
    /// it as it is.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub avatar: Option<Option<String>>,
}

/// For `Option<Option<T>>` fields: a field that is present (even as `null`) is `Some`, so
/// "absent" and "null" can mean different things.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /api/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Every HTTP error body: `{"id": "LOGIN_FAILED", "message": "…"}`.
///
/// The reference client reads only `id`; `message` is for humans.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub id: String,
    pub message: String,
    /// With `429 rate_limited`: how long to wait before retrying (also `Retry-After`).
    #[serde(
        rename = "retryAfterMs",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub retry_after_ms: Option<u64>,
}

/// The ids the reference protocol defines, plus the few Hearth adds for HTTP-level failures.
pub mod error_id {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const LOGIN_FAILED: &str = "LOGIN_FAILED";
    /// A password change whose current password is wrong.
    pub const WRONG_PASSWORD: &str = "WRONG_PASSWORD";
    pub const USERNAME_EXISTS: &str = "USERNAME_EXISTS";
    pub const EMAIL_EXISTS: &str = "EMAIL_EXISTS";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// Logged in, but not allowed (the admin API for non-admins).
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Right password, banned account.
    pub const ACCOUNT_BANNED: &str = "ACCOUNT_BANNED";
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
    /// The file id of the avatar the user chose, or `null`. Also a version: the picture is
    /// served at `/api/users/{id}/avatar`, and this changes whenever it does.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// `GET /api/policy`: this server's limits and policies that a client shows or checks before
/// asking (no session needed). Clients take them from here rather than assume the defaults,
/// which an operator may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPolicy {
    /// Longest message text, in characters.
    pub max_content_chars: usize,
    /// How long after sending a message its sender may recall it.
    pub recall_window_secs: u64,
    /// Who may open a direct conversation: `friends` or `anyone`.
    pub direct_messages: String,
    /// Most members a group may have.
    pub group_member_limit: usize,
    /// Longest friend-request or join-request note, in characters.
    pub max_note_chars: usize,
    /// Longest group name, in characters.
    pub max_group_name_chars: usize,
    /// Most messages per pull, and inbox events per sync.
    pub max_page: usize,
    /// Groups up to this size keep delivery receipts (direct conversations always do).
    pub delivery_receipts_max_members: usize,
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
