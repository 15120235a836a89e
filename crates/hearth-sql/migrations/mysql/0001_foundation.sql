-- Accounts, sessions, conversations (public rooms for now) and their messages.
-- utf8mb4_bin everywhere: emoji and CJK store as-is and comparisons are exact (case folding is
-- done by the application in username_key / email).
CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(100) NOT NULL,
    username_key  VARCHAR(255) NOT NULL,
    email         VARCHAR(100) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_ms    BIGINT       NOT NULL,
    UNIQUE KEY uq_users_username (username_key),
    UNIQUE KEY uq_users_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Used when running on MySQL without Redis; with Redis, sessions live there.
CREATE TABLE sessions (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id    BIGINT   NOT NULL,
    expires_ms BIGINT   NOT NULL,
    KEY ix_sessions_expiry (expires_ms),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE conversations (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind       VARCHAR(16)  NOT NULL,
    slug       VARCHAR(64)  NULL,
    name       VARCHAR(100) NOT NULL,
    last_seq   BIGINT       NOT NULL DEFAULT 0,
    last_ms    BIGINT       NOT NULL DEFAULT 0,
    created_ms BIGINT       NOT NULL,
    UNIQUE KEY uq_conversations_slug (slug)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    conversation_id BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    ms              BIGINT NOT NULL,
    sender_id       BIGINT NOT NULL,
    content         TEXT   NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    CONSTRAINT fk_messages_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT fk_messages_sender FOREIGN KEY (sender_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
