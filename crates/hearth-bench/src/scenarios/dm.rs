//! `dm`: P pairs of friends exchanging direct messages over the native protocol.
//!
//! Set-up is what a real client does: sign up, friend request, accept, `POST /api/direct`.
//! Then both sides of every pair send `send` frames on their own socket and wait for the
//! `ack`. The send time travels inside the `clientMsgId` (`<tag>.<n>.<ns>`), which the ack
//! echoes back, so the latency needs no table of pending sends.
//!
//! Without `--rate` each client keeps `--window` sends in flight (closed loop: the server's
//! throughput); with `--rate` each pair sends that many messages per second, split between its
//! two sides, on a fixed schedule (open loop: latency at a given load).

use super::{CpuWindow, per_second};
use crate::Common;
use crate::client::{self, AckPayload, ConnectOptions, ErrorPayload, Frame, Http, Ws};
use crate::stats::{Histogram, Report, round3};
use anyhow::{Context, Result, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Pairs of friends (two accounts, one direct conversation, two sockets each).
    #[arg(long, default_value_t = 20)]
    pairs: usize,
    /// Messages per second per pair (both directions together); omit for as fast as acks allow.
    #[arg(long)]
    rate: Option<f64>,
    /// Sends in flight per socket without --rate.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Bytes of message content.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Sign-ups at a time during set-up (each is one argon2id hash on the server).
    #[arg(long, default_value_t = 4)]
    setup_concurrency: usize,
    /// Seconds to wait after the last send for outstanding acks.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Before sending, wait for the server to go quiet (under 5 % of a core for a second):
    /// a latency run right after a full-rate run otherwise shares the cores with the search
    /// index still taking in the previous run's messages.
    #[arg(long)]
    settle: bool,
}

#[derive(Default)]
struct Shared {
    acked: AtomicU64,
    last_ack_ns: AtomicU64,
    errors: AtomicU64,
    /// `message` frames received (each send reaches both members' sockets).
    delivered: AtomicU64,
    disconnects: AtomicU64,
}

/// One side of a pair: who it is, where it connects, which conversation it writes to.
struct Side {
    url: String,
    token: String,
    conversation: i64,
}

