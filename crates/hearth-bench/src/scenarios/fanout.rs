//! `fanout`: N sockets in one room, the first S of them also sending.
//!
//! In the chat-room protocol every socket receives every room's `serverMessages`, so each
//! message sent must reach each of the N sockets exactly once. Every message's content carries
//! the run tag, its sender, its number and the send time (`now_ns`), so each socket checks off
//! every delivery in a bitmap (duplicates and losses are exact, not estimated) and measures
//! end-to-end latency without any per-message bookkeeping on the sending side.
//!
//! With `--rate 0` senders go as fast as the echo allows: each keeps `--window` frames in
//! flight and sends the next one when its own socket sees one of its frames come back, which
//! finds the server's throughput without flooding its queues.

use super::{CpuWindow, per_second};
use crate::Common;
use crate::client::{self, ConnectOptions, ErrorPayload, Frame, RoomMessages, Ws};
use crate::stats::{Histogram, Report, round3};
use anyhow::{Context, Result, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// No sender numbers its messages beyond this: a bound on the bitmap a garbled id may allocate.
const MAX_MESSAGES_PER_SENDER: u64 = 1 << 28;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Sockets in the room (each receives every message).
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// How many of those sockets also send.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages per second, all senders together; 0 = as fast as the echo allows.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Messages per `clientMessages` frame (1..=100).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Frames in flight per sender with `--rate 0`.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many messages in all (whichever comes first with --duration).
    #[arg(long)]
    messages: Option<u64>,
    /// Bytes of message content.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Room id.
    #[arg(long, default_value = "general")]
    room: String,
    /// Accounts to create; sockets are spread over them (many sockets per user are allowed).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Sockets opened at a time during set-up.
    #[arg(long, default_value_t = 32)]
    connect_concurrency: usize,
    /// Seconds to wait after the last send for outstanding deliveries before counting losses.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
}

/// Counters every socket task updates.
#[derive(Default)]
pub(super) struct Shared {
    /// First-time deliveries, all sockets together.
    pub(super) delivered: AtomicU64,
    /// `now_ns` of the latest first-time delivery.
    pub(super) last_delivery_ns: AtomicU64,
    /// Messages in frames the server refused with an `error` frame.
    pub(super) rejected: AtomicU64,
    /// Sockets that ended before the run did.
    pub(super) disconnects: AtomicU64,
}

impl Shared {
    /// Waits until `expected` deliveries (given the counters) arrived, every one of `sockets`
    /// ended, or `drain` passed; returns the seconds from `start_ns` to the last first-time
    /// delivery, the window every rate is computed over.
    pub(super) async fn drain(
        &self,
        expected: impl Fn(&Shared) -> u64,
        sockets: u64,
        drain: Duration,
        start_ns: u64,
    ) -> f64 {
        let drain_end = Instant::now() + drain;
        while self.delivered.load(Ordering::Relaxed) < expected(self)
            && self.disconnects.load(Ordering::Relaxed) < sockets
            && Instant::now() < drain_end
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last_ns = self.last_delivery_ns.load(Ordering::Relaxed).max(start_ns);
        (last_ns - start_ns) as f64 / 1e9
    }
}

/// What one socket saw.
pub(super) struct Seen {
    pub(super) latency: Histogram,
    /// Per sender, a bit per message number.
    bits: Vec<Vec<u64>>,
    pub(super) duplicated: u64,
    pub(super) foreign: u64,
    /// `serverMessages` frames of the room (the protocol promises one per posted frame).
    frames: u64,
    /// Their text, in bytes (what one delivery costs on the wire, less the frame header).
    frame_bytes: u64,
    pub(super) problems: Vec<String>,
}

impl Seen {
    pub(super) fn new(senders: usize) -> Self {
        Seen {
            latency: Histogram::default(),
            bits: vec![Vec::new(); senders],
            duplicated: 0,
            foreign: 0,
            frames: 0,
            frame_bytes: 0,
            problems: Vec::new(),
        }
    }

    /// Checks off message `n` of `sender`; false if it was already there.
    pub(super) fn mark(&mut self, sender: usize, n: u64) -> bool {
        let words = &mut self.bits[sender];
        let (word, bit) = ((n / 64) as usize, n % 64);
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        let fresh = words[word] & (1 << bit) == 0;
        words[word] |= 1 << bit;
        fresh
    }
}

