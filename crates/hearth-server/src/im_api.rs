//! The native instant-messaging API over HTTP: friends, blocks, groups, conversations,
//! messages, presence, user search. Every handler takes the [`CurrentUser`] and calls one core
//! service; the services do every authorization check.

use crate::App;
use crate::api::{ApiError, ApiJson, ApiPath, ApiQuery, CurrentUser};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hearth_core::messaging::Pulled;
use hearth_core::model::Member;
use hearth_core::store::{Decision, FriendRequest};
use hearth_core::{ImError, model::UserRef};
use hearth_proto::native::http::{
    CreateGroupBody, EditBody, FriendRequestBody, GroupNameBody, NoteBody, SendBody, SeqBody,
    UserIdBody, UserIdsBody,
};
use hearth_proto::native::{Ack, Presence, Role, SyncState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

type State = axum::extract::State<Arc<App>>;
type Done = Result<Response, ApiError>;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/users", get(search_users))
        .route("/api/presence", get(presence))
        .route("/api/sync", get(sync))
        .route("/api/friends", get(friends))
        .route("/api/friends/{user_id}", delete(remove_friend))
        .route(
            "/api/friends/requests",
            get(friend_requests).post(request_friend),
        )
        .route(
            "/api/friends/requests/{user_id}/{action}",
            post(decide_friend),
        )
        .route("/api/blocks", get(blocked).post(block))
        .route("/api/blocks/{user_id}", delete(unblock))
        .route("/api/direct", post(open_direct))
        .route("/api/groups", post(create_group))
        .route("/api/groups/{id}/invite", post(invite))
        .route(
            "/api/groups/{id}/join-requests",
            get(join_requests).post(request_join),
        )
        .route(
            "/api/groups/{id}/join-requests/{user_id}/{action}",
            post(decide_join),
        )
        .route("/api/groups/{id}/kick", post(kick))
        .route("/api/groups/{id}/leave", post(leave))
        .route("/api/groups/{id}/transfer", post(transfer))
        .route("/api/groups/{id}/name", post(rename_group))
        .route("/api/groups/{id}/role", post(set_role))
        .route("/api/groups/{id}/dissolve", post(dissolve))
        .route("/api/conversations/{id}/members", get(members))
        .route("/api/conversations/{id}/messages", get(pull).post(send))
        .route("/api/conversations/{id}/read", post(read))
        .route("/api/conversations/{id}/delivered", post(delivered))
        .route(
            "/api/conversations/{id}/messages/{seq}",
            axum::routing::patch(edit),
        )
        .route(
            "/api/conversations/{id}/messages/{seq}/recall",
            post(recall),
        )
        .route("/api/conversations/{id}/messages/{seq}/hide", post(hide))
}

