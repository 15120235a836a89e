//! One WebSocket connection of the chat-room protocol.
//!
//! Connect-time ordering is what makes `hello` and the live stream meet without a gap or a
//! duplicate: the socket subscribes to the fan-out *before* it reads the snapshot, so every
//! batch stored after the snapshot was read is in its receiver; batches that were already in
//! the snapshot are recognised by `seq` (each room's writer commits and publishes in `seq`
//! order) and skipped.
//!
//! Close codes: 1008 not authenticated (log in again), 1009 frame over the hard size limit,
//! 1012 server restarting (reconnect), 1013 backend unavailable (retry later), 4001 the client
//! fell too far behind the live stream (reconnect; `hello` resyncs it).

use crate::App;
use crate::api::{ApiError, ApiQuery};
use crate::auth::session_token;
use crate::fanout::Delivery;
use crate::registry::{Mailbox, Outbound};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::SinkExt;
use hearth_core::ImError;
use hearth_core::StoreError;
use hearth_core::accounts::token_hash;
use hearth_core::bus::user_topic;
use hearth_core::model::{ChatMessage, User};
use hearth_core::rooms::{RoomError, RoomSnapshot};
use hearth_proto::native::ImServerFrame;
use hearth_proto::room::{self, ClientFrame, ErrorCode, Hello, RoomHistory, ServerFrame};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

pub const CLOSE_NOT_AUTHENTICATED: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_RESTARTING: u16 = 1012;
pub const CLOSE_TRY_LATER: u16 = 1013;
pub const CLOSE_TOO_SLOW: u16 = 4001;

/// Bytes read from a socket at a time (larger frames take several reads; 4 KiB keeps an idle
/// socket near 13 KiB of server memory).
const READ_BUFFER: usize = 4 * 1024;
/// Deliveries written before one flush, so a burst costs one syscall, not one per message.
const MAX_BATCH: usize = 256;
/// A client that does not take a write within this long is dead or hopelessly slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an open socket re-checks its session, so that expiry (and a logout on another
/// node) ends it within this long.
const SESSION_RECHECK: Duration = Duration::from_secs(30);

/// The device kinds a socket may say it is (`/api/ws?platform=…`, default `web`).
const PLATFORMS: [&str; 4] = ["web", "android", "ios", "desktop"];

#[derive(serde::Deserialize)]
pub struct Connect {
    platform: Option<String>,
}

pub async fn upgrade(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    ApiQuery(connect): ApiQuery<Connect>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
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
    let hard_limit = app.limits.hard_max_frame_bytes;
    Ok(upgrade
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // tungstenite reads into a 128 KiB buffer by default, allocated per socket: most of
        // an idle socket's memory. Frames larger than this are read in several chunks.
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            match (user, token) {
                (Ok(Some(user)), Some(token)) => {
                    Connection::open(app, user, token, platform, socket).await
                }
                (Ok(_), _) => close_now(socket, CLOSE_NOT_AUTHENTICATED, "not authenticated").await,
                (Err(error), _) => {
                    tracing::warn!(%error, "authenticating a socket failed");
                    close_now(socket, CLOSE_TRY_LATER, "backend unavailable, retry").await
                }
            }
        }))
}

