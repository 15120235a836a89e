//! The `/api/...` HTTP endpoints.
//!
//! Errors are always JSON `{"id", "message"}` (see `hearth_proto::http::ErrorBody`): 400 for
//! bad input (the reference protocol's ids), 401 without a session, 404/405 for unknown
//! endpoints and methods, 413 for oversized bodies, 503 when a backend is down.

use crate::App;
use crate::auth::{COOKIE_NAME, session_token, session_tokens};
use crate::rate::Limited;
use crate::security::peer;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_core::accounts::{AccountError, Session, check_avatar, token_hash};
use hearth_core::im_error::Refusal;
use hearth_core::model::User;
use hearth_core::policy::DirectPolicy;
use hearth_core::validate::Invalid;
use hearth_core::{ImError, StoreError};
use hearth_proto::http::{
    CreateAccountRequest, ErrorBody, LoginRequest, Me, PasswordChange, ProfileUpdate, ServerPolicy,
    SessionCreated, error_id,
};
use hearth_proto::strict::StrictObject;
use serde::de::DeserializeOwned;
use std::net::IpAddr;
use std::sync::Arc;

/// An HTTP error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    id: &'static str,
    message: String,
    /// Set on 429: sent as `Retry-After` (seconds) and `retryAfterMs`.
    retry_after: Option<Limited>,
}

impl ApiError {
    pub fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            id,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            id: self.id.to_owned(),
            message: self.message,
            retry_after_ms: self
                .retry_after
                .map(|l| l.retry_after.as_millis().try_into().unwrap_or(u64::MAX)),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(limited) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, limited.retry_after_secs().into());
        }
        response
    }
}

impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        limited.report();
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            id: "rate_limited",
            message: limited.message(),
            retry_after: Some(limited),
        }
    }
}

/// The client's address (the peer, or the proxy's `X-Forwarded-For` when trusted).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<App>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        Ok(ClientIp(
            app.security
                .client_ip(&parts.headers, peer(&parts.extensions)),
        ))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(%error, "backend unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error_id::SERVICE_UNAVAILABLE,
                    "a backend is unavailable; try again shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error_id::INTERNAL,
                    "internal error",
                )
            }
        }
    }
}

impl From<ImError> for ApiError {
    fn from(error: ImError) -> Self {
        match error {
            ImError::Refused {
                refusal,
                code,
                message,
            } => {
                let status = match refusal {
                    Refusal::Invalid => StatusCode::BAD_REQUEST,
                    Refusal::Forbidden => StatusCode::FORBIDDEN,
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Conflict => StatusCode::CONFLICT,
                };
                ApiError::new(status, code, message)
            }
            ImError::Store(e) => e.into(),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let bad = |id, e: &AccountError| ApiError::new(StatusCode::BAD_REQUEST, id, e.to_string());
        match &error {
            AccountError::Invalid(_) => bad(error_id::BAD_REQUEST, &error),
            AccountError::UsernameTaken => bad(error_id::USERNAME_EXISTS, &error),
            AccountError::EmailTaken => bad(error_id::EMAIL_EXISTS, &error),
            AccountError::LoginFailed => bad(error_id::LOGIN_FAILED, &error),
            AccountError::WrongPassword => bad(error_id::WRONG_PASSWORD, &error),
            AccountError::Banned => ApiError::new(
                StatusCode::FORBIDDEN,
                error_id::ACCOUNT_BANNED,
                error.to_string(),
            ),
            AccountError::CreatedWithoutSession(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                error_id::SERVICE_UNAVAILABLE,
                error.to_string(),
            ),
            AccountError::Store(e) => e.clone().into(),
        }
    }
}

/// A JSON body whose every rejection is an [`ApiError`] (400, or 413 when too large).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // An object first (Json<T> would also take a struct from an array of its fields), with
        // no key given twice (hearth_proto::strict).
        let object = match Json::<StrictObject>::from_request(req, state).await {
            Ok(Json(StrictObject(object))) => object,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        hearth_proto::http::from_object(object)
            .map(ApiJson)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    error_id::BAD_REQUEST,
                    format!("Failed to deserialize the JSON body into the target type: {e}"),
                )
            })
    }
}

/// Path parameters whose rejection is an [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    error_id::BAD_REQUEST,
                    e.body_text(),
                )
            })
    }
}

/// Query parameters whose rejection is an [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    error_id::BAD_REQUEST,
                    e.body_text(),
                )
            })
    }
}

/// The logged-in user of a request (cookie or bearer token), or 401.
pub struct CurrentUser(pub User);

impl FromRequestParts<Arc<App>> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let user = match session_token(&parts.headers) {
            Some(token) => app.accounts.authenticate(&token).await?,
            None => None,
        };
        user.map(CurrentUser).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                error_id::UNAUTHORIZED,
                "not logged in",
            )
        })
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_id::PAYLOAD_TOO_LARGE,
            "request body too large",
        );
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        error_id::BAD_REQUEST,
        rejection.body_text(),
    )
}

/// `204` with the session cookie, as the reference chat room answers a login.
fn cookie_login(app: &App, headers: &HeaderMap, session: &Session) -> Response {
    set_cookie(
        StatusCode::NO_CONTENT,
        &session_cookie(app, headers, session),
    )
}

/// The `Set-Cookie` value that hands `session` to a browser.
fn session_cookie(app: &App, headers: &HeaderMap, session: &Session) -> String {
    let max_age = app.accounts.session_ttl().as_secs();
    let secure = if app.secure_cookies || app.security.forwarded_https(headers) {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
        session.token
    )
}