pub async fn run(args: &Args) -> Result<Report> {
    if args.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    let tag = client::run_tag();
    let urls = &args.common.urls;
    eprintln!("dm: creating {} accounts and friendships", args.pairs * 2);
    let accounts =
        client::create_accounts(urls, &tag, "d", args.pairs * 2, args.setup_concurrency).await?;
    let http = Http::new(&urls[0])?;
    let sides: Vec<Side> = futures_util::stream::iter(accounts.chunks(2).enumerate())
        .map(|(i, pair)| {
            let http = http.clone();
            async move {
                let (a, b) = (&pair[0], &pair[1]);
                let conversation = befriend(&http, &a.token, &b.token).await?;
                // The two sides of a pair sit on different nodes when there are several.
                Ok::<_, anyhow::Error>([
                    Side {
                        url: urls[(2 * i) % urls.len()].clone(),
                        token: a.token.clone(),
                        conversation,
                    },
                    Side {
                        url: urls[(2 * i + 1) % urls.len()].clone(),
                        token: b.token.clone(),
                        conversation,
                    },
                ])
            }
        })
        .buffered(args.setup_concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();

    eprintln!("dm: opening {} sockets", sides.len());
    let options = ConnectOptions {
        platform: Some("desktop"),
        ..ConnectOptions::default()
    };
    let mut sockets = Vec::with_capacity(sides.len());
    for side in &sides {
        let mut ws = client::connect(&side.url, &side.token, options).await?;
        client::read_hello(&mut ws).await?;
        sockets.push(ws);
    }

    let settled = if args.settle {
        Some(super::settle(&args.common.server_pids).await?)
    } else {
        None
    };
    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu = CpuWindow::start(&args.common.server_pids)?;
    let started = Instant::now();
    let start_ns = client::now_ns();
    let end = started + Duration::from_secs_f64(args.duration);
    eprintln!("dm: sending for {}s", args.duration);
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    let count = sockets.len();
    for (i, (ws, side)) in sockets.into_iter().zip(&sides).enumerate() {
        let (sink, stream) = ws.split();
        let window = Arc::new(Semaphore::new(args.window.max(1)));
        readers.push(tokio::spawn(read(
            stream,
            format!("{tag}.{i}."),
            window.clone(),
            shared.clone(),
            stop_rx.clone(),
        )));
        let pace = args.rate.filter(|r| *r > 0.0).map(|rate| {
            // Each side sends half the pair's rate; stagger the sides over one interval.
            let interval = Duration::from_secs_f64(2.0 / rate);
            (interval, interval.mul_f64(i as f64 / count as f64))
        });
        writers.push(tokio::spawn(write(
            sink,
            window,
            WritePlan {
                prefix: format!("{tag}.{i}."),
                conversation: side.conversation,
                content: client::padded(format!("dm {tag} {i} "), args.payload),
                pace,
                started,
                end,
            },
        )));
    }
    let mut sent = 0;
    let mut sinks = Vec::new();
    for writer in writers {
        let (n, sink) = writer.await.context("a writer task failed")?;
        sent += n;
        sinks.extend(sink);
    }
    let send_secs = started.elapsed().as_secs_f64();
    let drain_end = Instant::now() + Duration::from_secs_f64(args.drain);
    while shared.acked.load(Ordering::Relaxed) + shared.errors.load(Ordering::Relaxed) < sent
        && shared.disconnects.load(Ordering::Relaxed) < count as u64
        && Instant::now() < drain_end
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut latency = Histogram::default();
    let mut problems = Vec::new();
    for reader in readers {
        let (hist, mut p) = reader.await.context("a reader task failed")?;
        latency.merge(&hist);
        problems.append(&mut p);
    }
    drop(sinks);
    let acked = shared.acked.load(Ordering::Relaxed);
    let errors = shared.errors.load(Ordering::Relaxed);
    let last = shared.last_ack_ns.load(Ordering::Relaxed).max(start_ns);
    let window_secs = (last - start_ns) as f64 / 1e9;

    let mut report = Report::new("dm", args.common.label.clone());
    report
        .param("pairs", args.pairs)
        .param("rate_per_pair", args.rate.unwrap_or(0.0))
        .param("window", args.window)
        .param("duration_s", args.duration)
        .param("payload", args.payload)
        .param("nodes", urls.len())
        .param("settle", args.settle)
        .result("sent", sent)
        .result("sent_per_s", per_second(sent, send_secs))
        .result("acked", acked)
        .result("acked_per_s", per_second(acked, window_secs))
        .result("errors", errors)
        .result("unacked", sent.saturating_sub(acked + errors))
        .result("message_frames", shared.delivered.load(Ordering::Relaxed))
        .result("disconnects", shared.disconnects.load(Ordering::Relaxed))
        .result("window_s", round3(window_secs))
        .result("ack_latency_ms", latency.summary_ms());
    if !problems.is_empty() {
        problems.truncate(5);
        report.result("problems", problems);
    }
    if let Some(settled) = settled {
        report.result("settle_s", round3(settled));
    }
    cpu.finish(&mut report, window_secs, acked, "ack")?;
    Ok(report)
}

/// Makes `a` and `b` friends and opens their direct conversation; returns its id.
async fn befriend(http: &Http, a: &str, b: &str) -> Result<i64> {
    let a_id = http.my_id(a).await?;
    let b_id = http.my_id(b).await?;
    http.request(
        Method::POST,
        a,
        "/api/friends/requests",
        Some(json!({"userId": b_id, "note": "bench"})),
    )
    .await?;
    http.request(
        Method::POST,
        b,
        &format!("/api/friends/requests/{a_id}/accept"),
        None,
    )
    .await?;
    let direct = http
        .request(
            Method::POST,
            a,
            "/api/direct",
            Some(json!({"userId": b_id})),
        )
        .await?;
    direct
        .get("conversationId")
        .and_then(serde_json::Value::as_i64)
        .with_context(|| format!("POST /api/direct answered {direct}"))
}

struct WritePlan {
    /// `clientMsgId` prefix unique to this socket: `<tag>.<socket>.`
    prefix: String,
    conversation: i64,
    content: String,
    pace: Option<(Duration, Duration)>,
    started: Instant,
    end: Instant,
}

/// Sends until the end of the run; returns the count and the sink (kept open for the drain).
async fn write(
    mut sink: SplitSink<Ws, Message>,
    window: Arc<Semaphore>,
    plan: WritePlan,
) -> (u64, Option<SplitSink<Ws, Message>>) {
    let mut n = 0u64;
    let mut next = plan.pace.map(|(_, offset)| plan.started + offset);
    loop {
        match (&mut next, plan.pace) {
            (Some(at), Some((interval, _))) => {
                if *at >= plan.end {
                    break;
                }
                tokio::time::sleep_until(*at).await;
                *at += interval;
            }
            _ => match tokio::time::timeout_at(plan.end, window.acquire()).await {
                Ok(Ok(permit)) => permit.forget(),
                _ => break,
            },
        }
        let frame = json!({
            "type": "send",
            "payload": {
                "conversationId": plan.conversation,
                "clientMsgId": format!("{}{n}.{}", plan.prefix, client::now_ns()),
                "content": plan.content,
            },
        });
        if sink.send(Message::text(frame.to_string())).await.is_err() {
            return (n, None);
        }
        n += 1;
    }
    (n, Some(sink))
}

/// The send time inside a `clientMsgId` this socket made.
fn sent_ns(prefix: &str, client_msg_id: &str) -> Option<u64> {
    let rest = client_msg_id.strip_prefix(prefix)?;
    let (_, ns) = rest.split_once('.')?;
    ns.parse().ok()
}

/// Reads acks, errors and message frames until told to stop.
async fn read(
    mut stream: SplitStream<Ws>,
    prefix: String,
    window: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> (Histogram, Vec<String>) {
    let mut latency = Histogram::default();
    let mut problems = Vec::new();
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = stream.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                problems.push(format!("socket ended: {message:?}"));
                break;
            }
            Some(Ok(_)) => continue,
        };
        let received = client::now_ns();
        let kind = match client::frame_type(&text) {
            Ok(kind) => kind,
            Err(error) => {
                problems.push(format!("{error}"));
                continue;
            }
        };
        match kind.as_str() {
            "ack" => match serde_json::from_str::<Frame<'_, AckPayload<'_>>>(&text) {
                Ok(ack) => {
                    if let Some(sent) = sent_ns(&prefix, &ack.payload.client_msg_id) {
                        latency.record(received.saturating_sub(sent));
                        shared.acked.fetch_add(1, Ordering::Relaxed);
                        shared.last_ack_ns.fetch_max(received, Ordering::Relaxed);
                        window.add_permits(1);
                    }
                }
                Err(error) => problems.push(format!("bad ack: {error}")),
            },
            "error" => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                window.add_permits(1);
                if problems.len() < 5 {
                    let detail = serde_json::from_str::<Frame<'_, ErrorPayload>>(&text)
                        .map(|f| format!("{}: {}", f.payload.code, f.payload.message))
                        .unwrap_or_else(|e| format!("undecodable error: {e}"));
                    problems.push(detail);
                }
            }
            "message" => {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    (latency, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_time_comes_back_from_the_client_msg_id() {
        assert_eq!(sent_ns("ab.3.", "ab.3.17.123456"), Some(123456));
        assert_eq!(sent_ns("ab.3.", "ab.4.17.123456"), None);
        assert_eq!(sent_ns("ab.3.", "ab.3.17"), None);
    }
}
