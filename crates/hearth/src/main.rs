//! `hearth`: the chat server binary.
//!
//! Configuration is layered, highest precedence first: command-line flags, `HEARTH_*`
//! environment variables (nested keys with `__`, e.g. `HEARTH_LIMITS__MAX_CONTENT_CHARS`), the
//! TOML file given by `--config`, then built-in defaults.

mod config;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;
use hearth_core::bus::Bus;
use hearth_nats::NatsBus;
use hearth_redis::{Redis, RedisBus, RedisPresence};
use hearth_server::Cluster;
use hearth_server::Server;
use hearth_sql::SqlStore;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "A real-time chat and instant-messaging server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    options: config::Flags,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrating the database first).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli.options)?;
    init_logging(&config.log_format);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = SqlStore::open(&config.database_url()?).await?;
            store.close().await;
            println!("database is up to date");
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let database = config.database_url()?;
    let sql = SqlStore::open(&database)
        .await
        .with_context(|| format!("opening the database {}", config::redact(&database)))?;
    let (stores, cluster) = match &config.redis {
        None => (sql.stores(), Cluster::embedded()),
        Some(url) => {
            let redis = Redis::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("connecting to Redis at {}", config::redact(url)))?;
            let ttl = Duration::from_secs(config.node_ttl_secs);
            let presence = RedisPresence::start(redis.clone(), ttl)
                .await
                .context("registering this node in Redis")?;
            let bus: Arc<dyn Bus> = match config.bus.as_deref() {
                Some(nats) if nats.starts_with("nats://") => Arc::new(
                    NatsBus::connect(nats, &config.redis_prefix)
                        .await
                        .with_context(|| {
                            format!("connecting to NATS at {}", config::redact(nats))
                        })?,
                ),
                Some(other) => Arc::new(RedisBus::connect(other, &config.redis_prefix).await?),
                None => Arc::new(RedisBus::connect(url, &config.redis_prefix).await?),
            };
            let stores = hearth_redis::cluster_stores(sql.stores(), redis, config.stream_max_len);
            (stores, Cluster { bus, presence })
        }
    };
    let server = Server::start(stores, config.server_config(), cluster)
        .await
        .context("starting the server")?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        database = %config::redact(&database),
        redis = config.redis.as_deref().map(config::redact).unwrap_or_default(),
        bus = config.bus.as_deref().map(config::redact).unwrap_or_default(),
        "hearth is serving on http://{}", config.listen
    );
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
