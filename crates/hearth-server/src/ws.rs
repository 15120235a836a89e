//! One WebSocket connection of the chat-room protocol.
//!
//! Connect-time ordering is what makes `hello` and the live stream meet without a gap or a
//! duplicate: the socket subscribes to the fan-out *before* it reads the snapshot, so every
//! batch stored after the snapshot was read is in its receiver; batches that were already in
//! the snapshot are recognised by `seq` (each room's writer commits and publishes in `seq`
//! order) and skipped.
//!
//! Close codes: 1007 a text frame that is not UTF-8, 1008 not authenticated (log in again),
//! 1009 frame over the hard size limit, 1012 server restarting (reconnect), 1013 backend
//! unavailable (retry later), 4001 the client fell too far behind the live stream (reconnect;
//! `hello` resyncs it).

use crate::App;
use crate::api::{ApiError, ApiQuery, ClientIp};
use crate::auth::session_token;
use crate::handshake::Handshake;
use crate::outlet::{Outlet, SocketIo, Stop, put_text_frame, text_frame};
use crate::rate::Limited;
use crate::security::bad_origin;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use hearth_core::ImError;
use hearth_core::StoreError;
use hearth_core::accounts::token_hash;
use hearth_core::bus::user_topic;
use hearth_core::model::{ChatMessage, User};
use hearth_core::rooms::{RoomError, RoomSnapshot};
use hearth_proto::native::{Ack, ImServerFrame};
use hearth_proto::room::{self, ClientFrame, ErrorCode, Hello, RoomHistory, ServerFrame};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// A text frame that is not UTF-8 (RFC 6455 §8.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_NOT_UTF8: u16 = 1007;
pub const CLOSE_NOT_AUTHENTICATED: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_IDLE: u16 = 1001;
pub const CLOSE_RESTARTING: u16 = 1012;
pub const CLOSE_TRY_LATER: u16 = 1013;
pub const CLOSE_TOO_SLOW: u16 = 4001;

/// Bytes read from a socket at a time. tungstenite keeps this much per socket, zero-filled
/// (so resident) while it waits, idle or not: 4 KiB was two thirds of an idle socket's own
/// memory. Client frames are mostly far smaller; a large one takes several reads.
const READ_BUFFER: usize = 1024;
/// How often an open socket re-checks its session, so that expiry (and a logout on another
/// node) ends it within this long.
const SESSION_RECHECK: Duration = Duration::from_secs(30);
/// How long a closing socket waits for the client's side of the closing handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// The device kinds a socket may say it is (`/api/ws?platform=…`, default `web`).
const PLATFORMS: [&str; 4] = ["web", "android", "ios", "desktop"];

#[derive(serde::Deserialize)]
pub struct Connect {
    platform: Option<String>,
}

pub async fn upgrade(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(connect): ApiQuery<Connect>,
    handshake: Handshake,
) -> Result<Response, ApiError> {
    // A page of another site must not open a socket with this site's cookie.
    if !app.security.origin_allowed(&headers) {
        return Err(bad_origin());
    }
    let platform = connect.platform.unwrap_or_else(|| "web".into());
    let Some(platform) = PLATFORMS.iter().copied().find(|p| *p == platform) else {
        return Err(
            ImError::invalid("bad_platform", "platform is web, android, ios or desktop").into(),
        );
    };
    // Authenticate before upgrading, but answer over the socket: browsers only see a close
    // code, never the status of a refused upgrade.
    let token = session_token(&headers);
    let user = match &token {
        Some(token) => app.accounts.authenticate(token).await,
        None => Ok(None),
    };
    // Every idle socket holds this future (its largest state) and what it has boxed: each
    // step that awaits store, bus or socket calls only for a while is boxed, so that the
    // long-lived state is small (~1 KiB here, ~1 KiB for `serve`; 6 KiB before, measured
    // with size_of_val; docs/benchmarks.md, idle socket memory).
    Ok(handshake.accept(move |stream, early| async move {
        let (socket, outlet) = Box::pin(websocket(&app, stream, early)).await;
        match (user, token) {
            (Ok(Some(user)), Some(token)) => match app.rate.open_socket(user.id, ip) {
                Ok(_slot) => {
                    let _open = crate::telemetry::connection_opened(platform);
                    let starting = Connection::start(app, user, token, platform, socket, outlet);
                    let (conn, started) = Box::pin(starting).await;
                    Box::pin(conn.serve(started)).await
                }
                Err(limited) => {
                    limited.report();
                    let reason = format!("rate limited: retry in {} s", limited.retry_after_secs());
                    Box::pin(outlet.close(CLOSE_TRY_LATER, &reason)).await
                }
            },
            (Ok(_), _) => {
                Box::pin(outlet.close(CLOSE_NOT_AUTHENTICATED, "not authenticated")).await
            }
            (Err(error), _) => {
                tracing::warn!(%error, "authenticating a socket failed");
                Box::pin(outlet.close(CLOSE_TRY_LATER, "backend unavailable, retry")).await
            }
        }
    }))
}

