//! `redis-fanout`: the steady fan-out measured on Redis pub/sub, with the method of `fanout`.
//!
//! The targets were set against Redis pub/sub (6.1 µs of server CPU per delivery at 50
//! messages/s to 1,000 subscribers, measured on another day). The kernel's cost of a loopback
//! write differs between hosts and days, so a figure for Hearth means little without the
//! reference measured beside it. This scenario does that: N subscriber connections on one
//! channel, one publisher at R messages/s, every message carrying its number and send time as in
//! `fanout`, every delivery checked off (lost and duplicated are exact), and Redis's own CPU from
//! `/proc/<pid>/stat` over the window. Redis does less per message than Hearth (no
//! authentication, no WebSocket framing, nothing stored), so it is the bar, not a peer.

use super::fanout::{Seen, Shared, content, parse_stamp};
use super::{CpuWindow, per_second};
use crate::client;
use crate::stats::{Histogram, Report, round3};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// A RESP bulk string longer than this is not something this benchmark sent.
const MAX_BULK: usize = 1 << 20;
/// Elements of a pub/sub push (`message`, channel, payload); anything longer is refused.
const MAX_PARTS: usize = 8;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Redis address: loopback only.
    #[arg(long, default_value = "127.0.0.1:6379")]
    redis: SocketAddr,
    /// The redis-server's process id: its CPU per delivery is the result.
    #[arg(long = "server-pid", required = true)]
    server_pids: Vec<u32>,
    /// A free-form label copied into the report.
    #[arg(long)]
    label: Option<String>,
    /// Subscriber connections (each receives every message).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Messages per second published.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Bytes of message payload.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds to wait after the last publish for outstanding deliveries.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
}