async fn close_now(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

struct Connection {
    app: Arc<App>,
    user: User,
    /// The session token, re-checked periodically so expiry and revocation end the socket.
    token: String,
    /// This socket's id in the registry.
    socket_id: u64,
    /// Not split into halves: one task reads and writes, so no lock between the two.
    socket: WebSocket,
    /// Per room: the highest `seq` this socket has been sent.
    sent_up_to: HashMap<i64, i64>,
}

/// Why the connection loop ended; the close frame to send, if any.
enum End {
    Quietly,
    Close(u16, &'static str),
}

impl Connection {
    async fn open(
        app: Arc<App>,
        user: User,
        token: String,
        platform: &'static str,
        socket: WebSocket,
    ) {
        // Every subscription comes before any state is read: nothing stored from here on can
        // be missed (rooms de-duplicate by seq below; native clients by seq themselves).
        let mut live = app.gateway.rooms.subscribe();
        let mut mailbox = app.gateway.registry.register(user.id, token_hash(&token));
        let topic = user_topic(user.id);
        let subscribed = app.gateway.bus().subscribe(&topic).await;
        app.presence.connected(user.id, platform).await;
        let mut conn = Connection {
            socket_id: mailbox.id,
            sent_up_to: HashMap::new(),
            app: app.clone(),
            user,
            token,
            socket,
        };
        let snapshot = match &subscribed {
            Ok(()) => app.rooms.snapshot().await,
            Err(error) => Err(error.clone()),
        };
        let end = match snapshot {
            Ok(snapshot) => {
                conn.sent_up_to = snapshot
                    .iter()
                    .map(|s| (s.room.conversation_id, s.last_seq()))
                    .collect();
                let hello = hello_frame(&conn.user, snapshot);
                match conn.send_now(hello.to_json().into()).await {
                    Ok(()) => conn.run(&mut live, &mut mailbox).await,
                    Err(()) => End::Quietly,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading the hello snapshot failed");
                End::Close(CLOSE_TRY_LATER, "backend unavailable, retry")
            }
        };
        if let End::Close(code, reason) = end {
            let _ = close(&mut conn.socket, code, reason).await;
        }
        app.gateway.registry.unregister(conn.user.id, mailbox.id);
        if subscribed.is_ok()
            && let Err(error) = app.gateway.bus().unsubscribe(&topic).await
        {
            tracing::debug!(%error, "unsubscribing failed");
        }
        app.presence.disconnected(conn.user.id, platform).await;
    }

    async fn run(
        &mut self,
        live: &mut tokio::sync::broadcast::Receiver<Delivery>,
        mailbox: &mut Mailbox,
    ) -> End {
        let stopping = stopping(self.app.shutdown.clone());
        tokio::pin!(stopping);
        let mut recheck = tokio::time::interval(SESSION_RECHECK);
        recheck.tick().await;
        loop {
            tokio::select! {
                // Cancel-safe: a partly read frame stays in the socket's buffer.
                incoming = self.socket.recv() => match incoming {
                    None | Some(Ok(Message::Close(_))) => return End::Quietly,
                    Some(Err(error)) => return read_failure(&error),
                    Some(Ok(Message::Text(text))) => {
                        if self.on_text(text.as_str()).await.is_err() {
                            return End::Quietly;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let frame = ServerFrame::error(
                            ErrorCode::BinaryNotSupported,
                            "binary frames are not part of the protocol; send JSON text frames",
                        );
                        if self.send_now(frame.to_json().into()).await.is_err() {
                            return End::Quietly;
                        }
                    }
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                },
                delivery = live.recv() => match delivery {
                    Ok(first) => {
                        if let Err(end) = self.deliver_batch(first, live).await {
                            return end;
                        }
                    }
                    Err(RecvError::Lagged(_)) => return too_slow(),
                    Err(RecvError::Closed) => return restarting(),
                },
                outbound = mailbox.frames.recv() => match outbound {
                    Some(first) => {
                        if let Err(end) = self.deliver_mail(first, &mut mailbox.frames).await {
                            return end;
                        }
                    }
                    None => return restarting(),
                },
                () = mailbox.overflow.notified() => return too_slow(),
                _ = recheck.tick() => {
                    match self.app.accounts.authenticate(&self.token).await {
                        Ok(Some(_)) => {}
                        Ok(None) => return End::Close(CLOSE_NOT_AUTHENTICATED, "session ended"),
                        // A backend blip is not a logout: check again next time.
                        Err(error) => tracing::debug!(%error, "session re-check failed"),
                    }
                }
                () = &mut stopping => return restarting(),
            }
        }
    }

    /// Writes `first` and whatever else is already in the mailbox, then flushes once.
    async fn deliver_mail(
        &mut self,
        first: Outbound,
        frames: &mut tokio::sync::mpsc::Receiver<Outbound>,
    ) -> Result<(), End> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(outbound) = next.take() {
            match outbound {
                Outbound::Frame(frame) => {
                    self.feed(Message::Text(frame))
                        .await
                        .map_err(|()| End::Quietly)?;
                    written += 1;
                }
                Outbound::Close(code, reason) => return Err(End::Close(code, reason)),
            }
            if written < MAX_BATCH {
                next = frames.try_recv().ok();
            }
        }
        self.flush().await.map_err(|()| End::Quietly)
    }

    /// Writes `first` and whatever else is already queued, then flushes once.
    async fn deliver_batch(
        &mut self,
        first: Delivery,
        live: &mut tokio::sync::broadcast::Receiver<Delivery>,
    ) -> Result<(), End> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(delivery) = next.take() {
            if self.is_new(&delivery) {
                self.feed(Message::Text(delivery.frame))
                    .await
                    .map_err(|()| End::Quietly)?;
                written += 1;
            }
            if written < MAX_BATCH {
                next = match live.try_recv() {
                    Ok(d) => Some(d),
                    Err(TryRecvError::Empty) => None,
                    // `try_recv` reports a lag once and then skips ahead: close now, or the
                    // client would silently miss the overwritten messages.
                    Err(TryRecvError::Lagged(_)) => return Err(too_slow()),
                    Err(TryRecvError::Closed) => return Err(restarting()),
                };
            }
        }
        self.flush().await.map_err(|()| End::Quietly)
    }

    /// Skips batches the `hello` snapshot already contained.
    fn is_new(&mut self, delivery: &Delivery) -> bool {
        let sent = self.sent_up_to.entry(delivery.conversation_id).or_insert(0);
        if delivery.last_seq <= *sent {
            return false;
        }
        *sent = delivery.last_seq;
        true
    }

    async fn on_text(&mut self, text: &str) -> Result<(), ()> {
        let reply = if text.len() > self.app.limits.max_frame_bytes {
            Some(ServerFrame::error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frames are limited to {} bytes",
                    self.app.limits.max_frame_bytes
                ),
            ))
        } else {
            match ClientFrame::decode(text) {
                Err(e) => Some(ServerFrame::error(e.code, e.message)),
                Ok(ClientFrame::ClientMessages(frame)) => {
                    let contents = frame.messages.into_iter().map(|m| m.content).collect();
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
                    let sent = self
                        .app
                        .messaging
                        .send(
                            &self.user.as_ref(),
                            send.conversation_id,
                            send.client_msg_id,
                            send.kind,
                            send.content,
                            send.reply_to,
                        )
                        .await;
                    return match sent {
                        Ok(ack) => self.send_native(&ImServerFrame::Ack(ack)).await,
                        Err(error) => {
                            self.send_now(
                                im_error_frame(error, Some(client_msg_id)).to_json().into(),
                            )
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
                        Err(error) => {
                            self.send_now(im_error_frame(error, None).to_json().into())
                                .await
                        }
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
            Some(frame) => self.send_now(frame.to_json().into()).await,
            None => Ok(()),
        }
    }

    async fn feed(&mut self, message: Message) -> Result<(), ()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.feed(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn flush(&mut self) -> Result<(), ()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn send_native(&mut self, frame: &ImServerFrame) -> Result<(), ()> {
        self.send_now(frame.to_json().into()).await
    }

    async fn send_now(&mut self, text: Utf8Bytes) -> Result<(), ()> {
        self.feed(Message::Text(text)).await?;
        self.flush().await
    }
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

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) -> Result<(), ()> {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// A read error: an oversized frame gets 1009; anything else means the peer is gone.
fn read_failure(error: &axum::Error) -> End {
    let text = error.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        End::Close(CLOSE_TOO_BIG, "frame exceeds the hard size limit")
    } else {
        End::Quietly
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