/// The frame reader over the socket's read half; writes go through the returned outlet.
async fn websocket(
    app: &App,
    stream: TcpStream,
    early: Bytes,
) -> (WebSocketStream<SocketIo>, Arc<Outlet>) {
    // Frames are written whole with one call each: Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let outlet = Arc::new(Outlet::new(write, app.limits.socket_backlog_bytes));
    let hard_limit = app.limits.hard_max_frame_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(hard_limit))
        .max_frame_size(Some(hard_limit))
        // tungstenite reads into a 128 KiB buffer by default, allocated per socket: most of
        // an idle socket's memory. Frames larger than this are read in several chunks.
        .read_buffer_size(READ_BUFFER);
    let io = SocketIo {
        read,
        outlet: outlet.clone(),
    };
    let socket =
        WebSocketStream::from_partially_read(io, early.to_vec(), Role::Server, Some(config)).await;
    (socket, outlet)
}

struct Connection {
    app: Arc<App>,
    user: User,
    /// The session token, re-checked periodically so expiry and revocation end the socket.
    token: String,
    /// This socket's id in the registry and the fan-out.
    socket_id: u64,
    /// Reads client frames; this task is its only user.
    socket: WebSocketStream<SocketIo>,
    /// Writes: shared with the fan-out and the registry, which write without waking us.
    outlet: Arc<Outlet>,
    /// Raised by the registry when the user's profile changed on any node: `user` is reloaded
    /// before the next post, so messages carry the current name.
    profile_changed: Arc<AtomicBool>,
    /// The client's platform, as presence knows the socket.
    platform: &'static str,
    /// Subscribed to the user's bus topic (unsubscribed at the end).
    subscribed: bool,
    /// Sends queued on their writers, waiting for their commit, oldest first: a client may
    /// pipeline sends, and each commit then holds many of them.
    acks: FuturesOrdered<PendingAck>,
}

/// A send's `clientMsgId` and, once stored, its ack.
type PendingAck = BoxFuture<'static, (String, Result<Ack, ImError>)>;

/// Sends one socket may have waiting for their commit; beyond that the socket is not read
/// until the oldest is answered (backpressure, bounded memory).
const SENDS_IN_FLIGHT: usize = 32;

/// Why the connection loop ended; the close frame to send, if any.
enum End {
    Quietly,
    Close(u16, &'static str),
}

impl Connection {
    /// The socket's life once started: read frames until it ends, then finish.
    async fn serve(mut self: Box<Self>, started: Result<(), End>) {
        let end = match started {
            Ok(()) => self.run().await,
            Err(end) => end,
        };
        Box::pin(self.finish(end)).await;
    }

