-- Accounts, sessions, conversations (public rooms for now) and their messages.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    -- lower-cased username: uniqueness ignores case so "Alice" cannot impersonate "alice"
    username_key  TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE UNIQUE INDEX uq_users_username ON users (username_key);
CREATE UNIQUE INDEX uq_users_email ON users (email);

-- Only the SHA-256 of a session token is stored.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    expires_ms INTEGER NOT NULL
);
CREATE INDEX ix_sessions_expiry ON sessions (expires_ms);

-- A conversation is a public room now; direct chats and groups share the table later.
-- last_seq / last_ms are the allocator: bumped in the same transaction that inserts messages.
CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    slug       TEXT    UNIQUE,
    name       TEXT    NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    last_ms    INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);

CREATE TABLE messages (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    ms              INTEGER NOT NULL,
    sender_id       INTEGER NOT NULL REFERENCES users (id),
    content         TEXT    NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
