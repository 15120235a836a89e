//! `history`: fill a room with M messages (if it has fewer), then page back K times from
//! random points with `requestRoomHistory` and time each page.
//!
//! Filling posts `clientMessages` frames of 100 messages from a few sockets, each keeping a
//! small window of frames in flight and counting its own echoes (a socket's frames are stored
//! in the order it sent them, so a window is enough flow control). The room's message count is
//! read from the `seq` part of the newest id in `hello`, so a second run against the same
//! server skips the fill. After a fill it waits for the server to go quiet (the search index
//! takes in the fill for a while) before paging; `settle_s` reports how long that took.

use super::{CpuWindow, per_second};
use crate::Common;
use crate::client::{self, ConnectOptions, ErrorPayload, Frame, RoomMessages, Ws};
use crate::stats::{Histogram, Report, round3};
use anyhow::{Context, Result, bail};
use futures_util::SinkExt;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Messages per fill frame: the protocol's maximum.
const FILL_BATCH: u64 = 100;
/// A page that takes longer than this is a failure, not a latency sample.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Messages the room must hold before paging.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// History pages to request.
    #[arg(long, default_value_t = 1000)]
    pages: u64,
    /// Room id.
    #[arg(long, default_value = "help")]
    room: String,
    /// Sockets filling the room in parallel.
    #[arg(long, default_value_t = 4)]
    fill_sockets: usize,
    /// Fill frames in flight per socket.
    #[arg(long, default_value_t = 2)]
    fill_window: u64,
    /// Bytes of content per fill message.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Sockets paging in parallel (each sends one request at a time).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Give up filling after this many seconds (the run still pages what is there).
    #[arg(long, default_value_t = 300.0)]
    fill_timeout: f64,
}

pub async fn run(args: &Args) -> Result<Report> {
    let tag = client::run_tag();
    let url = &args.common.urls[0];
    let account = client::create_accounts(&args.common.urls, &tag, "h", 1, 1)
        .await?
        .remove(0);
    let before = match newest_id(url, &account.token, &args.room).await? {
        Some(id) => client::parse_message_id(&id)?.1 as u64,
        None => 0,
    };

    let mut report = Report::new("history", args.common.label.clone());
    report
        .param("messages", args.messages)
        .param("pages", args.pages)
        .param("concurrency", args.concurrency)
        .param("room", args.room.as_str())
        .result("messages_before", before);

    if before < args.messages {
        let frames = (args.messages - before).div_ceil(FILL_BATCH);
        eprintln!("history: filling {} messages", frames * FILL_BATCH);
        let remaining = Arc::new(AtomicU64::new(frames));
        let deadline = Instant::now() + Duration::from_secs_f64(args.fill_timeout);
        let started = Instant::now();
        let mut fill_sockets = Vec::new();
        for _ in 0..args.fill_sockets.max(1) {
            let mut ws = client::connect(url, &account.token, ConnectOptions::default()).await?;
            client::read_hello(&mut ws).await?;
            fill_sockets.push(ws);
        }
        let fillers: Vec<_> = fill_sockets
            .into_iter()
            .enumerate()
            .map(|(i, ws)| {
                let fill = Fill {
                    marker: format!("hb{tag}f{i} "),
                    room: args.room.clone(),
                    payload: args.payload,
                    window: args.fill_window.max(1),
                    remaining: remaining.clone(),
                    deadline,
                };
                tokio::spawn(fill.run(ws))
            })
            .collect();
        let mut stored = 0;
        for filler in fillers {
            stored += filler.await.context("a fill task failed")??;
        }
        let secs = started.elapsed().as_secs_f64();
        report
            .result("filled", stored)
            .result("fill_s", round3(secs))
            .result("fill_msgs_per_s", per_second(stored, secs));
        // The fill leaves the server busy for a while (the search index catching up with a
        // million messages): page a quiet server, as a reader of a busy room would.
        let settle = super::settle(&args.common.server_pids).await?;
        report.result("settle_s", round3(settle));
    }

    // The newest id after filling, from a fresh hello.
    let newest = newest_id(url, &account.token, &args.room)
        .await?
        .context("the room is still empty")?;
    let (ms, last_seq) = client::parse_message_id(&newest)?;
    if last_seq <= FILL_BATCH as i64 {
        bail!("the room holds {last_seq} messages; a full page needs more than {FILL_BATCH}");
    }
    report.result("messages_in_room", last_seq);

    eprintln!("history: requesting {} pages", args.pages);
    let cpu = CpuWindow::start(&args.common.server_pids)?;
    let started = Instant::now();
    let per_socket = args.pages.div_ceil(args.concurrency.max(1) as u64);
    // Paging sockets open only now: idle through the fill, they would have fallen a whole
    // fan-out ring behind and been closed.
    let mut sockets = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let mut ws = client::connect(url, &account.token, ConnectOptions::default()).await?;
        client::read_hello(&mut ws).await?;
        sockets.push(ws);
    }
    let pagers: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            let room = args.room.clone();
            tokio::spawn(page(ws, room, ms, last_seq, per_socket))
        })
        .collect();
    let mut latency = Histogram::default();
    let mut short = 0;
    for pager in pagers {
        let (hist, s) = pager.await.context("a paging task failed")??;
        latency.merge(&hist);
        short += s;
    }
    let secs = started.elapsed().as_secs_f64();
    report
        .result("pages_done", latency.count())
        .result("short_pages", short)
        .result("pages_per_s", per_second(latency.count(), secs))
        .result("page_latency_ms", latency.summary_ms());
    cpu.finish(&mut report, secs, latency.count(), "page")?;
    Ok(report)
}