pub async fn run(args: &Args) -> Result<Report> {
    if !args.redis.ip().is_loopback() {
        bail!(
            "--redis {}: only loopback addresses are allowed",
            args.redis
        );
    }
    if args.subscribers == 0 || args.rate <= 0.0 || args.duration <= 0.0 {
        bail!("need --subscribers > 0, --rate > 0 and --duration > 0");
    }
    let tag = client::run_tag();
    let channel = format!("hearth-bench:{tag}");
    eprintln!("redis-fanout: subscribing {} connections", args.subscribers);
    let subscribers: Vec<(TcpStream, Vec<u8>)> = futures_util::stream::iter(0..args.subscribers)
        .map(|_| subscribe(args.redis, &channel))
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;

    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let receivers: Vec<_> = subscribers
        .into_iter()
        .map(|(stream, pending)| {
            tokio::spawn(receive(
                stream,
                pending,
                tag.clone(),
                shared.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();

    let publisher = TcpStream::connect(args.redis)
        .await
        .with_context(|| format!("connecting to Redis at {}", args.redis))?;
    publisher.set_nodelay(true)?;
    let (mut replies, mut commands) = publisher.into_split();
    // Each PUBLISH answers with the number of subscribers it reached.
    let reached = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut counts = Vec::new();
        loop {
            buf.reserve(4096);
            match replies.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return counts,
                Ok(_) => {}
            }
            while let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 2);
                counts.push(line);
            }
        }
    });

    let cpu = CpuWindow::start(&args.server_pids)?;
    let started = Instant::now();
    let start_ns = client::now_ns();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let end = started + Duration::from_secs_f64(args.duration);
    eprintln!(
        "redis-fanout: publishing for {}s ({} msgs/s)",
        args.duration, args.rate
    );
    let mut sent = 0u64;
    let mut at = started;
    while at < end {
        tokio::time::sleep_until(at).await;
        let payload = content(&tag, 0, sent, args.payload);
        commands
            .write_all(&command(&[
                b"PUBLISH",
                channel.as_bytes(),
                payload.as_bytes(),
            ]))
            .await
            .context("publishing to Redis")?;
        sent += 1;
        at += interval;
    }
    let send_secs = started.elapsed().as_secs_f64();

    let expected = sent * args.subscribers as u64;
    let window_secs = shared
        .drain(
            |_| expected,
            args.subscribers as u64,
            Duration::from_secs_f64(args.drain),
            start_ns,
        )
        .await;
    let mut report = Report::new("redis-fanout", args.label.clone());
    let unique = shared.delivered.load(Ordering::Relaxed);
    cpu.finish(&mut report, window_secs, unique, "delivery")?;
    let _ = stop_tx.send(true);
    commands.shutdown().await.ok();
    drop(commands);

    let mut latency = Histogram::default();
    let (mut duplicated, mut foreign, mut problems) = (0u64, 0u64, Vec::new());
    for receiver in receivers {
        let seen = receiver.await.context("a subscriber task failed")?;
        latency.merge(&seen.latency);
        duplicated += seen.duplicated;
        foreign += seen.foreign;
        problems.extend(seen.problems);
    }
    let replies = reached.await.context("the reply reader failed")?;
    // Every PUBLISH must have reached every subscriber (`:N`), or the run measured less.
    let reached_all = format!(":{}", args.subscribers);
    let short: Vec<&String> = replies
        .iter()
        .filter(|line| **line != reached_all)
        .collect();
    if let Some(first) = short.first() {
        problems.push(format!(
            "{} of {} PUBLISH replies did not say {reached_all} (first: {first:?})",
            short.len(),
            replies.len(),
        ));
    }
    report
        .param("subscribers", args.subscribers)
        .param("rate", args.rate)
        .param("duration_s", args.duration)
        .param("payload", args.payload)
        .result("sent", sent)
        .result("sent_per_s", per_second(sent, send_secs))
        .result("deliveries", latency.count())
        .result("deliveries_expected", expected)
        .result("deliveries_per_s", per_second(latency.count(), window_secs))
        .result("lost", expected.saturating_sub(latency.count()))
        .result("duplicated", duplicated)
        .result("foreign", foreign)
        .result("disconnects", shared.disconnects.load(Ordering::Relaxed))
        .result("window_s", round3(window_secs))
        .result("latency_ms", latency.summary_ms());
    if !problems.is_empty() {
        problems.truncate(5);
        report.result("problems", problems);
    }
    Ok(report)
}

/// A RESP command: an array of bulk strings.
fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Opens a connection subscribed to `channel`; returns it with any bytes read past the
/// subscription's confirmation.
async fn subscribe(addr: SocketAddr, channel: &str) -> Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to Redis at {addr}"))?;
    stream.set_nodelay(true)?;
    stream
        .write_all(&command(&[b"SUBSCRIBE", channel.as_bytes()]))
        .await?;
    let mut buf = Vec::new();
    loop {
        buf.reserve(512);
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("Redis closed the connection before confirming SUBSCRIBE");
        }
        if let Some((used, parts)) = parse_push(&buf)? {
            if parts.first() != Some(&&b"subscribe"[..]) {
                bail!(
                    "Redis answered SUBSCRIBE with {:?}",
                    String::from_utf8_lossy(&buf[..used])
                );
            }
            buf.drain(..used);
            return Ok((stream, buf));
        }
    }
}