    /// Registers the socket, subscribes to the user's topic and writes the hello. Every
    /// subscription comes before any state is read: nothing stored from here on can be missed.
    /// The outlet holds what arrives until the hello is written, then skips room batches the
    /// hello already contains (by seq); native clients de-duplicate by seq themselves.
    async fn start(
        app: Arc<App>,
        user: User,
        token: String,
        platform: &'static str,
        socket: WebSocketStream<SocketIo>,
        outlet: Arc<Outlet>,
    ) -> (Box<Connection>, Result<(), End>) {
        let registry = &app.gateway.registry;
        let socket_id = registry.next_id();
        app.gateway.rooms.attach(socket_id, outlet.clone());
        let profile_changed = Arc::new(AtomicBool::new(false));
        registry.register(
            user.id,
            socket_id,
            token_hash(&token),
            outlet.clone(),
            profile_changed.clone(),
        );
        let subscribed = app.gateway.bus().subscribe(&user_topic(user.id)).await;
        app.presence.connected(user.id, platform).await;
        let conn = Box::new(Connection {
            socket_id,
            app: app.clone(),
            user,
            token,
            socket,
            outlet,
            profile_changed,
            platform,
            subscribed: subscribed.is_ok(),
            acks: FuturesOrdered::new(),
        });
        let snapshot = match subscribed {
            Ok(()) => app.rooms.snapshot().await,
            Err(error) => Err(error),
        };
        match snapshot {
            Ok(snapshot) => {
                let sent: Vec<(i64, i64)> = snapshot
                    .iter()
                    .map(|s| (s.room.conversation_id, s.last_seq()))
                    .collect();
                let hello = hello_frame(&conn.user, snapshot);
                conn.outlet
                    .open(text_frame(hello.to_json().as_bytes()), sent);
                (conn, Ok(()))
            }
            Err(error) => {
                tracing::warn!(%error, "reading the hello snapshot failed");
                let end = End::Close(CLOSE_TRY_LATER, "backend unavailable, retry");
                (conn, Err(end))
            }
        }
    }

    /// Unregisters the socket, closes it as `end` says and leaves the user's topic.
    async fn finish(mut self: Box<Self>, end: End) {
        let app = self.app.clone();
        app.gateway.rooms.detach(self.socket_id);
        app.gateway
            .registry
            .unregister(self.user.id, self.socket_id);
        if let End::Close(code, reason) = end {
            self.outlet.close(code, reason).await;
            // Let the client's answer (its close frame, or EOF) arrive before the socket is
            // dropped: closing with unread input sends a reset, and a reset can destroy the
            // close frame still waiting in the client's buffer.
            let _ = tokio::time::timeout(CLOSE_LINGER, async {
                while let Some(Ok(message)) = self.socket.next().await {
                    if message.is_close() {
                        break;
                    }
                }
            })
            .await;
        }
        if self.subscribed
            && let Err(error) = app
                .gateway
                .bus()
                .unsubscribe(&user_topic(self.user.id))
                .await
        {
            tracing::debug!(%error, "unsubscribing failed");
        }
        app.presence.disconnected(self.user.id, self.platform).await;
    }

    /// Reloads the user if their profile changed since (a rename in another tab, on another
    /// node): what this socket posts next carries the current name. A store failure keeps the
    /// old name and tries again at the next post.
    async fn refresh_user(&mut self) {
        if !self.profile_changed.swap(false, Ordering::Acquire) {
            return;
        }
        match self.app.accounts.user(self.user.id).await {
            Ok(Some(user)) => self.user = user,
            Ok(None) => {}
            Err(error) => {
                self.profile_changed.store(true, Ordering::Release);
                tracing::debug!(%error, "reloading a renamed user failed");
            }
        }
    }