/// What a message's content says about it.
pub(super) struct Stamp {
    pub(super) sender: usize,
    pub(super) n: u64,
    pub(super) sent_ns: u64,
}

/// A message's content: run tag, sender, number and send time, padded to `payload` bytes.
pub(super) fn content(tag: &str, sender: usize, n: u64, payload: usize) -> String {
    client::padded(
        format!("hb{tag} {sender} {n} {} ", client::now_ns()),
        payload,
    )
}

/// Reads back [`content`]; `None` for messages of other runs or other clients.
pub(super) fn parse_stamp(tag: &str, content: &str) -> Option<Stamp> {
    let mut parts = content.split_ascii_whitespace();
    if parts.next()?.strip_prefix("hb")? != tag {
        return None;
    }
    let sender = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    let sent_ns = parts.next()?.parse().ok()?;
    Some(Stamp { sender, n, sent_ns })
}

pub async fn run(args: &Args) -> Result<Report> {
    if args.subscribers == 0 || args.senders == 0 || args.senders > args.subscribers {
        bail!("need 1 <= --senders <= --subscribers");
    }
    if !(1..=100).contains(&args.batch) {
        bail!("--batch is 1..=100 messages per frame");
    }
    let tag = client::run_tag();
    let urls = &args.common.urls;
    eprintln!("fanout: creating {} accounts", args.accounts);
    let accounts = client::create_accounts(urls, &tag, "f", args.accounts.max(1), 4).await?;

    eprintln!("fanout: opening {} sockets", args.subscribers);
    let connect_started = Instant::now();
    let sockets: Vec<Ws> = futures_util::stream::iter(0..args.subscribers)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            let token = accounts[i % accounts.len()].token.clone();
            async move {
                let mut ws = client::connect(&url, &token, ConnectOptions::default()).await?;
                client::read_hello(&mut ws).await?;
                Ok::<_, anyhow::Error>(ws)
            }
        })
        .buffered(args.connect_concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let connect_secs = connect_started.elapsed().as_secs_f64();

    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::with_capacity(sockets.len());
    let mut sinks = Vec::with_capacity(args.senders);
    for (i, ws) in sockets.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        let echo = (i < args.senders).then(|| {
            let window = Arc::new(Semaphore::new(args.window.max(1)));
            sinks.push((sink, window.clone()));
            (i, window)
        });
        receivers.push(tokio::spawn(receive(
            stream,
            echo,
            ReceiveContext {
                tag: tag.clone(),
                room: args.room.clone(),
                senders: args.senders,
                batch: args.batch as u64,
                shared: shared.clone(),
                stop: stop_rx.clone(),
            },
        )));
    }

    let cpu = CpuWindow::start(&args.common.server_pids)?;
    let started = Instant::now();
    let start_ns = client::now_ns();
    let end = started + Duration::from_secs_f64(args.duration);
    eprintln!(
        "fanout: sending for {}s ({} msgs/s)",
        args.duration,
        if args.rate > 0.0 {
            args.rate.to_string()
        } else {
            "max".into()
        }
    );
    let senders: Vec<_> = sinks
        .into_iter()
        .enumerate()
        .map(|(i, (sink, window))| {
            let plan = SendPlan {
                index: i,
                tag: tag.clone(),
                room: args.room.clone(),
                batch: args.batch,
                payload: args.payload,
                cap: args.messages.map_or(MAX_MESSAGES_PER_SENDER, |m| {
                    (m / args.senders as u64 + u64::from((i as u64) < m % args.senders as u64))
                        .min(MAX_MESSAGES_PER_SENDER)
                }),
                pace: (args.rate > 0.0).then(|| {
                    let frames_per_sec = args.rate / args.senders as f64 / args.batch as f64;
                    let interval = Duration::from_secs_f64(1.0 / frames_per_sec);
                    // Stagger the senders across one interval so their frames interleave.
                    (interval, interval.mul_f64(i as f64 / args.senders as f64))
                }),
                started,
                end,
            };
            tokio::spawn(send(sink, window, plan))
        })
        .collect();
    let mut sent = 0;
    let mut open_sinks = Vec::new();
    let mut problems = Vec::new();
    for sender in senders {
        let done = sender.await.context("a sender task failed")?;
        sent += done.messages;
        open_sinks.push(done.sink);
        problems.extend(done.failure);
    }
    let send_secs = started.elapsed().as_secs_f64();

    // Wait for every socket to have every accepted message, or for the drain time.
    let sockets = args.subscribers as u64;
    let window_secs = shared
        .drain(
            |s| sockets * sent.saturating_sub(s.rejected.load(Ordering::Relaxed)),
            sockets,
            Duration::from_secs_f64(args.drain),
            start_ns,
        )
        .await;
    let _ = stop_tx.send(true);

    let mut latency = Histogram::default();
    let (mut unique, mut duplicated, mut foreign) = (0u64, 0u64, 0u64);
    let (mut frames, mut frame_bytes) = (0u64, 0u64);
    for receiver in receivers {
        let seen = receiver.await.context("a receiver task failed")?;
        latency.merge(&seen.latency);
        unique += seen.latency.count();
        duplicated += seen.duplicated;
        foreign += seen.foreign;
        frames += seen.frames;
        frame_bytes += seen.frame_bytes;
        problems.extend(seen.problems);
    }
    drop(open_sinks);
    let rejected = shared.rejected.load(Ordering::Relaxed);
    let accepted = sent.saturating_sub(rejected);
    let expected = accepted * sockets;

    let mut report = Report::new("fanout", args.common.label.clone());
    report
        .param("subscribers", args.subscribers)
        .param("senders", args.senders)
        .param("rate", args.rate)
        .param("batch", args.batch)
        .param("window", args.window)
        .param("duration_s", args.duration)
        .param("payload", args.payload)
        .param("nodes", urls.len())
        .result("connect_s", round3(connect_secs))
        .result("sent", sent)
        .result("sent_per_s", per_second(sent, send_secs))
        .result("rejected", rejected)
        .result("deliveries", unique)
        .result("deliveries_expected", expected)
        .result("deliveries_per_s", per_second(unique, window_secs))
        .result("lost", expected.saturating_sub(unique))
        .result("duplicated", duplicated)
        .result("foreign", foreign)
        // Posted frames are `sent / batch`; fewer received per socket means merged frames.
        .result("frames_per_socket", round3(frames as f64 / sockets as f64))
        // The size a bare writer is compared at (`hearth-bench floor --payload`).
        .result(
            "frame_bytes",
            frame_bytes.checked_div(frames).map_or(0, ws_frame_len),
        )
        .result("disconnects", shared.disconnects.load(Ordering::Relaxed))
        .result("window_s", round3(window_secs))
        .result("latency_ms", latency.summary_ms());
    if !problems.is_empty() {
        problems.truncate(5);
        report.result("problems", problems);
    }
    cpu.finish(&mut report, window_secs, unique, "delivery")?;
    Ok(report)
}

