//! `connections`: C idle authenticated sockets; what each costs the server in resident memory.
//!
//! Loopback connections to one server port are limited by the ephemeral port range (about
//! 28 000 per source address), so sockets are bound round-robin to 127.0.0.1, 127.0.0.2, …
//! before connecting: all of 127.0.0.0/8 is the loopback interface on Linux. Both this process
//! and the server need one descriptor per socket, so the soft fd limit is raised to the hard
//! one first, and the run refuses to start if C cannot fit.
//!
//! After the `hello`, each socket is only read: that answers the server's pings, as any
//! WebSocket client does (the server closes a socket it has not heard from for
//! `limits.idle_timeout_secs`, 75 s), and notices a socket the server closed.
//!
//! What a socket costs is measured twice: over all of them (RSS after − before, ÷ C), and
//! over the second half alone (RSS after − RSS at C/2, ÷ C/2), which is the marginal cost once
//! whatever the heap held free before the run (memory freed by the sign-ups' password hashing,
//! say) has been used up. And the server is asked how many sockets it holds
//! (`hearth_connections_open` on `/metrics`), so that sockets it dropped cannot pass as held.

use super::{CpuWindow, per_second};
use crate::Common;
use crate::client::{self, ConnectOptions};
use crate::procfs;
use crate::stats::{Histogram, Report, round3};
use anyhow::{Result, bail};
use futures_util::StreamExt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Descriptors kept free for everything else this process opens.
const SPARE_FDS: u64 = 64;
/// Attempts after a socket is closed with 1013 ("try again later"), pausing 0.5 s, 1 s, …
const TRY_LATER_RETRIES: u32 = 8;
const TRY_LATER_PAUSE: Duration = Duration::from_millis(500);
/// A small read buffer is enough for idle sockets (it grows if a big frame arrives).
const IDLE_READ_BUFFER: usize = 4096;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Sockets to open and hold.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Accounts the sockets are spread over.
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// Source addresses 127.0.0.1 ..= 127.0.0.<k> to spread sockets over.
    #[arg(long, default_value_t = 4)]
    source_ips: u8,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to hold all sockets open before measuring the server's memory.
    #[arg(long, default_value_t = 3.0)]
    hold: f64,
}

pub async fn run(args: &Args) -> Result<Report> {
    let fd_limit = procfs::raise_fd_limit()?;
    if args.connections as u64 + SPARE_FDS > fd_limit {
        bail!(
            "--connections {} needs more descriptors than this process may have ({fd_limit}); \
             raise the hard limit (ulimit -Hn) or open fewer",
            args.connections
        );
    }
    if args.source_ips == 0 {
        bail!("--source-ips must be at least 1");
    }
    let tag = client::run_tag();
    let urls = &args.common.urls;
    let accounts = client::create_accounts(urls, &tag, "c", args.accounts.max(1), 4).await?;
    let pids = &args.common.server_pids;
    // Let the server settle after the sign-ups before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = procfs::rss_bytes(pids)?;

    eprintln!(
        "connections: opening {} sockets from {} source addresses",
        args.connections, args.source_ips
    );
    let cpu = CpuWindow::start(pids)?;
    let started = Instant::now();
    let half = args.connections / 2;
    let closed = Arc::new(AtomicU64::new(0));
    let mut opened = Opened::default();
    open_sockets(args, &accounts, 0..half, &closed, &mut opened).await;
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let rss_half = procfs::rss_bytes(pids)?;
    let open_half = opened.open;
    open_sockets(
        args,
        &accounts,
        half..args.connections,
        &closed,
        &mut opened,
    )
    .await;
    let connect_secs = started.elapsed().as_secs_f64() - args.hold;
    let Opened {
        open,
        failures,
        retried,
        latency,
        problems,
    } = opened;
    eprintln!(
        "connections: {open} open, {failures} failed; holding {}s",
        args.hold
    );
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let rss_after = procfs::rss_bytes(pids)?;
    let closed_by_server = closed.load(Ordering::Relaxed);
    let server_open = server_sockets_open(&args.common.urls).await;

    let mut report = Report::new("connections", args.common.label.clone());
    report
        .param("connections", args.connections)
        .param("accounts", args.accounts)
        .param("source_ips", args.source_ips)
        .param("fd_limit", fd_limit)
        .result("open", open)
        .result("failed", failures)
        .result("retried_after_try_later", retried)
        .result("closed_by_server_while_held", closed_by_server)
        .result("server_sockets_open", server_open)
        .result("connect_s", round3(connect_secs))
        .result("connects_per_s", per_second(open, connect_secs))
        .result("connect_latency_ms", latency.summary_ms());
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report
            .result("server_rss_before_mib", round3(before as f64 / 1048576.0))
            .result("server_rss_after_mib", round3(after as f64 / 1048576.0));
        if open > 0 {
            let per = after.saturating_sub(before) as f64 / open as f64 / 1024.0;
            report.result("server_rss_per_connection_kib", round3(per));
        }
        if let Some(mid) = rss_half
            && open > open_half
        {
            let per = after.saturating_sub(mid) as f64 / (open - open_half) as f64 / 1024.0;
            report.result("server_rss_per_connection_kib_second_half", round3(per));
        }
    }
    if !problems.is_empty() {
        report.result("problems", problems);
    }
    cpu.finish(&mut report, connect_secs, open, "connect")?;
    Ok(report)
}