    async fn run(&mut self) -> End {
        let stopping = stopping(self.app.shutdown.clone());
        tokio::pin!(stopping);
        let mut recheck = tokio::time::interval(SESSION_RECHECK);
        recheck.tick().await;
        let limits = &self.app.limits;
        let ping_every = Duration::from_secs(limits.ping_interval_secs.max(1));
        let idle_limit = Duration::from_secs(limits.idle_timeout_secs.max(1));
        let mut heartbeat = tokio::time::interval(ping_every);
        heartbeat.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        let outlet = self.outlet.clone();
        loop {
            tokio::select! {
                // Acks, in the order the sends came: all that are ready in one write (a
                // commit answers many sends at once).
                Some(first) = self.acks.next(), if !self.acks.is_empty() => {
                    let mut wire = BytesMut::new();
                    let mut frames = 0;
                    let mut answered = Some(first);
                    while let Some((client_msg_id, sent)) = answered {
                        frames += 1;
                        let frame = match sent {
                            Ok(ack) => ImServerFrame::Ack(ack).to_json(),
                            Err(error) => im_error_frame(error, Some(client_msg_id)).to_json(),
                        };
                        put_text_frame(&mut wire, frame.as_bytes());
                        answered = self.acks.next().now_or_never().flatten();
                    }
                    if self.write_now(wire.freeze(), frames).is_err() {
                        return End::Quietly;
                    }
                }
                // Cancel-safe: a partly read frame stays in the reader's buffer.
                incoming = self.socket.next(), if self.acks.len() < SENDS_IN_FLIGHT => match incoming {
                    None | Some(Ok(Message::Close(_))) => return End::Quietly,
                    Some(Err(error)) => return read_failure(&error),
                    Some(Ok(message)) if { last_heard = tokio::time::Instant::now(); false } => {
                        drop(message);
                    }
                    Some(Ok(Message::Text(text))) => {
                        if Box::pin(self.on_text(text.as_str())).await.is_err() {
                            return End::Quietly;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        crate::telemetry::frame_in_kind("binary");
                        let frame = ServerFrame::error(
                            ErrorCode::BinaryNotSupported,
                            "binary frames are not part of the protocol; send JSON text frames",
                        );
                        if self.send_now(frame.to_json()).await.is_err() {
                            return End::Quietly;
                        }
                    }
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                },
                // Queued bytes wait for the socket, or someone stopped the outlet.
                () = outlet.woken() => {
                    if outlet.drain().await.is_err() {
                        return End::Quietly;
                    }
                    match outlet.stopped() {
                        Some(Stop::TooSlow) => return too_slow(),
                        Some(Stop::Revoked) => return End::Close(CLOSE_NOT_AUTHENTICATED, "logged out"),
                        Some(Stop::Broken) => return End::Quietly,
                        None => {}
                    }
                }
                _ = recheck.tick() => {
                    match self.app.accounts.authenticate(&self.token).await {
                        // Fresh from the store: a change whose notice was lost shows here.
                        Ok(Some(user)) => self.user = user,
                        Ok(None) => return End::Close(CLOSE_NOT_AUTHENTICATED, "session ended"),
                        // A backend blip is not a logout: check again next time.
                        Err(error) => tracing::debug!(%error, "session re-check failed"),
                    }
                }
                // A peer that answers nothing (not even pongs) is gone, or a half-open
                // connection: close it rather than keep its memory and presence forever.
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle_limit {
                        return End::Close(CLOSE_IDLE, "no answer to pings; reconnect");
                    }
                    outlet.send(Bytes::from_static(&[0x89, 0x00]));
                }
                () = &mut stopping => return restarting(),
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), ()> {
        let reply = if text.len() > self.app.limits.max_frame_bytes {
            crate::telemetry::frame_in_kind("too_large");
            Some(ServerFrame::error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frames are limited to {} bytes",
                    self.app.limits.max_frame_bytes
                ),
            ))
        } else {
            let decoded = ClientFrame::decode(text);
            crate::telemetry::frame_in(&decoded);
            match decoded {
                Err(e) => Some(ServerFrame::error_code(
                    e.code.as_str(),
                    e.message,
                    e.client_msg_id,
                )),
                Ok(ClientFrame::ClientMessages(frame)) => {
                    let count = u32::try_from(frame.messages.len()).unwrap_or(u32::MAX);
                    // A frame over the size limit is refused below for what it is, not counted.
                    let oversized = frame.messages.len() > self.app.limits.max_messages_per_frame;
                    if !oversized && let Err(limited) = self.app.rate.messages(self.user.id, count)
                    {
                        return self.send_now(rate_limited_frame(limited, None)).await;
                    }
                    let contents = frame.messages.into_iter().map(|m| m.content).collect();
                    self.refresh_user().await;
                    // Success needs no reply: the broadcast echoes the messages to this socket.
                    match self
                        .app
                        .rooms
                        .post(&frame.room_id, &self.user.as_ref(), contents)
                        .await
                    {
                        Ok(_) => None,
                        Err(error) => Some(room_error_frame(error)),
                    }
                }
                Ok(ClientFrame::Send(send)) => {
                    let client_msg_id = send.client_msg_id.clone();
                    if let Err(limited) = self.app.rate.messages(self.user.id, 1) {
                        return self
                            .send_now(rate_limited_frame(limited, Some(client_msg_id)))
                            .await;
                    }
                    self.refresh_user().await;
                    let submitted = self
                        .app
                        .messaging
                        .submit(
                            &self.user.as_ref(),
                            send.conversation_id,
                            send.client_msg_id,
                            send.kind,
                            send.content,
                            send.reply_to,
                            send.file_id,
                        )
                        .await;
                    return match submitted {
                        // Answered by the loop once stored; the next frame is read meanwhile.
                        Ok(pending) => {
                            self.acks.push_back(Box::pin(async move {
                                let client_msg_id = pending.client_msg_id().to_owned();
                                (client_msg_id, pending.ack().await)
                            }));
                            Ok(())
                        }
                        Err(error) => {
                            self.send_now(im_error_frame(error, Some(client_msg_id)).to_json())
                                .await
                        }
                    };
                }
                Ok(ClientFrame::Read(read)) => self
                    .app
                    .messaging
                    .read(self.user.id, read.conversation_id, read.seq)
                    .await
                    .err()
                    .map(|e| im_error_frame(e, None)),
                Ok(ClientFrame::Delivered(delivered)) => self
                    .app
                    .messaging
                    .delivered(self.user.id, delivered.conversation_id, delivered.seq)
                    .await
                    .err()
                    .map(|e| im_error_frame(e, None)),
                Ok(ClientFrame::Typing(typing)) => self
                    .app
                    .messaging
                    .typing(self.user.id, typing.conversation_id)
                    .await
                    .err()
                    .map(|e| im_error_frame(e, None)),
                Ok(ClientFrame::Sync(request)) => {
                    self.app
                        .gateway
                        .registry
                        .mark_native(self.user.id, self.socket_id);
                    return match self
                        .app
                        .messaging
                        .sync(self.user.id, request.inbox_after)
                        .await
                    {
                        Ok(state) => self.send_native(&ImServerFrame::SyncState(state)).await,
                        Err(error) => self.send_now(im_error_frame(error, None).to_json()).await,
                    };
                }
                Ok(ClientFrame::RequestRoomHistory(request)) => Some(
                    match self
                        .app
                        .rooms
                        .history(&request.room_id, request.first_message_id)
                        .await
                    {
                        Ok(page) => ServerFrame::RoomHistory(RoomHistory {
                            room_id: request.room_id,
                            messages: page.messages.iter().map(ChatMessage::to_wire).collect(),
                            has_more_messages: page.has_more,
                        }),
                        Err(error) => room_error_frame(error),
                    },
                ),
            }
        };
        match reply {
            Some(frame) => self.send_now(frame.to_json()).await,
            None => Ok(()),
        }
    }