/// A server text frame's length on the wire for `payload` bytes of text (unmasked header).
fn ws_frame_len(payload: u64) -> u64 {
    payload
        + match payload {
            0..126 => 2,
            126..65536 => 4,
            _ => 10,
        }
}

struct SendPlan {
    index: usize,
    tag: String,
    room: String,
    batch: usize,
    payload: usize,
    /// Messages this sender may send at most.
    cap: u64,
    /// Frame interval and start offset; `None` sends as fast as the window allows.
    pace: Option<(Duration, Duration)>,
    started: Instant,
    end: Instant,
}

/// What a sender leaves behind: messages sent, its half of the socket (kept open until the
/// drain ends, or the server would see the socket close) and why it stopped early, if it did.
struct Sent {
    messages: u64,
    sink: SplitSink<Ws, Message>,
    failure: Option<String>,
}

/// Sends frames until the end of the run or the cap.
async fn send(mut sink: SplitSink<Ws, Message>, window: Arc<Semaphore>, plan: SendPlan) -> Sent {
    let mut n = 0u64;
    let mut next = plan.pace.map(|(_, offset)| plan.started + offset);
    while n + plan.batch as u64 <= plan.cap {
        match (&mut next, plan.pace) {
            (Some(at), Some((interval, _))) => {
                if *at >= plan.end {
                    break;
                }
                tokio::time::sleep_until(*at).await;
                *at += interval;
            }
            _ => {
                // A frame's echo returns a permit; a lost echo must not hang the run.
                match tokio::time::timeout_at(plan.end, window.acquire()).await {
                    Ok(Ok(permit)) => permit.forget(),
                    _ => break,
                }
            }
        }
        let messages: Vec<_> = (0..plan.batch as u64)
            .map(|k| {
                serde_json::json!({"content": content(&plan.tag, plan.index, n + k, plan.payload)})
            })
            .collect();
        let frame = serde_json::json!({
            "type": "clientMessages",
            "payload": {"roomId": plan.room, "messages": messages},
        });
        if let Err(error) = sink.send(Message::text(frame.to_string())).await {
            return Sent {
                messages: n,
                sink,
                failure: Some(format!("sender {}: {error}", plan.index)),
            };
        }
        n += plan.batch as u64;
    }
    Sent {
        messages: n,
        sink,
        failure: None,
    }
}