/// Reads one subscriber until told to stop, checking off every delivery.
async fn receive(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    tag: String,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::new(1);
    loop {
        buf.reserve(8192);
        let read = tokio::select! {
            biased;
            _ = stop.changed() => return seen,
            read = stream.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) | Err(_) => {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                seen.problems.push("a subscriber's connection ended".into());
                return seen;
            }
            Ok(_) => {}
        }
        let received_ns = client::now_ns();
        let mut at = 0;
        let mut fresh = 0;
        loop {
            match parse_push(&buf[at..]) {
                Ok(Some((used, parts))) => {
                    at += used;
                    let stamp = match parts.as_slice() {
                        [kind, _, payload] if *kind == b"message" => std::str::from_utf8(payload)
                            .ok()
                            .and_then(|text| parse_stamp(&tag, text)),
                        _ => None,
                    };
                    match stamp {
                        Some(stamp) if stamp.sender == 0 => {
                            if seen.mark(0, stamp.n) {
                                fresh += 1;
                                seen.latency
                                    .record(received_ns.saturating_sub(stamp.sent_ns));
                            } else {
                                seen.duplicated += 1;
                            }
                        }
                        _ => seen.foreign += 1,
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    shared.disconnects.fetch_add(1, Ordering::Relaxed);
                    seen.problems.push(format!("undecodable push: {error}"));
                    return seen;
                }
            }
        }
        buf.drain(..at);
        if fresh > 0 {
            shared.delivered.fetch_add(fresh, Ordering::Relaxed);
            shared
                .last_delivery_ns
                .fetch_max(received_ns, Ordering::Relaxed);
        }
    }
}

/// A complete RESP array: the bytes it took and its elements.
type Push<'a> = (usize, Vec<&'a [u8]>);

/// One RESP array of bulk strings and integers (a pub/sub push); `None` while incomplete.
fn parse_push(buf: &[u8]) -> Result<Option<Push<'_>>> {
    let Some((count, mut at)) = number_line(buf, b'*')? else {
        return Ok(None);
    };
    if count > MAX_PARTS {
        bail!("a push of {count} elements");
    }
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {
                let Some((len, header)) = number_line(&buf[at..], b'$')? else {
                    return Ok(None);
                };
                if len > MAX_BULK {
                    bail!("a bulk string of {len} bytes");
                }
                let start = at + header;
                let end = start + len;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    bail!("a bulk string not followed by CRLF");
                }
                parts.push(&buf[start..end]);
                at = end + 2;
            }
            Some(b':') => {
                let Some((_, header)) = number_line(&buf[at..], b':')? else {
                    return Ok(None);
                };
                parts.push(&buf[at + 1..at + header - 2]);
                at += header;
            }
            Some(other) => bail!("unexpected RESP type byte {other:#04x}"),
        }
    }
    Ok(Some((at, parts)))
}

/// `<kind><digits>\r\n` at the start of `buf`: the number and the line's length with its CRLF.
fn number_line(buf: &[u8], kind: u8) -> Result<Option<(usize, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != kind {
        bail!("expected {:?}, got {:?}", kind as char, first as char);
    }
    let Some(end) = buf.windows(2).take(24).position(|w| w == b"\r\n") else {
        if buf.len() >= 24 {
            bail!("a RESP header longer than 24 bytes");
        }
        return Ok(None);
    };
    let digits = std::str::from_utf8(&buf[1..end]).context("a RESP header is not text")?;
    let number = digits
        .parse::<usize>()
        .with_context(|| format!("a RESP header {digits:?} is not a count"))?;
    Ok(Some((number, end + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_parse_whole_and_wait_for_the_rest() {
        let push = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        let (used, parts) = parse_push(push).unwrap().unwrap();
        assert_eq!(used, push.len());
        assert_eq!(parts, [&b"message"[..], b"ch", b"hello"]);
        for cut in 0..push.len() {
            assert!(parse_push(&push[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let confirm = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
        let (used, parts) = parse_push(confirm).unwrap().unwrap();
        assert_eq!((used, parts[2]), (confirm.len(), &b"1"[..]));
    }

    #[test]
    fn garbage_is_an_error_not_a_wait() {
        assert!(parse_push(b"+OK\r\n").is_err());
        assert!(parse_push(b"*99\r\n").is_err());
        assert!(parse_push(b"*1\r\n$5\r\nhelloXY").is_err());
        assert!(parse_push(b"*1\r\n$99999999\r\n").is_err());
        assert!(parse_push(&[b'*'; 40]).is_err());
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&[b"PUBLISH", b"ch", b"hi"]),
            b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
    }
}