/// What the sockets opened so far came to.
#[derive(Default)]
struct Opened {
    open: u64,
    failures: u64,
    retried: u64,
    latency: Histogram,
    problems: Vec<String>,
}

/// Opens the sockets numbered `range` (each is read by a task of its own until the server
/// closes it, which counts in `closed`) and adds how it went to `opened`.
async fn open_sockets(
    args: &Args,
    accounts: &[client::Account],
    range: std::ops::Range<usize>,
    closed: &Arc<AtomicU64>,
    opened: &mut Opened,
) {
    let urls = &args.common.urls;
    let results: Vec<Result<(client::Ws, u64, u32)>> = futures_util::stream::iter(range)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            let token = accounts[i % accounts.len()].token.clone();
            let options = ConnectOptions {
                bind: Some(IpAddr::V4(Ipv4Addr::new(
                    127,
                    0,
                    0,
                    1 + (i % usize::from(args.source_ips)) as u8,
                ))),
                read_buffer: Some(IDLE_READ_BUFFER),
                platform: None,
            };
            async move {
                let begun = client::now_ns();
                let mut retries = 0;
                loop {
                    let attempt = async {
                        let mut ws = client::connect(&url, &token, options).await?;
                        client::read_hello(&mut ws).await?;
                        anyhow::Ok(ws)
                    };
                    match attempt.await {
                        Ok(ws) => return Ok((ws, client::now_ns() - begun, retries)),
                        // An overloaded server says "try again later" (1013): a client retries
                        // after a pause, and the latency counts from the first attempt.
                        Err(error)
                            if retries < TRY_LATER_RETRIES
                                && error
                                    .downcast_ref::<client::ServerClosed>()
                                    .is_some_and(client::ServerClosed::is_try_later) =>
                        {
                            retries += 1;
                            tokio::time::sleep(TRY_LATER_PAUSE * retries).await;
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    for result in results {
        match result {
            Ok((mut ws, ns, retries)) => {
                opened.latency.record(ns);
                opened.retried += u64::from(retries > 0);
                opened.open += 1;
                // Reading answers pings; the socket ends when the server closes it (or when
                // the runtime is dropped at the end of the run).
                let closed = closed.clone();
                tokio::spawn(async move {
                    while let Some(Ok(_)) = ws.next().await {}
                    closed.fetch_add(1, Ordering::Relaxed);
                });
            }
            Err(error) => {
                opened.failures += 1;
                if opened.problems.len() < 5 {
                    opened.problems.push(format!("{error:#}"));
                }
            }
        }
    }
}

/// The sockets the servers say they hold: the sum of `hearth_connections_open` on each
/// node's `/metrics`, or None when a node does not answer (metrics off, say).
async fn server_sockets_open(urls: &[String]) -> Option<f64> {
    let mut total = 0.0;
    for url in urls {
        total += client::Http::new(url)
            .ok()?
            .metric_sum("hearth_connections_open")
            .await
            .ok()?;
    }
    Some(total)
}
