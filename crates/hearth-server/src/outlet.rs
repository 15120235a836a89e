//! A socket's write side, shared by its own task and by everyone who delivers to it.
//!
//! Deliveries do not wake the socket's task. Whoever has a frame for the socket (the room
//! fan-out, the registry for native frames, the task's own replies) writes the pre-encoded
//! WebSocket bytes straight into the kernel with a non-blocking `try_write`: one system call,
//! no task switch, no per-socket encoding. Only when the kernel's send buffer is full are the
//! bytes queued here and the task woken to wait until the socket drains. The queue is bounded
//! in bytes: a client that does not keep up is stopped ([`Stop::TooSlow`], close 4001) instead
//! of growing the server's memory. One lock orders all writers, so frames never interleave.

use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

/// A socket that accepts no byte for this long is dead or hopelessly slow.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// How long a closing socket may take to accept its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Why an outlet stopped taking frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// More than the backlog waited for the client: it does not keep up.
    TooSlow,
    /// The session was revoked (logout).
    Revoked,
    /// A write failed: the peer is gone.
    Broken,
}

/// One stored room batch, framed for the wire.
#[derive(Clone)]
pub struct RoomFrame {
    pub conversation_id: i64,
    /// The highest `seq` in the batch; a socket whose `hello` already went past it skips it.
    pub last_seq: i64,
    pub wire: Bytes,
    /// When the batch reached this node's fan-out (for `hearth_fanout_seconds`).
    pub since: Instant,
}

/// Room frames written together: their wire bytes concatenated once for every socket.
pub struct RoomFrames {
    frames: Vec<RoomFrame>,
    joined: Bytes,
}

impl RoomFrames {
    pub fn new(frames: Vec<RoomFrame>) -> RoomFrames {
        let joined = match frames.as_slice() {
            [one] => one.wire.clone(),
            many => {
                let mut joined = BytesMut::with_capacity(many.iter().map(|f| f.wire.len()).sum());
                for frame in many {
                    joined.put_slice(&frame.wire);
                }
                joined.freeze()
            }
        };
        RoomFrames { frames, joined }
    }
}

enum Gated {
    /// Framed messages joined, and how many.
    Frame(Bytes, u64),
    Room(RoomFrame),
}

struct State {
    /// Bytes the kernel has not taken yet, in order.
    queued: VecDeque<Bytes>,
    queued_bytes: usize,
    /// Until the `hello` is written everything waits here: the hello must come first.
    gate: Option<Vec<Gated>>,
    /// Per room, the highest `seq` written: batches the `hello` already held are skipped.
    rooms: Vec<(i64, i64)>,
    stop: Option<Stop>,
    /// The close frame is queued: nothing may follow it.
    closing: bool,
    /// The kernel took part of the first queued buffer: its rest must go out before
    /// anything else, or the client would see a torn frame.
    front_started: bool,
}

pub struct Outlet {
    stream: OwnedWriteHalf,
    state: Mutex<State>,
    /// Rung when bytes wait for the socket to become writable, or when the outlet stopped.
    wake: Notify,
    backlog_bytes: usize,
}