fn set_cookie(status: StatusCode, cookie: &str) -> Response {
    with_cookie(status.into_response(), cookie)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn me_body(user: User) -> Me {
    Me {
        id: user.id,
        username: user.username,
        email: user.email,
        avatar: user.avatar,
    }
}

pub async fn create_account(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateAccountRequest>,
) -> Result<Response, ApiError> {
    app.rate.signup(ip)?;
    let session = app
        .accounts
        .create_account(&body.username, &body.email, &body.password)
        .await?;
    Ok(cookie_login(&app, &headers, &session))
}

pub async fn login(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = limited_login(&app, ip, &body).await?;
    Ok(cookie_login(&app, &headers, &session))
}

/// A login behind the per-IP and per-account limits; failures earn the account a lock-out.
async fn limited_login(app: &App, ip: IpAddr, body: &LoginRequest) -> Result<Session, ApiError> {
    password_attempt(app, ip, &body.email, async {
        app.accounts.login(&body.email, &body.password).await
    })
    .await
}

/// Anything that checks `account`'s password, behind the per-IP and per-account login
/// limits: a wrong password counts towards the lock-out, a right one clears it.
async fn password_attempt<T>(
    app: &App,
    ip: IpAddr,
    account: &str,
    attempt: impl Future<Output = Result<T, AccountError>>,
) -> Result<T, ApiError> {
    app.rate.login(ip, account).await?;
    let result = attempt.await;
    match &result {
        Ok(_) => app.rate.login_result(account, true).await,
        Err(AccountError::LoginFailed | AccountError::WrongPassword) => {
            app.rate.login_result(account, false).await
        }
        Err(_) => {}
    }
    Ok(result?)
}

fn session_created(session: Session) -> SessionCreated {
    SessionCreated {
        token: session.token,
        expires_at: session.expires_at_ms,
        user: me_body(session.user),
    }
}

/// The native login: the token in the body, for `Authorization: Bearer`.
pub async fn create_token_session(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<SessionCreated>, ApiError> {
    let session = limited_login(&app, ip, &body).await?;
    Ok(Json(session_created(session)))
}

/// Revokes the presented sessions (cookie and bearer, if both are sent), closes their
/// sockets and clears the cookie. Idempotent.
pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    for token in session_tokens(&headers) {
        app.accounts.logout(&token).await?;
        app.gateway.registry.revoke(&token_hash(&token));
    }
    let cookie = format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(set_cookie(StatusCode::NO_CONTENT, &cookie))
}

pub async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let user = match session_token(&headers) {
        Some(token) => app.accounts.authenticate(&token).await?,
        None => None,
    };
    let user = user.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            error_id::UNAUTHORIZED,
            "not logged in",
        )
    })?;
    Ok(Json(me_body(user)))
}

/// `GET /api/policy`: this node's configured limits and policies, for clients to show and
/// check (public: they say nothing about any user).
pub async fn policy(State(app): State<Arc<App>>) -> Json<ServerPolicy> {
    let policy = app.messaging.policy();
    Json(ServerPolicy {
        max_content_chars: app.limits.max_content_chars,
        recall_window_secs: policy.recall_window_secs,
        direct_messages: match policy.direct_messages {
            DirectPolicy::Friends => "friends",
            DirectPolicy::Anyone => "anyone",
        }
        .to_owned(),
        group_member_limit: policy.group_member_limit,
        max_note_chars: policy.max_note_chars,
        max_group_name_chars: policy.max_group_name_chars,
        max_page: policy.max_page,
        // A direct conversation always keeps them, whatever the setting (`Messaging::delivered`).
        delivery_receipts_max_members: policy.delivery_receipts_max_members.max(2),
    })
}

/// Changes the profile: the username (validated as at sign-up, and free) and the avatar (an
/// image the user uploaded, or `null` for none). The avatar is checked before anything is
/// written, so a refused request changes nothing.
pub async fn update_profile(
    State(app): State<Arc<App>>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> Result<Json<Me>, ApiError> {
    let avatar = match &body.avatar {
        Some(Some(id)) => {
            // Whose file it is, check_avatar decides; a store failure stays a store failure.
            let file = app.files.record(id).await?.ok_or_else(|| {
                AccountError::from(Invalid("an avatar must be an image you uploaded".into()))
            })?;
            check_avatar(&user, &file).map_err(AccountError::from)?;
            Some(Some(file))
        }
        Some(None) => Some(None),
        None => None,
    };
    let before = user.clone();
    let mut user = match body.username {
        Some(username) => app.accounts.change_username(&user, &username).await?,
        None => user,
    };
    if let Some(image) = avatar {
        user = app.accounts.change_avatar(&user, image.as_ref()).await?;
    }
    let changed = user.username != before.username || user.avatar != before.avatar;
    if changed {
        app.gateway.profile_changed(user.id);
        app.social.profile_changed(&user).await;
    }
    Ok(Json(me_body(user)))
}

/// Changes the password, behind the login limits (a stolen session must not be a way to
/// guess the password). Every session of the user ends, their sockets close, and a new
/// session comes back: as the cookie, and in the body for bearer clients.
pub async fn change_password(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let session = password_attempt(&app, ip, &user.email, async {
        app.accounts
            .change_password(&user, &body.current_password, &body.new_password)
            .await
    })
    .await?;
    app.gateway.revoke_user(user.id);
    let cookie = session_cookie(&app, &headers, &session);
    Ok(with_cookie(
        Json(session_created(session)).into_response(),
        &cookie,
    ))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        error_id::NOT_FOUND,
        "no such endpoint",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error_id::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}
