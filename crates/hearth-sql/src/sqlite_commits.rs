//! The SQLite commit thread's own connection (see `CommitQueue::start_sqlite` for why).
//!
//! It is a second connection writing to the file beside the writer pool's, and SQLite lets
//! one connection write at a time. Left to SQLite's lock alone the two are not fair: a
//! writer that finds the lock taken sleeps (milliseconds, growing), and a commit thread kept
//! busy by messages takes the lock again before the sleeper wakes, until other writes fail
//! with "database is locked" (`tests/writers.rs` saw it within seconds). So the commit thread
//! holds the writer pool's one connection through its transactions (and between them, for a
//! few milliseconds at most: [`TURN`]): that is the turn at the write lock, and the pool hands
//! it out first come, first served. Every write
//! transaction still begins `IMMEDIATE` (`begin_write`), and this connection keeps a busy
//! handler, for writers outside the process (`hearth admin`).

use crate::commits::{Append, Committer, store_together};
use crate::dialect::Backend;
use crate::statement::{BatchTx, Param, Statement};
use crate::{SqlError, store_error};
use hearth_core::StoreError;
use hearth_core::model::ChatMessage;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql, TransactionBehavior, params_from_iter};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use std::path::Path;
use std::time::{Duration, Instant};

/// Prepared statements kept: each row count of a multi-row statement is a statement of its
/// own, and a batch's counts vary with the load.
const STATEMENT_CACHE: usize = 256;

/// Polls of the busy handler, first every [`QUICK_POLL`], then every [`SLOW_POLL`]: ~5 s in
/// all, as `busy_timeout` on the pool's connections.
const QUICK_POLLS: i32 = 100;
const QUICK_POLL: Duration = Duration::from_micros(100);
const SLOW_POLLS: i32 = 5_000;
const SLOW_POLL: Duration = Duration::from_millis(1);

/// Opens the commit connection with the writer's settings.
pub(crate) fn open(file: &Path) -> Result<Connection, SqlError> {
    let connection = Connection::open(file)?;
    for pragma in Backend::Sqlite
        .session_setup()
        .iter()
        .chain(Backend::Sqlite.writer_setup())
    {
        connection.execute_batch(pragma)?;
    }
    // After the pragmas: `busy_timeout` replaces any handler.
    connection.busy_handler(Some(wait_for_the_lock))?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

fn wait_for_the_lock(polls: i32) -> bool {
    if polls < QUICK_POLLS {
        std::thread::sleep(QUICK_POLL);
        true
    } else if polls < QUICK_POLLS + SLOW_POLLS {
        std::thread::sleep(SLOW_POLL);
        true
    } else {
        false
    }
}

/// How long the commit thread keeps its turn over consecutive commits while appends keep
/// coming. Handing the pool's connection back costs a round trip to its thread (sqlx pings a
/// connection that comes back), so it goes back when no append came for a moment
/// (`commits::IDLE`), or after this long for a writer that may be waiting for it.
const TURN: Duration = Duration::from_millis(5);

pub(crate) struct SqliteCommitter {
    connection: Connection,
    /// The writer pool: its one connection is the turn at the write lock.
    turns: AnyPool,
    /// The turn while it is held, and since when.
    turn: Option<(PoolConnection<Any>, Instant)>,
}

impl SqliteCommitter {
    pub(crate) fn new(connection: Connection, turns: AnyPool) -> SqliteCommitter {
        SqliteCommitter {
            connection,
            turns,
            turn: None,
        }
    }
}

impl Committer for SqliteCommitter {
    async fn commit_together(
        &mut self,
        batch: &[Append],
    ) -> Result<Vec<Vec<ChatMessage>>, StoreError> {
        if self
            .turn
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= TURN)
        {
            self.turn = None;
        }
        if self.turn.is_none() {
            let turn = self.turns.acquire().await.map_err(store_error)?;
            self.turn = Some((turn, Instant::now()));
        }
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        // Every statement below runs to completion when called: nothing here waits.
        let stored = store_together(&mut Tx(&tx), Backend::Sqlite, batch).await?;
        // Dropped without a commit, the transaction rolls back.
        tx.commit().map_err(sqlite_error)?;
        Ok(stored)
    }

    fn pause(&mut self) {
        self.turn = None;
    }
}

struct Tx<'c>(&'c Connection);

impl BatchTx for Tx<'_> {
    async fn execute(&mut self, statement: &Statement<'_>) -> Result<(), StoreError> {
        let mut prepared = self
            .0
            .prepare_cached(&statement.sql)
            .map_err(sqlite_error)?;
        prepared
            .execute(params_from_iter(&statement.params))
            .map_err(sqlite_error)?;
        Ok(())
    }

    async fn fetch_triples(
        &mut self,
        statement: &Statement<'_>,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let mut prepared = self
            .0
            .prepare_cached(&statement.sql)
            .map_err(sqlite_error)?;
        let rows = prepared
            .query_map(params_from_iter(&statement.params), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(sqlite_error)?;
        rows.collect::<Result<_, _>>().map_err(sqlite_error)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Int(Some(value)) => ValueRef::Integer(value),
            Param::Text(Some(value)) => ValueRef::Text(value.as_bytes()),
            Param::Int(None) | Param::Text(None) => ValueRef::Null,
        }))
    }
}

/// A locked database means "unavailable, try again" (as a pool timeout does on sqlx's side);
/// anything else is a backend error, which sends the batch down the savepoint path.
fn sqlite_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Backend(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_bind_as_sqlite_values() {
        let connection = Connection::open_in_memory().unwrap();
        let mut select = Statement::new("SELECT ?, ?, ?, ?".into());
        select
            .bind(7_i64)
            .bind("text")
            .bind(None::<i64>)
            .bind(None::<&str>);
        let row: (i64, String, Option<i64>, Option<String>) = connection
            .query_row(&select.sql, params_from_iter(&select.params), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap();
        assert_eq!(row, (7, "text".into(), None, None));
    }

    #[test]
    fn the_lock_is_waited_for_about_five_seconds() {
        assert!(wait_for_the_lock(0));
        assert!(wait_for_the_lock(QUICK_POLLS + SLOW_POLLS - 1));
        assert!(!wait_for_the_lock(QUICK_POLLS + SLOW_POLLS));
        let waited = QUICK_POLL * QUICK_POLLS as u32 + SLOW_POLL * SLOW_POLLS as u32;
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(6));
    }
}
