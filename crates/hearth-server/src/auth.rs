//! Where a request's session token comes from: the `sid` cookie (browsers, the reference
//! protocol) or `Authorization: Bearer <token>` (native clients).

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};

pub const COOKIE_NAME: &str = "sid";

/// The session a request acts as: the bearer token if present, else the cookie.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    bearer(headers).or_else(|| cookie(headers))
}

/// Every session token a request carries (logout revokes them all).
pub fn session_tokens(headers: &HeaderMap) -> Vec<String> {
    bearer(headers).into_iter().chain(cookie(headers)).collect()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_token_in_either_place() {
        let mut h = HeaderMap::new();
        assert_eq!(session_token(&h), None);
        h.insert(COOKIE, HeaderValue::from_static("a=1; sid=abc; b=2"));
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(session_token(&h).as_deref(), Some("xyz"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer xyz"));
        assert_eq!(session_token(&h).as_deref(), Some("xyz"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic eHl6"));
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
    }
}
