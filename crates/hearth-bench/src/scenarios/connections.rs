//! `connections`: C idle authenticated sockets; what each costs the server in resident memory.
//!
//! Loopback connections to one server port are limited by the ephemeral port range (about
//! 28 000 per source address), so sockets are bound round-robin to 127.0.0.1, 127.0.0.2, …
//! before connecting: all of 127.0.0.0/8 is the loopback interface on Linux. Both this process
//! and the server need one descriptor per socket, so the soft fd limit is raised to the hard
//! one first, and the run refuses to start if C cannot fit.
//!
//! After the `hello`, a socket is held without being read: an idle client, and no client task
//! per socket, so the client's own footprint stays small.

use super::{CpuWindow, per_second};
use crate::Common;
use crate::client::{self, ConnectOptions};
use crate::procfs;
use crate::stats::{Histogram, Report, round3};
use anyhow::{Result, bail};
use futures_util::StreamExt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::time::Instant;

/// Descriptors kept free for everything else this process opens.
const SPARE_FDS: u64 = 64;
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
    let results: Vec<Result<(client::Ws, u64)>> = futures_util::stream::iter(0..args.connections)
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
                let mut ws = client::connect(&url, &token, options).await?;
                client::read_hello(&mut ws).await?;
                Ok((ws, client::now_ns() - begun))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let connect_secs = started.elapsed().as_secs_f64();

    let mut sockets = Vec::with_capacity(results.len());
    let mut latency = Histogram::default();
    let mut failures = 0u64;
    let mut problems = Vec::new();
    for result in results {
        match result {
            Ok((ws, ns)) => {
                latency.record(ns);
                sockets.push(ws);
            }
            Err(error) => {
                failures += 1;
                if problems.len() < 5 {
                    problems.push(format!("{error:#}"));
                }
            }
        }
    }
    eprintln!(
        "connections: {} open, {failures} failed; holding {}s",
        sockets.len(),
        args.hold
    );
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let rss_after = procfs::rss_bytes(pids)?;
    let open = sockets.len() as u64;

    let mut report = Report::new("connections", args.common.label.clone());
    report
        .param("connections", args.connections)
        .param("accounts", args.accounts)
        .param("source_ips", args.source_ips)
        .param("fd_limit", fd_limit)
        .result("open", open)
        .result("failed", failures)
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
    }
    if !problems.is_empty() {
        report.result("problems", problems);
    }
    cpu.finish(&mut report, connect_secs, open, "connect")?;
    drop(sockets);
    Ok(report)
}
