//! The seam between SQLite and MySQL: everything else is one `?`-placeholder dialect.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Some(Backend::MySql)
        } else {
            None
        }
    }

    /// Statements run on every new connection.
    pub(crate) fn session_setup(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 5000",
                "PRAGMA temp_store = MEMORY",
            ],
            Backend::MySql => &[
                "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            ],
        }
    }

    /// Statements run on each new connection of the SQLite writer pool, after
    /// [`Backend::session_setup`]: checkpoints are the checkpointer's job (see
    /// `checkpoints.rs`); the writer checkpoints itself only if the WAL grows past ~80 MB
    /// regardless, and a WAL that grew is cut back to 64 MB once it is checkpointed.
    pub(crate) fn writer_setup(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &[
                "PRAGMA wal_autocheckpoint = 20000",
                "PRAGMA journal_size_limit = 67108864",
            ],
            Backend::MySql => &[],
        }
    }

    /// Insert a room, or rename it when the slug exists.
    pub(crate) fn upsert_room(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "INSERT INTO conversations (kind, slug, name, created_ms) VALUES ('room', ?, ?, ?) \
                 ON CONFLICT (slug) DO UPDATE SET name = excluded.name"
            }
            Backend::MySql => {
                "INSERT INTO conversations (kind, slug, name, created_ms) VALUES ('room', ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE name = VALUES(name)"
            }
        }
    }

    /// `INSERT` that silently skips rows violating a unique key.
    pub(crate) fn insert_ignore(self) -> &'static str {
        match self {
            Backend::Sqlite => "INSERT OR IGNORE",
            Backend::MySql => "INSERT IGNORE",
        }
    }

    /// The id the connection's last `INSERT` generated (run inside the same transaction).
    pub(crate) fn last_insert_id(self) -> &'static str {
        match self {
            Backend::Sqlite => "SELECT last_insert_rowid()",
            Backend::MySql => "SELECT CAST(LAST_INSERT_ID() AS SIGNED)",
        }
    }
}
