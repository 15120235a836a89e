//! `GET /api/search/messages` and `GET /api/search/users`. The search service does the
//! checks (bounds, who may read what); errors are the IM API's `{"id", "message"}` bodies.

use crate::App;
use crate::api::{ApiError, ApiQuery, CurrentUser};
use axum::Json;
use axum::Router;
use axum::routing::get;
use hearth_core::model::UserRef;
use hearth_search::{MessageQuery, SearchPage};
use serde::Deserialize;
use std::sync::Arc;

type State = axum::extract::State<Arc<App>>;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/search/messages", get(messages))
        .route("/api/search/users", get(users))
}

async fn messages(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> Result<Json<SearchPage>, ApiError> {
    Ok(Json(app.search.messages(me.id, &query).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserQuery {
    q: String,
    limit: Option<usize>,
}

async fn users(
    app: State,
    CurrentUser(_): CurrentUser,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Vec<UserRef>>, ApiError> {
    Ok(Json(app.search.users(&query.q, query.limit).await?))
}