fn no_content() -> Done {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn json(value: impl Serialize) -> Done {
    Ok(Json(value).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
}

async fn search_users(
    app: State,
    CurrentUser(_): CurrentUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(app.social.search(&query.q).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceQuery {
    /// Comma-separated user ids.
    ids: String,
}

async fn presence(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<PresenceQuery>,
) -> Result<Json<Vec<Presence>>, ApiError> {
    let ids = query
        .ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ImError::invalid("bad_request", "ids must be comma-separated user ids"))?;
    Ok(Json(app.presence.query(me.id, &ids).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SyncQuery {
    #[serde(default)]
    inbox_after: i64,
}

async fn sync(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<SyncQuery>,
) -> Result<Json<SyncState>, ApiError> {
    Ok(Json(app.messaging.sync(me.id, query.inbox_after).await?))
}

async fn friends(app: State, CurrentUser(me): CurrentUser) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(app.social.friends(me.id).await?))
}

async fn remove_friend(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(user_id): ApiPath<i64>,
) -> Done {
    app.social.remove(&me.as_ref(), user_id).await?;
    no_content()
}

fn request_json(r: &FriendRequest) -> Value {
    json!({"from": r.from, "to": r.to, "note": r.note, "createdAt": r.created_ms})
}

async fn friend_requests(app: State, CurrentUser(me): CurrentUser) -> Done {
    let (incoming, outgoing) = app.social.pending(me.id).await?;
    json(json!({
        "incoming": incoming.iter().map(request_json).collect::<Vec<_>>(),
        "outgoing": outgoing.iter().map(request_json).collect::<Vec<_>>(),
    }))
}

async fn request_friend(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<FriendRequestBody>,
) -> Done {
    app.rate.friend_request(me.id)?;
    app.social
        .request(&me.as_ref(), body.user_id, &body.note)
        .await?;
    no_content()
}

async fn decide_friend(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath((user_id, action)): ApiPath<(i64, String)>,
) -> Done {
    let decision = match action.as_str() {
        "accept" => Decision::Accept,
        "reject" => Decision::Reject,
        "cancel" => Decision::Cancel,
        _ => {
            return Err(
                ImError::invalid("bad_request", "action is accept, reject or cancel").into(),
            );
        }
    };
    app.social.decide(&me.as_ref(), user_id, decision).await?;
    no_content()
}

async fn blocked(app: State, CurrentUser(me): CurrentUser) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(app.social.blocked(me.id).await?))
}

async fn block(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<UserIdBody>,
) -> Done {
    app.social.block(&me.as_ref(), body.user_id).await?;
    no_content()
}

async fn unblock(app: State, CurrentUser(me): CurrentUser, ApiPath(user_id): ApiPath<i64>) -> Done {
    app.social.unblock(&me.as_ref(), user_id).await?;
    no_content()
}

async fn open_direct(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<UserIdBody>,
) -> Done {
    let id = app
        .messaging
        .open_direct(&me.as_ref(), body.user_id)
        .await?;
    json(json!({"conversationId": id}))
}

async fn create_group(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<CreateGroupBody>,
) -> Done {
    let id = app
        .groups
        .create(&me.as_ref(), &body.name, &body.members)
        .await?;
    json(json!({"conversationId": id}))
}

async fn invite(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UserIdsBody>,
) -> Done {
    app.groups.invite(&me.as_ref(), id, &body.user_ids).await?;
    no_content()
}

async fn request_join(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Done {
    app.rate.join_request(me.id)?;
    app.groups
        .request_join(&me.as_ref(), id, &body.note)
        .await?;
    no_content()
}

async fn join_requests(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Done {
    let requests = app.groups.join_requests(me.id, id).await?;
    json(
        requests
            .into_iter()
            .map(|(user, note)| json!({"user": user, "note": note}))
            .collect::<Vec<_>>(),
    )
}

async fn decide_join(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath((id, user_id, action)): ApiPath<(i64, i64, String)>,
) -> Done {
    let approve = match action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ImError::invalid("bad_request", "action is approve or reject").into()),
    };
    app.groups
        .decide_join(&me.as_ref(), id, user_id, approve)
        .await?;
    no_content()
}

async fn kick(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UserIdBody>,
) -> Done {
    app.groups.kick(&me.as_ref(), id, body.user_id).await?;
    no_content()
}

async fn leave(app: State, CurrentUser(me): CurrentUser, ApiPath(id): ApiPath<i64>) -> Done {
    app.groups.leave(&me.as_ref(), id).await?;
    no_content()
}

async fn transfer(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UserIdBody>,
) -> Done {
    app.groups.transfer(&me.as_ref(), id, body.user_id).await?;
    no_content()
}

/// `RoleBody` with the role as a plain string, so that an unknown role is the documented
/// `bad_role` (from the core) rather than the deserializer's `BAD_REQUEST`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetRoleBody {
    user_id: i64,
    role: String,
}

async fn set_role(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SetRoleBody>,
) -> Done {
    let role = hearth_core::groups::Groups::parse_role(&body.role)?;
    app.groups
        .set_role(&me.as_ref(), id, body.user_id, role)
        .await?;
    no_content()
}

async fn rename_group(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<GroupNameBody>,
) -> Done {
    app.groups.rename(&me.as_ref(), id, &body.name).await?;
    no_content()
}

async fn dissolve(app: State, CurrentUser(me): CurrentUser, ApiPath(id): ApiPath<i64>) -> Done {
    app.groups.dissolve(&me.as_ref(), id).await?;
    no_content()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberBody {
    user: UserRef,
    role: Role,
    read_seq: i64,
    delivered_seq: i64,
}

async fn members(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<MemberBody>>, ApiError> {
    let members = app.messaging.members(me.id, id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m: Member| MemberBody {
                read_seq: m.read_seq.max(m.joined_seq),
                delivered_seq: m.delivered_seq.max(m.joined_seq),
                user: m.user,
                role: m.role,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_page")]
    limit: usize,
}

fn default_page() -> usize {
    100
}

async fn pull(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<PullQuery>,
) -> Result<Json<Pulled>, ApiError> {
    Ok(Json(
        app.messaging
            .pull(me.id, id, query.after, query.limit)
            .await?,
    ))
}

async fn send(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<Ack>, ApiError> {
    app.rate.messages(me.id, 1)?;
    let pending = app
        .messaging
        .submit(
            &me.as_ref(),
            id,
            body.client_msg_id,
            body.kind,
            body.content,
            body.reply_to,
            body.file_id,
        )
        .await?;
    Ok(Json(pending.ack().await?))
}

async fn read(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SeqBody>,
) -> Done {
    app.messaging.read(me.id, id, body.seq).await?;
    no_content()
}

async fn delivered(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SeqBody>,
) -> Done {
    app.messaging.delivered(me.id, id, body.seq).await?;
    no_content()
}

async fn recall(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath((id, seq)): ApiPath<(i64, i64)>,
) -> Done {
    app.messaging.recall(&me.as_ref(), id, seq).await?;
    no_content()
}

async fn edit(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath((id, seq)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<EditBody>,
) -> Done {
    app.messaging
        .edit(&me.as_ref(), id, seq, body.content)
        .await?;
    no_content()
}

async fn hide(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath((id, seq)): ApiPath<(i64, i64)>,
) -> Done {
    app.messaging.hide(me.id, id, seq).await?;
    no_content()
}
