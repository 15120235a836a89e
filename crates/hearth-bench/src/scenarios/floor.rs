//! `floor`: what the kernel alone charges for the steady fan-out's writes on this machine.
//!
//! At 50 messages/s the messages are 20 ms apart, so a server can join nothing: each delivery
//! is one `write` to one socket. On loopback that write also runs the receiving socket's TCP
//! input and wakes its reader, all charged to the writer. This scenario measures that cost
//! with nothing else around it: one thread writes `--payload` bytes to each of N loopback
//! sockets per pass, `--rate` passes a second, and reads its own CPU time from
//! `/proc/thread-self/stat`; readers in this process drain the sockets as the fan-out's
//! clients do. A server's CPU per delivery cannot go below this figure on the same machine,
//! so it is the yardstick for `fanout`'s (measured within the same hour).

use super::per_second;
use crate::procfs;
use crate::stats::{Histogram, Report, round3};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A free-form label copied into the report.
    #[arg(long)]
    label: Option<String>,
    /// Sockets written to in each pass.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Passes per second (one write per socket each).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Bytes per write: `fanout` reports its frames' size as `frame_bytes`.
    #[arg(long, default_value_t = 230)]
    payload: usize,
    /// Seconds to wait for the readers to take every byte.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
}

/// What the writer thread did.
struct Written {
    writes: u64,
    bytes: u64,
    /// Writes the kernel refused or cut short (its send buffer was full): should be 0.
    short: u64,
    /// The writer thread's own user and system seconds over the passes.
    user_s: f64,
    system_s: f64,
    /// How long each pass over every socket took.
    passes: Histogram,
    secs: f64,
}

pub async fn run(args: &Args) -> Result<Report> {
    if args.connections == 0 || args.rate <= 0.0 || args.duration <= 0.0 || args.payload == 0 {
        bail!("need --connections, --rate, --duration and --payload above 0");
    }
    let limit = procfs::raise_fd_limit()?;
    if (args.connections as u64) * 2 + 64 > limit {
        bail!(
            "{} sockets need {} descriptors here (both ends); the limit is {limit}",
            args.connections,
            args.connections * 2
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let addr = listener.local_addr()?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let plan = (args.connections, args.rate, args.duration, args.payload);
    let writer = std::thread::Builder::new()
        .name("floor-writer".into())
        .spawn(move || write_passes(listener, plan, ready_tx, go_rx))?;

    eprintln!("floor: connecting {} sockets", args.connections);
    let streams: Vec<tokio::net::TcpStream> = futures_util::stream::iter(0..args.connections)
        .map(|_| connect(addr))
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    tokio::task::spawn_blocking(move || ready_rx.recv())
        .await?
        .context("the writer thread ended before accepting")??;

    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(drain_socket(stream, received.clone(), stop_rx.clone())))
        .collect();
    eprintln!(
        "floor: writing {} bytes to each socket {} times a second for {}s",
        args.payload, args.rate, args.duration
    );
    go_tx.send(()).ok();
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;

    let drain_end = Instant::now() + Duration::from_secs_f64(args.drain);
    while received.load(Ordering::Relaxed) < written.bytes && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    for reader in readers {
        reader.await.context("a reader task failed")?;
    }

    let cpu = written.user_s + written.system_s;
    let mut report = Report::new("floor", args.label.clone());
    report
        .param("connections", args.connections)
        .param("rate", args.rate)
        .param("duration_s", args.duration)
        .param("payload", args.payload)
        .result("writes", written.writes)
        .result("writes_per_s", per_second(written.writes, written.secs))
        .result("short_writes", written.short)
        .result("bytes_written", written.bytes)
        .result("bytes_received", received.load(Ordering::Relaxed))
        .result("writer_cpu_s", round3(cpu))
        .result("writer_user_s", round3(written.user_s))
        .result("writer_sys_s", round3(written.system_s))
        .result(
            "writer_cpu_us_per_write",
            round3(cpu * 1e6 / written.writes.max(1) as f64),
        )
        .result("pass_ms", written.passes.summary_ms());
    Ok(report)
}

async fn connect(addr: SocketAddr) -> Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    Ok(stream)
}

/// Reads a socket until told to stop, counting bytes (what a fan-out client's read costs the
/// kernel, without the decoding).
async fn drain_socket(
    mut stream: tokio::net::TcpStream,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 8192];
    loop {
        let read = tokio::select! {
            biased;
            _ = stop.changed() => return,
            read = stream.read(&mut buf) => read,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread: accepts every socket, says it is ready, waits for the go, then writes
/// the passes and measures its own CPU time around them.
fn write_passes(
    listener: TcpListener,
    (connections, rate, duration, payload): (usize, f64, f64, usize),
    ready: mpsc::Sender<Result<()>>,
    go: mpsc::Receiver<()>,
) -> Result<Written> {
    let accepted = (0..connections)
        .map(|_| {
            let (stream, _) = listener.accept()?;
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
            Ok(stream)
        })
        .collect::<std::io::Result<Vec<TcpStream>>>()
        .context("accepting the readers' sockets");
    let mut sockets = match accepted {
        Ok(sockets) => {
            ready.send(Ok(())).ok();
            sockets
        }
        Err(error) => {
            ready.send(Err(anyhow::anyhow!("{error:#}"))).ok();
            return Err(error);
        }
    };
    go.recv().context("the run was abandoned")?;

    let message = vec![b'x'; payload];
    let interval = Duration::from_secs_f64(1.0 / rate);
    let passes_planned = (rate * duration).round().max(1.0) as u64;
    let mut written = Written {
        writes: 0,
        bytes: 0,
        short: 0,
        user_s: 0.0,
        system_s: 0.0,
        passes: Histogram::default(),
        secs: 0.0,
    };
    let (user_start, system_start) = procfs::own_thread_user_system_seconds()?;
    let started = Instant::now();
    let mut next = started;
    for _ in 0..passes_planned {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let pass = Instant::now();
        for socket in &mut sockets {
            match socket.write(&message) {
                Ok(n) => {
                    written.bytes += n as u64;
                    if n == payload {
                        written.writes += 1;
                    } else {
                        written.short += 1;
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => written.short += 1,
                Err(error) => return Err(error).context("writing to a reader's socket"),
            }
        }
        written.passes.record(pass.elapsed().as_nanos() as u64);
        next += interval;
    }
    written.secs = started.elapsed().as_secs_f64();
    let (user_end, system_end) = procfs::own_thread_user_system_seconds()?;
    written.user_s = user_end - user_start;
    written.system_s = system_end - system_start;
    Ok(written)
}