    async fn send_native(&mut self, frame: &ImServerFrame) -> Result<(), ()> {
        self.send_now(frame.to_json()).await
    }

    /// Writes a reply in order with everything else this socket is sent. Never waits: if the
    /// socket is full the bytes queue (bounded) and the loop drains them.
    async fn send_now(&mut self, text: String) -> Result<(), ()> {
        self.write_now(text_frame(text.as_bytes()), 1)
    }

    /// Writes frames already framed for the wire (see [`Connection::send_now`]).
    fn write_now(&mut self, wire: Bytes, frames: u64) -> Result<(), ()> {
        self.outlet.send_frames(wire, frames);
        match self.outlet.stopped() {
            Some(Stop::Broken) => Err(()),
            _ => Ok(()),
        }
    }
}

/// The `error` frame of a refused, rate-limited frame (nothing was stored).
fn rate_limited_frame(limited: Limited, client_msg_id: Option<String>) -> String {
    limited.report();
    let wait = limited
        .retry_after
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX);
    ServerFrame::rate_limited(limited.message(), wait, client_msg_id).to_json()
}

fn too_slow() -> End {
    End::Close(CLOSE_TOO_SLOW, "too far behind; reconnect to resync")
}

fn restarting() -> End {
    End::Close(CLOSE_RESTARTING, "server restarting; reconnect")
}

