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
    /// Bytes that may wait in the server for a socket whose client does not read fast enough
    /// (beyond what the kernel buffers); past it the socket is closed with 4001 and the client
    /// resyncs (a fresh `hello`, or `sync` by `seq`).
    pub socket_backlog_bytes: usize,
    /// The server pings every socket this often (seconds)…
    pub ping_interval_secs: u64,
    /// …and closes one it has heard nothing from (no frame, no pong) for this long (1001).
    pub idle_timeout_secs: u64,
    /// An HTTP connection has this long to send each request's headers, counted from when
    /// the server starts waiting for them (so an idle kept-alive connection closes too).
    pub header_read_timeout_secs: u64,
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
            socket_backlog_bytes: 4 << 20,
            ping_interval_secs: 30,
            idle_timeout_secs: 75,
            header_read_timeout_secs: 30,
        }
    }
}
