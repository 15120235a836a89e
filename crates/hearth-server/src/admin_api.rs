//! `/api/admin/...`: the admin CLI's operations over HTTP, for users with the `admin` role.
//! Thin handlers over [`hearth_core::admin::Admin`]; 401 without a session, 403 for anyone
//! who is not an admin.

use crate::App;
use crate::api::{ApiError, ApiJson, ApiPath, ApiQuery, CurrentUser};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use hearth_core::admin::{AdminError, RoomInfo, UserInfo, UserRole};
use hearth_core::model::User;
use hearth_core::validate::Invalid;
use hearth_proto::http::error_id;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Users listed at most per request.
const MAX_LIST: usize = 1_000;

pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/api/admin/users", get(list_users))
        .route("/api/admin/users/{id}", get(user))
        .route("/api/admin/users/{id}/ban", post(ban))
        .route("/api/admin/users/{id}/unban", post(unban))
        .route("/api/admin/users/{id}/avatar", delete(remove_avatar))
        .route("/api/admin/users/{id}/grant-admin", post(grant_admin))
        .route("/api/admin/users/{id}/revoke-admin", post(revoke_admin))
        .route(
            "/api/admin/users/{id}/revoke-sessions",
            post(revoke_sessions),
        )
        .route("/api/admin/rooms", get(rooms).post(create_room))
        .route(
            "/api/admin/rooms/{slug}",
            axum::routing::delete(delete_room),
        )
        .route("/api/admin/stats", get(stats))
}

/// The logged-in user, if an admin: else 401 (no session) or 403.
pub struct AdminUser(pub User);

impl FromRequestParts<Arc<App>> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, app).await?;
        if !app.ops.admin.is_admin(user.id).await? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                error_id::FORBIDDEN,
                "this needs the admin role",
            ));
        }
        Ok(AdminUser(user))
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let message = error.to_string();
        match error {
            AdminError::NoSuchUser(_) | AdminError::NoSuchRoom(_) => {
                ApiError::new(StatusCode::NOT_FOUND, error_id::NOT_FOUND, message)
            }
            AdminError::RoomExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "ROOM_EXISTS", message)
            }
            AdminError::RoomHasMessages { .. } => {
                ApiError::new(StatusCode::CONFLICT, "ROOM_HAS_MESSAGES", message)
            }
            AdminError::ConfiguredRoom(_) => {
                ApiError::new(StatusCode::CONFLICT, "ROOM_CONFIGURED", message)
            }
            AdminError::Invalid(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, error_id::BAD_REQUEST, message)
            }
            AdminError::Store(e) => e.into(),
        }
    }
}

/// Over the API an admin cannot lock themself out (a slip of the id would leave a deployment
/// with no admin able to undo it); the `hearth admin` CLI still can, on the operator's word.
fn not_self(admin: &User, target: i64, what: &str) -> Result<(), ApiError> {
    if admin.id == target {
        return Err(AdminError::Invalid(Invalid(format!(
            "you cannot {what} yourself; another admin, or `hearth admin` on the server, can"
        )))
        .into());
    }
    Ok(())
}

pub fn user_json(u: &UserInfo) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "role": u.role.as_str(),
        "banned": u.banned_ms.is_some(),
        "bannedAt": u.banned_ms,
        "createdAt": u.created_ms,
        "avatar": u.avatar,
    })
}

pub fn room_json(r: &RoomInfo) -> Value {
    json!({
        "id": r.slug,
        "name": r.name,
        "conversationId": r.conversation_id,
        "messages": r.messages,
        "createdAt": r.created_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserQuery {
    prefix: Option<String>,
    limit: Option<usize>,
}

async fn list_users(
    State(app): State<Arc<App>>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let prefix = query.prefix.unwrap_or_default();
    let users = app.ops.admin.list_users(&prefix, limit).await?;
    let users: Vec<Value> = users.iter().map(user_json).collect();
    Ok(Json(json!({ "users": users })))
}

async fn user(
    State(app): State<Arc<App>>,
    _admin: AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_json(&app.ops.admin.user(id).await?)))
}

async fn ban(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    not_self(&admin, id, "ban")?;
    let user = app.ops.admin.ban(id).await?;
    tracing::info!(admin = admin.id, user = id, "banned a user");
    Ok(Json(user_json(&user)))
}

async fn unban(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let user = app.ops.admin.unban(id).await?;
    tracing::info!(admin = admin.id, user = id, "lifted a ban");
    Ok(Json(user_json(&user)))
}

async fn remove_avatar(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let user = app.ops.admin.remove_avatar(id).await?;
    tracing::info!(admin = admin.id, user = id, "removed an avatar");
    Ok(Json(user_json(&user)))
}

async fn grant_admin(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let user = app.ops.admin.set_role(id, UserRole::Admin).await?;
    tracing::info!(admin = admin.id, user = id, "granted the admin role");
    Ok(Json(user_json(&user)))
}

async fn revoke_admin(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    not_self(&admin, id, "revoke the admin role of")?;
    let user = app.ops.admin.set_role(id, UserRole::User).await?;
    tracing::info!(admin = admin.id, user = id, "revoked the admin role");
    Ok(Json(user_json(&user)))
}

async fn revoke_sessions(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    // 404 for an unknown user rather than a silent "0 revoked".
    app.ops.admin.user(id).await?;
    let revoked = app.ops.admin.revoke_sessions(id).await?;
    tracing::info!(admin = admin.id, user = id, revoked, "revoked sessions");
    Ok(Json(json!({ "revoked": revoked })))
}

async fn rooms(State(app): State<Arc<App>>, _admin: AdminUser) -> Result<Json<Value>, ApiError> {
    let rooms: Vec<Value> = app.ops.admin.rooms().await?.iter().map(room_json).collect();
    Ok(Json(json!({ "rooms": rooms })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    id: String,
    name: String,
}

async fn create_room(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<NewRoom>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let room = app.ops.admin.create_room(&body.id, &body.name).await?;
    tracing::info!(admin = admin.id, room = %room.slug, "created a room");
    Ok((StatusCode::CREATED, Json(room_json(&room))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    force: Option<bool>,
}

async fn delete_room(
    State(app): State<Arc<App>>,
    AdminUser(admin): AdminUser,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Json<Value>, ApiError> {
    let force = query.force.unwrap_or(false);
    let deleted = app.ops.admin.delete_room(&slug, force).await?;
    tracing::info!(admin = admin.id, room = %slug, deleted, "deleted a room");
    Ok(Json(json!({ "deletedMessages": deleted })))
}

async fn stats(State(app): State<Arc<App>>, _admin: AdminUser) -> Result<Json<Value>, ApiError> {
    let stats = app.ops.admin.stats().await?;
    let c = &stats.counts;
    Ok(Json(json!({
        "users": c.users,
        "bannedUsers": c.banned_users,
        "admins": c.admins,
        "rooms": c.rooms,
        "directConversations": c.direct_conversations,
        "groups": c.groups,
        "messages": c.messages,
        "sessions": stats.sessions,
    })))
}
