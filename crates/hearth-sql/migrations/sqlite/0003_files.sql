-- File attachments. Bytes live in the blob store under their SHA-256 (stored once however
-- often they are uploaded); each upload is its own row with a random 128-bit hex id.
CREATE TABLE files (
    id               TEXT    PRIMARY KEY,
    uploader_id      INTEGER NOT NULL REFERENCES users (id),
    name             TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    content_type     TEXT    NOT NULL,
    sha256           TEXT    NOT NULL,
    -- images only (type recognized from the bytes)
    width            INTEGER,
    height           INTEGER,
    thumbnail_sha256 TEXT,
    created_ms       INTEGER NOT NULL
) WITHOUT ROWID;
-- Which records use a blob (for deleting unused blobs later).
CREATE INDEX ix_files_sha256 ON files (sha256);
CREATE INDEX ix_files_uploader ON files (uploader_id);

-- The upload an image, file or voice message carries. Indexed: the access check of a
-- download looks for messages referencing the file.
ALTER TABLE messages ADD COLUMN file_id TEXT REFERENCES files (id);
CREATE INDEX ix_messages_file ON messages (file_id);
