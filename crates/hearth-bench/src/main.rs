//! `hearth-bench`: a bounded load generator for Hearth, loopback only.
//!
//! Each subcommand is one scenario. It creates its own users, drives a local server for a
//! fixed duration or message count, stops by itself, and prints one JSON line on stdout (for
//! `scripts/bench.sh`) and a readable table on stderr.

mod client;
mod procfs;
mod scenarios;
mod stats;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use scenarios::{connections, dm, fanout, floor, history, login, redis_fanout};

#[derive(Parser)]
#[command(
    name = "hearth-bench",
    version,
    about = "Load generator for a local Hearth server"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N sockets in one room, S of them sending: delivery rate, latency, loss, CPU/delivery.
    Fanout(fanout::Args),
    /// P pairs of friends exchanging direct messages: acked sends/s and ack latency.
    Dm(dm::Args),
    /// C idle authenticated sockets: server RSS per connection.
    Connections(connections::Args),
    /// Fill a room, then page back through its history: latency per page.
    History(history::Args),
    /// Sign-ups and logins per second with the real password hashing.
    Login(login::Args),
    /// The steady fan-out on Redis pub/sub, the targets' reference, by the same method.
    RedisFanout(redis_fanout::Args),
    /// A bare writer's CPU per loopback write: the floor under `fanout`'s CPU per delivery.
    Floor(floor::Args),
}

/// Options every scenario takes.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// Base URL of a node; repeat to spread clients over several nodes (fanout, dm).
    #[arg(long = "url", default_value = "http://127.0.0.1:3000")]
    pub urls: Vec<String>,
    /// Server process id(s) whose CPU time and RSS to read from /proc (summed).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// A free-form label copied into the report (e.g. `embedded`, `cluster`).
    #[arg(long)]
    pub label: Option<String>,
}

impl Common {
    /// Refuses anything but loopback targets: this tool must never load another machine.
    fn check(&self) -> Result<()> {
        for url in &self.urls {
            let parsed = reqwest::Url::parse(url)?;
            let host = parsed.host_str().unwrap_or_default();
            let loopback = host == "localhost"
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback || parsed.scheme() != "http" {
                bail!("--url {url}: only http:// loopback addresses are allowed");
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    client::now_ns(); // start the shared clock
    let report = match &cli.scenario {
        Scenario::Fanout(args) => {
            args.common.check()?;
            fanout::run(args).await?
        }
        Scenario::Dm(args) => {
            args.common.check()?;
            dm::run(args).await?
        }
        Scenario::Connections(args) => {
            args.common.check()?;
            connections::run(args).await?
        }
        Scenario::History(args) => {
            args.common.check()?;
            history::run(args).await?
        }
        Scenario::Login(args) => {
            args.common.check()?;
            login::run(args).await?
        }
        Scenario::RedisFanout(args) => redis_fanout::run(args).await?,
        Scenario::Floor(args) => floor::run(args).await?,
    };
    let command = std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("{}", report.table());
    println!("{}", report.to_json(&command));
    Ok(())
}
