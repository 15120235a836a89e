//! Bounds on what a client may send. Every input has one (SPEC §7).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest message content, in characters (Unicode scalar values).
    pub max_content_chars: usize,
    /// Most messages in one `clientMessages` frame.
    pub max_messages_per_frame: usize,
    /// Frames larger than this are answered with a `frame_too_large` error frame.
    pub max_frame_bytes: usize,
    /// Frames larger than this close the socket with code 1009 before they are buffered whole.
    pub hard_max_frame_bytes: usize,
    /// Messages per `hello` room and per `roomHistory` page.
    pub history_page: usize,
    /// Largest HTTP JSON body, in bytes.
    pub max_http_body_bytes: usize,
    /// Room messages a connection may fall behind before it is closed (it then reconnects and
    /// gets a fresh `hello`).
    pub socket_backlog: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_chars: 4_000,
            max_messages_per_frame: 100,
            max_frame_bytes: 1 << 20,
            hard_max_frame_bytes: 2 << 20,
            history_page: 100,
            max_http_body_bytes: 16 * 1024,
            socket_backlog: 4_096,
        }
    }
}
