//! Upload records and the access rule for reading them.

use crate::{SqlStore, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::files::{FileRecord, FileStore};

const FILE_COLUMNS: &str = "f.id, f.uploader_id, f.name, f.size, f.content_type, f.sha256, \
     f.width, f.height, f.thumbnail_sha256, f.created_ms";

type FileRow = (
    String,
    i64,
    String,
    i64,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

fn file(row: FileRow) -> FileRecord {
    FileRecord {
        id: row.0,
        uploader_id: row.1,
        name: row.2,
        size: row.3,
        content_type: row.4,
        sha256: row.5,
        width: row.6,
        height: row.7,
        thumbnail_sha256: row.8,
        created_ms: row.9,
    }
}

/// Most ids bound in one `IN (...)` list: well under every placeholder limit.
const IDS_PER_QUERY: usize = 200;

#[async_trait]
impl FileStore for SqlStore {
    async fn insert_file(&self, f: &FileRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO files (id, uploader_id, name, size, content_type, sha256, width, height, \
             thumbnail_sha256, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(f.id.as_str())
        .bind(f.uploader_id)
        .bind(f.name.as_str())
        .bind(f.size)
        .bind(f.content_type.as_str())
        .bind(f.sha256.as_str())
        .bind(f.width)
        .bind(f.height)
        .bind(f.thumbnail_sha256.as_deref())
        .bind(f.created_ms)
        .execute(&self.write)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn readable_file(&self, id: &str, user: i64) -> Result<Option<FileRecord>, StoreError> {
        // The uploader, or any message referencing the file that is not recalled, in a room
        // (public to every user) or in a conversation the user is a member of, sent after
        // they joined. ix_messages_file keeps the EXISTS to the file's own messages.
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files f WHERE f.id = ? AND (f.uploader_id = ? OR EXISTS (\
               SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conversation_id \
               LEFT JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = ? \
               WHERE m.file_id = f.id AND m.recalled = 0 AND (c.kind = 'room' OR \
                 (mb.user_id IS NOT NULL AND c.dissolved = 0 AND m.seq > mb.joined_seq))))"
        );
        let row = sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(user)
            .bind(user)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        Ok(row.map(file))
    }

    async fn files(&self, ids: &[String]) -> Result<Vec<FileRecord>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            // Only placeholders are spliced in: no data in the SQL text.
            let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.id IN ({placeholders})");
            let mut query = sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query.fetch_all(&self.read).await.map_err(store_error)?;
            found.extend(rows.into_iter().map(file));
        }
        Ok(found)
    }
}