struct ReceiveContext {
    tag: String,
    room: String,
    senders: usize,
    batch: u64,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

/// Reads one socket until told to stop, checking off every delivery.
async fn receive(
    mut stream: SplitStream<Ws>,
    echo: Option<(usize, Arc<Semaphore>)>,
    mut cx: ReceiveContext,
) -> Seen {
    let mut seen = Seen::new(cx.senders);
    let mut own_echoes = 0u64;
    loop {
        let message = tokio::select! {
            biased;
            _ = cx.stop.changed() => return seen,
            message = stream.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                cx.shared.disconnects.fetch_add(1, Ordering::Relaxed);
                seen.problems
                    .push(format!("closed by the server: {frame:?}"));
                return seen;
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                cx.shared.disconnects.fetch_add(1, Ordering::Relaxed);
                seen.problems.push(format!("socket error: {error}"));
                return seen;
            }
            None => {
                cx.shared.disconnects.fetch_add(1, Ordering::Relaxed);
                seen.problems.push("socket ended".into());
                return seen;
            }
        };
        let received_ns = client::now_ns();
        match serde_json::from_str::<Frame<'_, RoomMessages<'_>>>(&text) {
            Ok(frame) if frame.kind == "serverMessages" => {
                if frame.payload.room_id != cx.room {
                    continue;
                }
                seen.frames += 1;
                seen.frame_bytes += text.len() as u64;
                let mut fresh = 0;
                for message in &frame.payload.messages {
                    let Some(stamp) = parse_stamp(&cx.tag, &message.content) else {
                        seen.foreign += 1;
                        continue;
                    };
                    if stamp.sender >= cx.senders || stamp.n >= MAX_MESSAGES_PER_SENDER {
                        seen.foreign += 1;
                        continue;
                    }
                    if echo.as_ref().is_some_and(|(me, _)| *me == stamp.sender) {
                        own_echoes += 1;
                    }
                    if seen.mark(stamp.sender, stamp.n) {
                        fresh += 1;
                        seen.latency
                            .record(received_ns.saturating_sub(stamp.sent_ns));
                    } else {
                        seen.duplicated += 1;
                    }
                }
                if fresh > 0 {
                    cx.shared.delivered.fetch_add(fresh, Ordering::Relaxed);
                    cx.shared
                        .last_delivery_ns
                        .fetch_max(received_ns, Ordering::Relaxed);
                }
                // The server may merge posts committed together into one frame, so the window
                // is returned per `batch` own messages seen, not per frame.
                if let Some((_, window)) = &echo {
                    let frames = own_echoes / cx.batch;
                    own_echoes %= cx.batch;
                    window.add_permits(frames as usize);
                }
            }
            _ => {
                if client::frame_type(&text).is_ok_and(|t| t == "error") {
                    let error = serde_json::from_str::<Frame<'_, ErrorPayload>>(&text)
                        .map(|f| format!("{}: {}", f.payload.code, f.payload.message))
                        .unwrap_or_else(|e| format!("undecodable error frame: {e}"));
                    if seen.problems.len() < 5 {
                        seen.problems.push(error);
                    }
                    if let Some((_, window)) = &echo {
                        cx.shared.rejected.fetch_add(cx.batch, Ordering::Relaxed);
                        window.add_permits(1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_ignore_other_runs() {
        let text = content("abcd0123", 3, 17, 64);
        assert_eq!(text.len(), 64);
        let stamp = parse_stamp("abcd0123", &text).unwrap();
        assert_eq!((stamp.sender, stamp.n), (3, 17));
        assert!(parse_stamp("ffff0000", &text).is_none());
        assert!(parse_stamp("abcd0123", "hello").is_none());
    }

    #[test]
    fn bitmap_counts_each_message_once() {
        let mut seen = Seen::new(2);
        assert!(seen.mark(1, 1000));
        assert!(!seen.mark(1, 1000));
        assert!(seen.mark(0, 1000));
        assert!(seen.mark(1, 0));
    }
}