impl Outlet {
    /// A gated outlet: frames wait until [`Outlet::open`] writes the `hello`.
    pub fn new(stream: OwnedWriteHalf, backlog_bytes: usize) -> Outlet {
        Outlet {
            stream,
            state: Mutex::new(State {
                queued: VecDeque::new(),
                queued_bytes: 0,
                gate: Some(Vec::new()),
                rooms: Vec::new(),
                stop: None,
                closing: false,
                front_started: false,
            }),
            wake: Notify::new(),
            backlog_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `hello` first, then whatever arrived while it was being read (minus the room
    /// batches it already contains). `rooms`: each room's last `seq` in the hello.
    pub fn open(&self, hello: Bytes, rooms: Vec<(i64, i64)>) {
        let mut state = self.lock();
        let gated = state.gate.take().unwrap_or_default();
        state.rooms = rooms;
        self.write(&mut state, hello);
        crate::telemetry::frames_out(1);
        let mut rooms_written = 0;
        for item in gated {
            match item {
                Gated::Frame(wire, frames) => {
                    self.write(&mut state, wire);
                    crate::telemetry::frames_out(frames);
                }
                Gated::Room(frame) => {
                    if advance(&mut state.rooms, &frame) {
                        self.write(&mut state, frame.wire);
                        rooms_written += 1;
                    }
                }
            }
        }
        crate::telemetry::room_frames_out(rooms_written);
    }

    /// Writes one framed message (or queues it behind earlier ones).
    pub fn send(&self, wire: Bytes) {
        self.send_frames(wire, 1);
    }

    /// Writes `frames` framed messages joined in `wire`, in one system call.
    pub fn send_frames(&self, wire: Bytes, frames: u64) {
        let mut state = self.lock();
        if let Some(gate) = &mut state.gate {
            gate.push(Gated::Frame(wire, frames));
            self.check_gate(&mut state);
        } else {
            self.write(&mut state, wire);
            crate::telemetry::frames_out(frames);
        }
    }

    /// Writes the room batches this socket has not had yet: all of them in one system call in
    /// the common case. Returns how many frames it wrote (for the fan-out's counter).
    pub fn send_rooms(&self, batch: &RoomFrames) -> u64 {
        let mut state = self.lock();
        if state.stop.is_some() || state.closing {
            return 0;
        }
        if let Some(gate) = &mut state.gate {
            gate.extend(batch.frames.iter().cloned().map(Gated::Room));
            self.check_gate(&mut state);
            return 0;
        }
        let all_new = batch
            .frames
            .iter()
            .all(|frame| frame.last_seq > sent_up_to(&state.rooms, frame.conversation_id));
        if all_new {
            for frame in &batch.frames {
                advance(&mut state.rooms, frame);
            }
            self.write(&mut state, batch.joined.clone());
            batch.frames.len() as u64
        } else {
            let mut written = 0;
            for frame in &batch.frames {
                if advance(&mut state.rooms, frame) {
                    self.write(&mut state, frame.wire.clone());
                    written += 1;
                }
            }
            written
        }
    }

    /// Bytes waiting for the socket (sampled by `/metrics`).
    pub fn queued_bytes(&self) -> usize {
        self.lock().queued_bytes
    }

    /// Stops taking frames; the socket's task closes the connection.
    pub fn stop(&self, why: Stop) {
        let mut state = self.lock();
        self.stop_locked(&mut state, why);
    }

    pub fn stopped(&self) -> Option<Stop> {
        self.lock().stop
    }

    /// Resolves when queued bytes wait for the socket, or the outlet stopped.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Writes everything queued, waiting for the socket to take it. Returns early if the
    /// outlet stops; fails if the socket takes nothing for [`STALL_LIMIT`].
    pub async fn drain(&self) -> io::Result<()> {
        self.drain_within(STALL_LIMIT).await
    }

    /// [`Outlet::drain`], failing if the socket takes nothing for `stall`.
    async fn drain_within(&self, stall: Duration) -> io::Result<()> {
        loop {
            {
                let mut state = self.lock();
                if state.stop.is_some() {
                    return Ok(());
                }
                while !state.queued.is_empty() {
                    let written = {
                        let slices: Vec<IoSlice<'_>> = state
                            .queued
                            .iter()
                            .take(64)
                            .map(|b| IoSlice::new(b))
                            .collect();
                        self.stream.try_write_vectored(&slices)
                    };
                    match written {
                        Ok(n) => consume(&mut state, n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            self.stop_locked(&mut state, Stop::Broken);
                            return Err(e);
                        }
                    }
                }
                if state.queued.is_empty() {
                    return Ok(());
                }
            }
            // Wait for room in the socket, but wake up if the outlet is stopped meanwhile.
            tokio::select! {
                ready = tokio::time::timeout(stall, self.stream.writable()) => match ready {
                    Ok(ready) => ready?,
                    Err(_) => {
                        crate::telemetry::socket_dropped("stalled");
                        self.stop(Stop::Broken);
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                },
                () = self.wake.notified() => {}
            }
        }
    }

    /// The last frame: drops what a too-slow client would never catch up with, keeps what
    /// anyone else is owed, queues the close frame and writes as much as the socket takes.
    pub async fn close(&self, code: u16, reason: &str) {
        {
            let mut state = self.lock();
            if state.stop == Some(Stop::TooSlow) {
                let keep = if state.front_started { 1 } else { 0 };
                state.queued.truncate(keep);
                state.queued_bytes = state.queued.iter().map(Bytes::len).sum();
            }
            state.gate = None;
            state.stop = None;
            state.closing = true;
            let frame = close_frame(code, reason);
            state.queued_bytes += frame.len();
            state.queued.push_back(frame);
        }
        // A client too slow for the live stream may still take a while to read what its
        // kernel buffers hold before it reaches the close frame.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.drain_within(CLOSE_WAIT)).await;
        self.stop(Stop::Broken);
    }

    fn write(&self, state: &mut State, wire: Bytes) {
        if state.stop.is_some() || state.closing || wire.is_empty() {
            return;
        }
        if state.queued.is_empty() {
            match self.stream.try_write(&wire) {
                Ok(n) if n == wire.len() => {}
                Ok(n) => {
                    state.front_started = true;
                    self.enqueue(state, wire.slice(n..));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.enqueue(state, wire),
                Err(_) => self.stop_locked(state, Stop::Broken),
            }
        } else {
            self.enqueue(state, wire);
        }
    }

    fn enqueue(&self, state: &mut State, wire: Bytes) {
        let was_empty = state.queued.is_empty();
        state.queued_bytes += wire.len();
        state.queued.push_back(wire);
        if state.queued_bytes > self.backlog_bytes {
            self.stop_locked(state, Stop::TooSlow);
        } else if was_empty {
            self.wake.notify_one();
        }
    }

    fn check_gate(&self, state: &mut State) {
        let gated: usize = state
            .gate
            .iter()
            .flatten()
            .map(|item| match item {
                Gated::Frame(wire, _) => wire.len(),
                Gated::Room(frame) => frame.wire.len(),
            })
            .sum();
        if gated > self.backlog_bytes {
            self.stop_locked(state, Stop::TooSlow);
        }
    }

    fn stop_locked(&self, state: &mut State, why: Stop) {
        if state.stop.is_none() {
            if why == Stop::TooSlow {
                crate::telemetry::socket_dropped("too_slow");
            }
            state.stop = Some(why);
            state.gate = None;
            self.wake.notify_one();
        }
    }
}

fn sent_up_to(rooms: &[(i64, i64)], conversation: i64) -> i64 {
    rooms
        .iter()
        .find(|(id, _)| *id == conversation)
        .map_or(0, |(_, seq)| *seq)
}

/// Records `frame` as written; false if the socket already had it.
fn advance(rooms: &mut Vec<(i64, i64)>, frame: &RoomFrame) -> bool {
    match rooms
        .iter_mut()
        .find(|(id, _)| *id == frame.conversation_id)
    {
        Some((_, seq)) if *seq >= frame.last_seq => false,
        Some((_, seq)) => {
            *seq = frame.last_seq;
            true
        }
        None => {
            rooms.push((frame.conversation_id, frame.last_seq));
            true
        }
    }
}

fn consume(state: &mut State, mut written: usize) {
    state.queued_bytes = state.queued_bytes.saturating_sub(written);
    while written > 0 {
        let Some(front) = state.queued.front_mut() else {
            return;
        };
        if written >= front.len() {
            written -= front.len();
            state.queued.pop_front();
            state.front_started = false;
        } else {
            *front = front.slice(written..);
            state.front_started = true;
            written = 0;
        }
    }
}

/// A server-to-client text frame: final, unmasked, so every socket gets the same bytes.
pub fn text_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    put_text_frame(&mut out, payload);
    out.freeze()
}

/// Appends a text frame to `out`: frames written together go out in one system call.
pub fn put_text_frame(out: &mut BytesMut, payload: &[u8]) {
    put_header(out, 0x81, payload.len());
    out.put_slice(payload);
}

/// A close frame with `code` and (at most 123 bytes of) `reason`.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut out = BytesMut::with_capacity(4 + reason.len());
    put_header(&mut out, 0x88, 2 + reason.len());
    out.put_u16(code);
    out.put_slice(reason);
    out.freeze()
}

fn put_header(out: &mut BytesMut, first: u8, len: usize) {
    out.put_u8(first);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// The byte stream the WebSocket reader (tungstenite) runs on: reads from the socket, and
/// writes its own frames (pongs, close replies) through the outlet, in order with the rest.
pub struct SocketIo {
    pub read: OwnedReadHalf,
    pub outlet: Arc<Outlet>,
}

impl AsyncRead for SocketIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for SocketIo {
    /// Takes the whole buffer every time, so a frame tungstenite writes is never split by
    /// another writer's frame.
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.outlet.send(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        assert_eq!(&text_frame(b"hi")[..], b"\x81\x02hi");
        let medium = text_frame(&[b'a'; 300]);
        assert_eq!(&medium[..4], &[0x81, 126, 1, 44]);
        let large = text_frame(&vec![b'a'; 70_000]);
        assert_eq!(&large[..2], &[0x81, 127]);
        assert_eq!(large.len(), 70_000 + 10);
    }

    #[test]
    fn close_reasons_are_cut_on_a_character_boundary() {
        let frame = close_frame(4001, &"é".repeat(100));
        assert_eq!(frame[0], 0x88);
        let len = usize::from(frame[1]);
        assert!(len <= 125);
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
        assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 4001);
    }
}
