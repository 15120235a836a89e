//! SQL storage for Hearth: SQLite in embedded mode, MySQL/MariaDB in cluster mode.
//!
//! One code path serves both through sqlx's `Any` driver with runtime queries and `?`
//! placeholders. The few places where the dialects differ live in [`dialect`]. Migrations are
//! per backend (`migrations/sqlite`, `migrations/mysql`) and embedded in the binary.
//!
//! SQLite gets a pool of readers and two writers: the commit thread's own connection, which
//! stores messages (`commits.rs`, `sqlite_commits.rs`), and a one-connection pool for every
//! other write. WAL lets readers run beside the writer; the two writers take turns, each write
//! transaction beginning `IMMEDIATE` ([`begin_write`]). Writes are `synchronous=FULL`, so a
//! commit that returned is on disk.

mod admin;
mod checkpoints;
mod commits;
mod conversations;
mod dialect;
mod feed;
mod files;
mod inbox;
mod messages;
mod sessions;
mod social;
mod sqlite_commits;
mod statement;
mod transcripts;
mod users;

pub use dialect::Backend;

use hearth_core::StoreError;
use hearth_core::store::Stores;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// How long a request waits for a connection before failing with "unavailable": a database
/// that is down must produce a clear error quickly, not a hung request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("unsupported database URL {0:?} (use sqlite://PATH or mysql://USER@HOST/DB)")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("starting the commit thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("opening the commit connection: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A connected SQL store; implements every store trait of the core.
#[derive(Clone)]
pub struct SqlStore {
    backend: Backend,
    /// Transactions that write messages. A single connection for SQLite.
    write: AnyPool,
    /// Everything else.
    read: AnyPool,
    /// Appends from every conversation share commits (see `commits.rs`).
    commits: Arc<commits::CommitQueue>,
}

impl SqlStore {
    /// Connects (creating the database if it does not exist yet) without migrating.
    pub async fn connect(url: &str) -> Result<SqlStore, SqlError> {
        install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| SqlError::UnsupportedUrl(url.into()))?;
        if !Any::database_exists(url).await? {
            Any::create_database(url).await?;
        }
        let options = |extra: &'static [&'static str]| {
            AnyPoolOptions::new()
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // A ping before each use guards against a database server that went away;
                // a SQLite file cannot, and the ping cost every commit a round trip to the
                // connection's thread.
                .test_before_acquire(backend == Backend::MySql)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        for pragma in backend.session_setup().iter().chain(extra) {
                            conn.execute(*pragma).await?;
                        }
                        Ok(())
                    })
                })
        };
        let store = match backend {
            Backend::Sqlite => {
                let write = options(backend.writer_setup())
                    .max_connections(1)
                    .connect(url)
                    .await?;
                let read = options(&[]).max_connections(8).connect(url).await?;
                let checkpoints = checkpoints::Checkpointer::start(read.clone(), write.clone());
                SqlStore {
                    backend,
                    commits: Arc::new(commits::CommitQueue::start_sqlite(
                        &sqlite_file(url)?,
                        write.clone(),
                        checkpoints,
                    )?),
                    write,
                    read,
                }
            }
            Backend::MySql => {
                let pool = options(&[]).max_connections(32).connect(url).await?;
                SqlStore {
                    backend,
                    commits: Arc::new(commits::CommitQueue::start_mysql(pool.clone())),
                    write: pool.clone(),
                    read: pool,
                }
            }
        };
        Ok(store)
    }

    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<SqlStore, SqlError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), SqlError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::MySql => &MYSQL_MIGRATIONS,
        };
        migrator.run(&self.write).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The store as the core's trait objects.
    pub fn stores(self) -> Stores {
        let shared = Arc::new(self);
        Stores {
            users: shared.clone(),
            sessions: shared.clone(),
            messages: shared.clone(),
            social: shared.clone(),
            conversations: shared.clone(),
            inbox: shared.clone(),
            feed: shared.clone(),
            admin: shared.clone(),
            files: shared.clone(),
            transcriptions: shared,
        }
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// A write transaction on the writer pool (see [`begin_write`]).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        begin_write(&self.write, self.backend).await
    }
}

/// A write transaction. On SQLite it begins `IMMEDIATE`: it waits for the write lock first,
/// so it cannot fail at its first write because the other writer (the commit thread)
/// committed after it began reading.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, Any>, StoreError> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::MySql => pool.begin().await,
    }
    .map_err(store_error)
}

/// The file a `sqlite:` URL names; an in-memory database cannot be shared by the commit
/// thread's connection and the pools.
fn sqlite_file(url: &str) -> Result<std::path::PathBuf, SqlError> {
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
        return Err(SqlError::UnsupportedUrl(url.into()));
    }
    Ok(file.to_path_buf())
}

/// `rows` tuples of `width` placeholders, `(?, ?), (?, ?)`, for a multi-row `VALUES` list: the
/// only thing multi-row statements format into their SQL text.
pub(crate) fn value_tuples(rows: usize, width: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    vec![tuple; rows].join(", ")
}

/// Connection trouble means "unavailable, try again"; anything else is a backend error.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_tuples_lists_rows_of_placeholders() {
        assert_eq!(super::value_tuples(1, 2), "(?, ?)");
        assert_eq!(super::value_tuples(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
