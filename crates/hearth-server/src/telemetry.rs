//! Prometheus metrics: what is recorded where, and the recorder `/metrics` renders.
//!
//! Recording goes through the `metrics` facade, so any code (the rate limiter, say) can count
//! without being handed a registry. The Prometheus recorder is installed process-wide once,
//! by the first [`crate::Server`] started; there is no listener of its own, `/metrics` renders
//! it. Every name is documented in `docs/operations.md`; keep the two in step.
//!
//! Hot paths (frames written to sockets, the fan-out pass) use handles resolved once at
//! install, so recording is one atomic add and never allocates.

use hearth_proto::room::{ClientFrame, DecodeError};
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

pub const CONNECTIONS_OPEN: &str = "hearth_connections_open";
pub const FRAMES_IN: &str = "hearth_frames_in_total";
pub const FRAMES_OUT: &str = "hearth_frames_out_total";
pub const MESSAGES_STORED: &str = "hearth_messages_stored_total";
pub const FANOUT_SECONDS: &str = "hearth_fanout_seconds";
pub const FANOUT_QUEUE: &str = "hearth_fanout_queue_batches";
pub const SOCKET_BACKLOG: &str = "hearth_socket_backlog_bytes";
pub const WRITER_QUEUE: &str = "hearth_writer_queue_posts";
pub const SLOW_SOCKETS_DROPPED: &str = "hearth_slow_sockets_dropped_total";
pub const STORE_SECONDS: &str = "hearth_store_op_seconds";
pub const STORE_ERRORS: &str = "hearth_store_errors_total";
pub const RATE_LIMITED: &str = "hearth_rate_limited_total";

/// Latency buckets in seconds, from a fast SQLite read to a Redis/MySQL timeout.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

struct Installed {
    handle: PrometheusHandle,
    frames_out_rooms: Counter,
    frames_out_other: Counter,
    fanout_seconds: Histogram,
}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns what renders it; `None` if another
/// recorder was installed first (an embedding program's own), which then gets the metrics.
pub fn install() -> Option<&'static PrometheusHandle> {
    INSTALLED
        .get_or_init(|| {
            let recorder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    tracing::warn!(%error, "metrics buckets refused; histograms are summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            if let Err(error) = metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "a metrics recorder is already installed; /metrics is empty");
                return None;
            }
            describe();
            // Exposed at 0 from the start, so alerts and dashboards see them before the first.
            for reason in ["too_slow", "stalled"] {
                counter!(SLOW_SOCKETS_DROPPED, "reason" => reason).increment(0);
            }
            Some(Installed {
                handle,
                frames_out_rooms: counter!(FRAMES_OUT, "stream" => "rooms"),
                frames_out_other: counter!(FRAMES_OUT, "stream" => "other"),
                fanout_seconds: histogram!(FANOUT_SECONDS),
            })
        })
        .as_ref()
        .map(|installed| &installed.handle)
}

fn installed() -> Option<&'static Installed> {
    INSTALLED.get().and_then(Option::as_ref)
}

