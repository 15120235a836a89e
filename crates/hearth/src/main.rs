//! `hearth`: the chat server binary (`serve`, `migrate`, `admin`).
//!
//! Configuration is layered, highest precedence first: command-line flags, `HEARTH_*`
//! environment variables (nested keys with `__`, e.g. `HEARTH_LIMITS__MAX_CONTENT_CHARS`), the
//! TOML file given by `--config`, then built-in defaults.

mod admin;
mod config;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;
use hearth_core::bus::Bus;
use hearth_nats::NatsBus;
use hearth_redis::{Redis, RedisBus, RedisLoginThrottle, RedisPresence};
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
    /// Operator tools (rooms, users, sessions, stats) run against the database directly.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    let fd_limit = raise_fd_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(fd_limit))
}

/// Every socket costs a descriptor, and many systems start services with a soft
/// `RLIMIT_NOFILE` of 1,024 under a hard limit hundreds of times higher: raised to the hard
/// limit (all an unprivileged process may do), as Go's runtime and nginx do, so the hard limit
/// is the one knob an operator turns (docs/operations.md). Returns the soft limit now in force.
fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// glibc gives each thread that allocates its own heap arena (up to 8 per core) and keeps
/// their freed memory: with tokio workers, SQLite worker threads and blocking threads, memory
/// freed after bursts of handshakes stayed spread over many arenas (docs/benchmarks.md, at the
/// same `dm` throughput with two). Two, set before any thread starts; `MALLOC_ARENA_MAX` in
/// the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

async fn run(fd_limit: std::io::Result<u64>) -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli.options)?;
    // The admin commands print their results on stdout: logs go to stderr there.
    init_logging(&config.log_format, matches!(cli.command, Command::Admin(_)));
    match cli.command {
        Command::Serve => {
            match fd_limit {
                Ok(limit) => tracing::info!(limit, "open file limit (each socket takes one)"),
                Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
            }
            serve(config).await
        }
        Command::Admin(command) => admin::run(&config, command).await,
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
            let login_throttle = Arc::new(RedisLoginThrottle::new(redis.clone()));
            let stores = hearth_redis::cluster_stores(sql.stores(), redis, config.stream_max_len);
            let cluster = Cluster {
                bus,
                presence,
                login_throttle: Some(login_throttle),
            };
            (stores, cluster)
        }
    };
    if config.redis.is_some() && config.files.store == "local" {
        // Each node would keep the bytes it received: a file uploaded through one node is
        // "not found" through the others unless the directory is shared.
        tracing::warn!(
            dir = %config.files_dir().display(),
            "cluster mode with files.store = \"local\": every node must see the same files \
             directory (a shared mount), or use an s3:// store"
        );
    }
    let server_config = config.server_config().context("opening the files store")?;
    let server = Server::start(stores, server_config, cluster)
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
        files = %config.files.store,
        "hearth is serving on http://{}", config.listen
    );
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: &str, to_stderr: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if to_stderr { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format == "json", to_stderr) {
        (true, false) => builder.json().init(),
        (true, true) => builder.json().with_writer(std::io::stderr).init(),
        (false, false) => builder.init(),
        (false, true) => builder.with_writer(std::io::stderr).init(),
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