/// Resolves once the node starts shutting down.
async fn stopping(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        // The sender is gone without a shutdown: never resolve.
        std::future::pending::<()>().await;
    }
}

/// A read error: an oversized frame gets 1009, a text frame that is not UTF-8 1007, another
/// breach of the framing rules 1002; anything else means the peer is gone.
fn read_failure(error: &tungstenite::Error) -> End {
    match error {
        tungstenite::Error::Capacity(_) => {
            End::Close(CLOSE_TOO_BIG, "frame exceeds the hard size limit")
        }
        tungstenite::Error::Utf8(_) => End::Close(CLOSE_NOT_UTF8, "text frame is not UTF-8"),
        // The peer broke the framing rules but may still be listening: say so (RFC 6455
        // §7.4.1) rather than vanish. A reset peer is gone; there is no one to tell.
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Quietly,
        tungstenite::Error::Protocol(_) => {
            End::Close(CLOSE_PROTOCOL_ERROR, "WebSocket protocol error")
        }
        _ => End::Quietly,
    }
}

/// An `error` frame for a refused native request; store failures are not detailed.
fn im_error_frame(error: ImError, client_msg_id: Option<String>) -> ServerFrame {
    let message = match &error {
        ImError::Refused { message, .. } => message.clone(),
        ImError::Store(StoreError::Unavailable(_)) => {
            "storage is unavailable; nothing was stored, retry shortly".to_owned()
        }
        ImError::Store(e) => {
            tracing::error!(error = %e, "store error");
            "internal error".to_owned()
        }
    };
    ServerFrame::error_code(error.code(), message, client_msg_id)
}

fn room_error_frame(error: RoomError) -> ServerFrame {
    let code = match &error {
        RoomError::UnknownRoom(_) => ErrorCode::UnknownRoom,
        RoomError::NoMessages => ErrorCode::NoMessages,
        RoomError::TooManyMessages(_) => ErrorCode::TooManyMessages,
        RoomError::EmptyContent(_) => ErrorCode::EmptyContent,
        RoomError::ControlCharacters(_) => ErrorCode::BadContent,
        RoomError::ContentTooLong { .. } => ErrorCode::ContentTooLong,
        RoomError::Store(StoreError::Unavailable(_)) => ErrorCode::Unavailable,
        RoomError::Store(_) => ErrorCode::Internal,
    };
    let message = match &error {
        RoomError::Store(StoreError::Unavailable(_)) => {
            "storage is unavailable; nothing was stored, retry shortly".to_owned()
        }
        RoomError::Store(e) => {
            tracing::error!(error = %e, "room store error");
            "internal error; nothing was stored".to_owned()
        }
        other => other.to_string(),
    };
    ServerFrame::error(code, message)
}

fn hello_frame(user: &User, snapshot: Vec<RoomSnapshot>) -> ServerFrame {
    ServerFrame::Hello(Hello {
        me: user.as_ref(),
        rooms: snapshot
            .into_iter()
            .map(|s| room::RoomSnapshot {
                id: s.room.slug,
                name: s.room.name,
                messages: s.page.messages.iter().map(ChatMessage::to_wire).collect(),
                has_more_messages: s.page.has_more,
            })
            .collect(),
    })
}