fn describe() {
    describe_gauge!(CONNECTIONS_OPEN, "Open WebSocket connections, by platform.");
    describe_counter!(
        FRAMES_IN,
        "WebSocket frames received, by type (invalid, too_large, binary for refused ones)."
    );
    describe_counter!(
        FRAMES_OUT,
        "WebSocket frames written to sockets: room broadcasts (stream=rooms) and everything else."
    );
    describe_counter!(
        MESSAGES_STORED,
        "Messages stored, by conversation kind (room, direct, group)."
    );
    describe_histogram!(
        FANOUT_SECONDS,
        Unit::Seconds,
        "Per fan-out pass: from the oldest batch reaching this node's fan-out (right after the \
         commit in embedded mode) to its bytes being written to every socket."
    );
    describe_gauge!(
        FANOUT_QUEUE,
        "Room batches waiting for the fan-out task (sampled at scrape)."
    );
    describe_gauge!(
        SOCKET_BACKLOG,
        Unit::Bytes,
        "Bytes waiting in the server for sockets that are not keeping up: total and the largest \
         single socket (sampled at scrape)."
    );
    describe_gauge!(
        WRITER_QUEUE,
        "Posts waiting for their conversation's writer: total and the longest queue (sampled at \
         scrape)."
    );
    describe_counter!(
        SLOW_SOCKETS_DROPPED,
        "Sockets closed for not keeping up: backlog over the limit (too_slow, close 4001) or no \
         byte taken for 10 s (stalled)."
    );
    describe_histogram!(
        STORE_SECONDS,
        Unit::Seconds,
        "Duration of storage operations, by store and operation (sessions are Redis in cluster \
         mode; messages include the room streams)."
    );
    describe_counter!(
        STORE_ERRORS,
        "Failed storage operations, by store, operation and kind (unavailable, backend)."
    );
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by limit.");
}

/// Counts a request refused by a rate limit. `limit` names it (`login`, `signup`, `send`…);
/// keep the set small and fixed: each value is a time series.
pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// Counts an open socket until dropped.
pub struct OpenConnection {
    platform: &'static str,
}

pub fn connection_opened(platform: &'static str) -> OpenConnection {
    gauge!(CONNECTIONS_OPEN, "platform" => platform).increment(1.0);
    OpenConnection { platform }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN, "platform" => self.platform).decrement(1.0);
    }
}

/// Counts a received text frame by its type.
pub fn frame_in(decoded: &Result<ClientFrame, DecodeError>) {
    let kind = match decoded {
        Err(_) => "invalid",
        Ok(ClientFrame::ClientMessages(_)) => "clientMessages",
        Ok(ClientFrame::RequestRoomHistory(_)) => "requestRoomHistory",
        Ok(ClientFrame::Send(_)) => "send",
        Ok(ClientFrame::Read(_)) => "read",
        Ok(ClientFrame::Delivered(_)) => "delivered",
        Ok(ClientFrame::Typing(_)) => "typing",
        Ok(ClientFrame::Sync(_)) => "sync",
    };
    frame_in_kind(kind);
}

/// Counts a frame refused before decoding: `too_large`, `binary`.
pub fn frame_in_kind(kind: &'static str) {
    counter!(FRAMES_IN, "type" => kind).increment(1);
}

/// Room broadcast frames written to sockets in one fan-out pass.
pub fn room_frames_out(frames: u64) {
    if let Some(m) = installed() {
        m.frames_out_rooms.increment(frames);
    }
}

/// Any other frames written to a socket.
pub fn frames_out(frames: u64) {
    if let Some(m) = installed() {
        m.frames_out_other.increment(frames);
    }
}

/// One observation per fan-out pass: how long its oldest batch waited.
pub fn fanout_pass(oldest: Duration) {
    if let Some(m) = installed() {
        m.fanout_seconds.record(oldest.as_secs_f64());
    }
}

/// A socket closed for not keeping up: `too_slow` or `stalled`.
pub fn socket_dropped(reason: &'static str) {
    counter!(SLOW_SOCKETS_DROPPED, "reason" => reason).increment(1);
}

/// Queue depths, sampled when `/metrics` is scraped.
pub struct Depths {
    pub fanout_batches: usize,
    pub backlog_total: usize,
    pub backlog_max: usize,
    pub writer_total: usize,
    pub writer_max: usize,
}

pub fn set_depths(d: &Depths) {
    gauge!(FANOUT_QUEUE).set(d.fanout_batches as f64);
    gauge!(SOCKET_BACKLOG, "stat" => "total").set(d.backlog_total as f64);
    gauge!(SOCKET_BACKLOG, "stat" => "max").set(d.backlog_max as f64);
    gauge!(WRITER_QUEUE, "stat" => "total").set(d.writer_total as f64);
    gauge!(WRITER_QUEUE, "stat" => "max").set(d.writer_max as f64);
}
