//! Statements as data: SQL text and the values bound to its `?`s.
//!
//! The commit path runs the same statements through two drivers: sqlx (MySQL, and every
//! other SQLite write) and the SQLite commit thread's own connection (`sqlite_commits.rs`).
//! Building a statement once as a [`Statement`] keeps the SQL and the order of its values in
//! one place for both; [`BatchTx`] is what runs them.

use crate::store_error;
use hearth_core::StoreError;
use sqlx::{Any, AnyConnection, Row};

/// One value bound to a `?`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(Some(value))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(value: Option<i64>) -> Self {
        Param::Int(value)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Param::Text(value)
    }
}

/// SQL text with a value for each of its `?`s, in order.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    /// Built by this crate from constant fragments and placeholders only: no data.
    pub(crate) sql: String,
    pub(crate) params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: String) -> Statement<'a> {
        Statement {
            sql,
            params: Vec::new(),
        }
    }

    pub(crate) fn bind(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(value.into());
        self
    }

    fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str()));
        for param in &self.params {
            query = match *param {
                Param::Int(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
            };
        }
        query
    }
}

/// Where statements run: a sqlx connection (inside a transaction: a `Transaction` derefs to
/// its connection), or the SQLite commit thread's own transaction (`sqlite_commits.rs`).
pub(crate) trait BatchTx {
    async fn execute(&mut self, statement: &Statement<'_>) -> Result<(), StoreError>;
    /// Every row's three integer columns.
    async fn fetch_triples(
        &mut self,
        statement: &Statement<'_>,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError>;
}

impl BatchTx for AnyConnection {
    async fn execute(&mut self, statement: &Statement<'_>) -> Result<(), StoreError> {
        statement
            .query()
            .execute(&mut *self)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn fetch_triples(
        &mut self,
        statement: &Statement<'_>,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let rows = statement
            .query()
            .fetch_all(&mut *self)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }
}
