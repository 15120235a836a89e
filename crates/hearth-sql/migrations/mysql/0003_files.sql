-- File attachments. Bytes live in the blob store under their SHA-256 (stored once however
-- often they are uploaded); each upload is its own row with a random 128-bit hex id.
CREATE TABLE files (
    id               CHAR(32)     NOT NULL PRIMARY KEY,
    uploader_id      BIGINT       NOT NULL,
    name             VARCHAR(255) NOT NULL,
    size             BIGINT       NOT NULL,
    content_type     VARCHAR(127) NOT NULL,
    sha256           CHAR(64)     NOT NULL,
    -- images only (type recognized from the bytes)
    width            BIGINT       NULL,
    height           BIGINT       NULL,
    thumbnail_sha256 CHAR(64)     NULL,
    created_ms       BIGINT       NOT NULL,
    -- Which records use a blob (for deleting unused blobs later).
    KEY ix_files_sha256 (sha256),
    KEY ix_files_uploader (uploader_id),
    CONSTRAINT fk_files_uploader FOREIGN KEY (uploader_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The upload an image, file or voice message carries. Indexed: the access check of a
-- download looks for messages referencing the file.
ALTER TABLE messages
    ADD COLUMN file_id CHAR(32) NULL,
    ADD KEY ix_messages_file (file_id),
    ADD CONSTRAINT fk_messages_file FOREIGN KEY (file_id) REFERENCES files (id);
