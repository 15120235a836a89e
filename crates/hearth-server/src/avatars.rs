//! `GET /api/users/{id}/avatar`: the picture shown for a user, to every signed-in user.
//!
//! A user who chose an avatar (`PATCH /api/me {"avatar": fileId}`) is shown that image's
//! thumbnail, never the full upload. Everyone else gets a generated picture: the first letter
//! or digit of their name on a colour picked by their id, so every client shows the same
//! face for the same person without drawing its own. The URL stays the same when the picture
//! changes, so answers are cached only briefly and carry an entity tag to revalidate with.

use crate::App;
use crate::api::{ApiError, ApiPath, CurrentUser};
use crate::files_api::{
    cache_headers_for, none_match, not_modified_for, safety_headers, thumbnail_response,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hearth_core::ImError;
use hearth_core::model::User;
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/users/{id}/avatar", get(avatar))
}

/// Short, because a new avatar appears under the same URL (clients that know the version,
/// like `GET /api/me`'s `avatar`, can add it as a query to skip the wait).
const CACHE_CONTROL: &str = "private, max-age=60";

/// Background colours of generated avatars: dark enough for white letters.
const PALETTE: [&str; 8] = [
    "#b03a2e", "#b9770e", "#7d8a13", "#1e8449", "#148f77", "#2471a3", "#7d3c98", "#566573",
];

async fn avatar(
    State(app): State<Arc<App>>,
    CurrentUser(_viewer): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = app
        .accounts
        .user(id)
        .await?
        .ok_or_else(|| ImError::not_found("no_user", "no such user"))?;
    if let Some(file_id) = &user.avatar
        && let Some(file) = app.files.record(file_id).await?
        && let Some(key) = &file.thumbnail_sha256
    {
        let etag = format!("\"{key}\"");
        if none_match(&headers, &etag) {
            return Ok(not_modified_for(&etag, CACHE_CONTROL));
        }
        if let Some(blob) = app.files.thumbnail(&file).await? {
            return Ok(thumbnail_response(blob, &file, &etag, CACHE_CONTROL));
        }
    }
    let (initial, colour) = default_face(&user);
    let etag = format!("\"default-{colour}-{:x}\"", u32::from(initial));
    if none_match(&headers, &etag) {
        return Ok(not_modified_for(&etag, CACHE_CONTROL));
    }
    let mut response = default_svg(initial, PALETTE[colour]).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    cache_headers_for(h, &etag, CACHE_CONTROL);
    safety_headers(h);
    Ok(response)
}

/// The letter (upper-cased where that is one character) and palette index of `user`'s
/// generated avatar.
fn default_face(user: &User) -> (char, usize) {
    let first = user
        .username
        .chars()
        .find(|c| c.is_alphanumeric())
        .unwrap_or('?');
    let mut upper = first.to_uppercase();
    let initial = match (upper.next(), upper.next()) {
        (Some(c), None) => c,
        _ => first,
    };
    (initial, user.id.rem_euclid(PALETTE.len() as i64) as usize)
}

/// A square SVG with `initial` in white on `colour`. The letter is alphanumeric or `?`, so it
/// needs no XML escaping; nothing else in the picture comes from a user.
fn default_svg(initial: char, colour: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"96\" height=\"96\" \
         viewBox=\"0 0 96 96\"><rect width=\"96\" height=\"96\" fill=\"{colour}\"/>\
         <text x=\"48\" y=\"48\" dy=\".35em\" text-anchor=\"middle\" \
         font-family=\"system-ui, sans-serif\" font-size=\"46\" fill=\"#fff\">{initial}</text></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, username: &str) -> User {
        User {
            id,
            username: username.into(),
            email: "a@b.c".into(),
            avatar: None,
        }
    }

    #[test]
    fn generated_faces_use_the_first_letter_or_digit() {
        assert_eq!(default_face(&user(1, "alice")), ('A', 1));
        assert_eq!(default_face(&user(9, "__bob")), ('B', 1));
        assert_eq!(default_face(&user(2, "张伟伟伟")), ('张', 2));
        assert_eq!(default_face(&user(3, "7even")), ('7', 3));
        // "ß" upper-cases to two letters: kept as it is.
        assert_eq!(default_face(&user(4, "ßtraße")), ('ß', 4));
        assert_eq!(default_face(&user(-5, "....")).0, '?');
        assert!(default_face(&user(-5, "....")).1 < PALETTE.len());
    }

    #[test]
    fn generated_pictures_hold_only_the_letter() {
        let svg = default_svg('Q', PALETTE[0]);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains(">Q</text>"));
    }
}