/// The id of the newest message in `room`, read from a fresh socket's `hello`.
async fn newest_id(url: &str, token: &str, room: &str) -> Result<Option<String>> {
    let mut ws = client::connect(url, token, ConnectOptions::default()).await?;
    let rooms = client::read_hello(&mut ws).await?;
    let room = rooms
        .into_iter()
        .find(|r| r.id == room)
        .with_context(|| format!("no room {room:?} on the server"))?;
    Ok(room.newest)
}

/// One filling socket's job.
struct Fill {
    /// Starts every content this socket posts, so it recognises its own echoes.
    marker: String,
    room: String,
    payload: usize,
    window: u64,
    /// Frames still to post, shared by all fillers.
    remaining: Arc<AtomicU64>,
    deadline: Instant,
}

impl Fill {
    /// Posts frames while any remain; returns the messages stored.
    async fn run(self, mut ws: Ws) -> Result<u64> {
        let mut in_flight = 0u64;
        let mut stored = 0u64;
        let mut n = 0u64;
        loop {
            // In messages: a window of `window` frames.
            while in_flight < self.window * FILL_BATCH
                && Instant::now() < self.deadline
                && self.take_frame()
            {
                let messages: Vec<_> = (0..FILL_BATCH)
                    .map(|k| {
                        let text = format!("{}{} ", self.marker, n + k);
                        json!({"content": client::padded(text, self.payload)})
                    })
                    .collect();
                n += FILL_BATCH;
                let frame = json!({
                    "type": "clientMessages",
                    "payload": {"roomId": self.room, "messages": messages},
                });
                ws.send(Message::text(frame.to_string()))
                    .await
                    .context("posting a fill frame")?;
                in_flight += FILL_BATCH;
            }
            if in_flight == 0 {
                return Ok(stored);
            }
            let text = tokio::time::timeout_at(
                self.deadline.max(Instant::now()) + PAGE_TIMEOUT,
                client::next_text(&mut ws),
            )
            .await
            .context("no echo of a fill frame")??;
            match serde_json::from_str::<Frame<'_, RoomMessages<'_>>>(&text) {
                Ok(frame) if frame.kind == "serverMessages" => {
                    // Count messages, not frames: posts committed together may come back as one
                    // frame holding several posts.
                    let mine = frame
                        .payload
                        .messages
                        .iter()
                        .filter(|m| m.content.starts_with(&self.marker))
                        .count() as u64;
                    stored += mine;
                    in_flight = in_flight.saturating_sub(mine);
                }
                _ => {
                    if let Ok(error) = serde_json::from_str::<Frame<'_, ErrorPayload>>(&text)
                        && error.kind == "error"
                    {
                        bail!("the server refused a fill frame: {:?}", error.payload);
                    }
                }
            }
        }
    }

    fn take_frame(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
            .is_ok()
    }
}

/// Requests `count` pages from random points (each with a full page below it) on one socket,
/// one at a time; returns the latencies and how many pages came back short.
async fn page(
    mut ws: Ws,
    room: String,
    ms: i64,
    last_seq: i64,
    count: u64,
) -> Result<(Histogram, u64)> {
    let mut latency = Histogram::default();
    let mut short = 0;
    for _ in 0..count {
        let seq = fastrand::i64(FILL_BATCH as i64 + 1..=last_seq);
        let frame = json!({
            "type": "requestRoomHistory",
            "payload": {"roomId": room, "firstMessageId": format!("{ms}-{seq}")},
        });
        let sent = client::now_ns();
        ws.send(Message::text(frame.to_string()))
            .await
            .context("requesting a history page")?;
        loop {
            let text = tokio::time::timeout(PAGE_TIMEOUT, client::next_text(&mut ws))
                .await
                .context("no roomHistory within the timeout")??;
            let received = client::now_ns();
            match serde_json::from_str::<Frame<'_, RoomMessages<'_>>>(&text) {
                Ok(frame) if frame.kind == "roomHistory" => {
                    latency.record(received - sent);
                    if frame.payload.messages.len() != FILL_BATCH as usize {
                        short += 1;
                    }
                    break;
                }
                Ok(_) => {} // live messages of other clients
                Err(_) => {
                    if let Ok(error) = serde_json::from_str::<Frame<'_, ErrorPayload>>(&text)
                        && error.kind == "error"
                    {
                        bail!("history request refused: {:?}", error.payload);
                    }
                }
            }
        }
    }
    Ok((latency, short))
}
