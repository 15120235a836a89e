//! Set-up shared by the store tests (each test binary uses part of it).
#![allow(dead_code)]

use hearth_core::model::{NewUser, User};
use hearth_core::store::Stores;
use hearth_sql::SqlStore;
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test of this run uses.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        hearth_core::now_ms() % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A migrated SQLite store in a fresh directory, removed by [`TempSqlite::close`].
pub struct TempSqlite {
    pub dir: PathBuf,
    /// The database file; its log is beside it (`-wal`).
    pub file: PathBuf,
    pub sql: SqlStore,
}

impl TempSqlite {
    pub async fn open(tag: &str) -> TempSqlite {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hearth.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let sql = SqlStore::open(&url).await.unwrap();
        TempSqlite { dir, file, sql }
    }

    pub fn wal(&self) -> PathBuf {
        self.dir.join("hearth.db-wal")
    }

    pub async fn close(self) {
        self.sql.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A user named `name`.
pub async fn user(stores: &Stores, name: &str) -> User {
    stores
        .users
        .insert_user(NewUser {
            username: name.into(),
            email: format!("{name}@example.com"),
            password_hash: "x".into(),
        })
        .await
        .unwrap()
}

/// The MySQL/MariaDB server of the tests: `HEARTH_TEST_MYSQL` (default
/// `mysql://root@127.0.0.1:3306`; unreachable fails, never skips).
pub fn mysql_base() -> String {
    std::env::var("HEARTH_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A migrated store in a fresh MySQL database, dropped by [`TempMySql::close`].
pub struct TempMySql {
    pub name: String,
    pub sql: SqlStore,
}

impl TempMySql {
    pub async fn open(tag: &str) -> TempMySql {
        let name = unique(tag);
        let url = format!("{}/{name}", mysql_base());
        let sql = SqlStore::open(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url} (is MariaDB running?): {e}"));
        TempMySql { name, sql }
    }

    /// A connection to the server, outside the store's pool.
    pub async fn admin() -> sqlx::MySqlConnection {
        sqlx::MySqlConnection::connect(&mysql_base()).await.unwrap()
    }

    pub async fn close(self) {
        self.sql.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE `{}`",
            self.name
        )))
        .execute(&mut Self::admin().await)
        .await
        .unwrap();
    }
}
