//! Where a request comes from, and whether a browser page may make it.
//!
//! * The client's IP (for rate limits) is the TCP peer, or — only when
//!   `security.trust_proxy_headers` says a reverse proxy sits in front — the last address in
//!   `X-Forwarded-For`, the one that proxy appended (earlier ones are the client's word).
//! * Cross-site request forgery: a browser attaches the session cookie to requests any page
//!   makes, but it also says which page in `Origin`. A state-changing `/api` request or a
//!   WebSocket upgrade whose `Origin` is neither this server's own nor one of
//!   `security.allowed_origins` is refused with 403 `bad_origin`. Requests without `Origin`
//!   (native clients, curl) are not browser-driven and pass; their credentials are a bearer
//!   token or a cookie they hold themselves.

use crate::App;
use crate::api::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// `[security]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Origins (scheme://host[:port]) besides this server's own whose pages may use the API
    /// with the session cookie and open sockets, e.g. a web client served elsewhere.
    pub allowed_origins: Vec<String>,
    /// A reverse proxy in front sets `X-Forwarded-For`, `X-Forwarded-Proto` and
    /// `X-Forwarded-Host`: believe them. Never set this when clients reach Hearth directly.
    pub trust_proxy_headers: bool,
}

impl Security {
    /// The client's address.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        if self.trust_proxy_headers
            && let Some(ip) = headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        {
            return ip;
        }
        peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip())
    }

    /// The request reached the proxy over HTTPS (so the cookie must be `Secure`).
    pub fn forwarded_https(&self, headers: &HeaderMap) -> bool {
        self.trust_proxy_headers
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }

    /// No `Origin`, this server's own, or an allowed one.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().trim_end_matches('/');
        if self
            .allowed_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        // Same origin: the Origin's host[:port] is the Host the browser sent the request to.
        let Some((_, authority)) = origin.split_once("://") else {
            return false; // "null" (sandboxed frames, file:) and anything malformed
        };
        let host = if self.trust_proxy_headers {
            headers
                .get("x-forwarded-host")
                .or_else(|| headers.get(HOST))
        } else {
            headers.get(HOST)
        };
        host.and_then(|h| h.to_str().ok())
            .is_some_and(|host| host.trim().eq_ignore_ascii_case(authority))
    }
}

pub fn bad_origin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "bad_origin",
        "requests from this page's origin are not allowed (see security.allowed_origins)",
    )
}

/// Refuses state-changing requests that a foreign page made.
pub async fn check_origin(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !app.security.origin_allowed(request.headers()) {
        return Err(bad_origin());
    }
    Ok(next.run(request).await)
}

/// Longest request target (path and query) answered with anything but 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header lines, and most header bytes (names and values), in one request.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses request heads past the limits with a JSON error (414, 431). hyper's own limits
/// (`http.rs`) sit further out and answer with an empty body, so a client that is merely
/// careless gets told why; only one far past every limit meets hyper's bare answer.
pub async fn check_head(request: Request, next: Next) -> Result<Response, ApiError> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are read"),
        ));
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!(
                "{} headers of {bytes} bytes; at most {MAX_HEADERS} headers and \
                 {MAX_HEADER_BYTES} bytes are read",
                headers.len()
            ),
        ));
    }
    Ok(next.run(request).await)
}

/// The TCP peer, when the server was started with connect info (tests may not).
pub fn peer(request_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_and_listed_origins_pass() {
        let security = Security {
            allowed_origins: vec!["https://app.example.com".into()],
            trust_proxy_headers: false,
        };
        assert!(security.origin_allowed(&headers(&[])));
        assert!(security.origin_allowed(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(security.origin_allowed(&headers(&[
            ("host", "chat.example.com"),
            ("origin", "https://app.example.com")
        ])));
        assert!(!security.origin_allowed(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example")
        ])));
        assert!(
            !security.origin_allowed(&headers(&[("host", "127.0.0.1:3000"), ("origin", "null")]))
        );
    }

    #[test]
    fn proxy_headers_count_only_when_trusted() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 10.0.0.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = Some(SocketAddr::from(([127, 0, 0, 1], 5000)));
        let direct = Security::default();
        assert_eq!(direct.client_ip(&h, peer), IpAddr::from([127, 0, 0, 1]));
        assert!(!direct.forwarded_https(&h));
        let proxied = Security {
            trust_proxy_headers: true,
            ..Security::default()
        };
        assert_eq!(proxied.client_ip(&h, peer), IpAddr::from([10, 0, 0, 7]));
        assert!(proxied.forwarded_https(&h));
    }
}
