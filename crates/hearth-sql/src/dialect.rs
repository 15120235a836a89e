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

    /// An `UPDATE` of `target` joined with a derived table `v` of `rows` rows of `?`s named
    /// `columns`: each matching row is updated with its own values in one statement.
    /// `filter`, if any, further restricts the rows updated; `on`, `set` and `filter` qualify
    /// the table's columns by `target` where `v` has a column of the same name.
    pub(crate) fn update_from_rows(
        self,
        target: &str,
        columns: &[&str],
        rows: usize,
        on: &str,
        set: &str,
        filter: Option<&str>,
    ) -> String {
        let first = columns
            .iter()
            .map(|c| format!("? AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rest = vec!["?"; columns.len()].join(", ");
        let mut v = format!("(SELECT {first}");
        for _ in 1..rows {
            v.push_str(" UNION ALL SELECT ");
            v.push_str(&rest);
        }
        v.push(')');
        match self {
            Backend::Sqlite => {
                let filter = filter.map(|f| format!(" AND {f}")).unwrap_or_default();
                format!("UPDATE {target} SET {set} FROM {v} AS v WHERE {on}{filter}")
            }
            Backend::MySql => {
                let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
                format!("UPDATE {target} JOIN {v} AS v ON {on} SET {set}{filter}")
            }
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

    /// The function giving the largest of its arguments.
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Backend::Sqlite => "MAX",
            Backend::MySql => "GREATEST",
        }
    }

    /// What ends a `SELECT` inside a write transaction that must see, and hold back, rows
    /// committed concurrently: MySQL's `FOR UPDATE` reads the latest rows and locks the range
    /// it scanned (inserts into it wait for the commit); SQLite's one writer needs nothing.
    pub(crate) fn locking_read(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::MySql => " FOR UPDATE",
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

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn update_from_rows_joins_a_table_of_placeholders() {
        let sql = |backend: Backend, filter| {
            backend.update_from_rows("t", &["a", "b"], 2, "t.id = v.a", "x = v.b", filter)
        };
        let rows = "(SELECT ? AS a, ? AS b UNION ALL SELECT ?, ?)";
        assert_eq!(
            sql(Backend::Sqlite, Some("t.x < v.b")),
            format!("UPDATE t SET x = v.b FROM {rows} AS v WHERE t.id = v.a AND t.x < v.b")
        );
        assert_eq!(
            sql(Backend::MySql, Some("t.x < v.b")),
            format!("UPDATE t JOIN {rows} AS v ON t.id = v.a SET x = v.b WHERE t.x < v.b")
        );
        assert_eq!(
            sql(Backend::MySql, None),
            format!("UPDATE t JOIN {rows} AS v ON t.id = v.a SET x = v.b")
        );
    }
}
