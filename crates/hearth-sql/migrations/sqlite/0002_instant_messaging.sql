-- Direct and group conversations, members, friends, blocks, join requests, per-user inboxes.

ALTER TABLE users ADD COLUMN inbox_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_seen_ms INTEGER;

-- direct_key = "<low user id>:<high user id>": one direct conversation per pair.
ALTER TABLE conversations ADD COLUMN direct_key TEXT;
ALTER TABLE conversations ADD COLUMN owner_id INTEGER;
ALTER TABLE conversations ADD COLUMN dissolved INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX uq_conversations_direct ON conversations (direct_key);

ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN client_msg_id TEXT;
ALTER TABLE messages ADD COLUMN edited_ms INTEGER;
ALTER TABLE messages ADD COLUMN recalled INTEGER NOT NULL DEFAULT 0;
-- A retried send is the same message: at most one per (sender, clientMsgId).
CREATE UNIQUE INDEX uq_messages_client ON messages (sender_id, client_msg_id);

-- Members of direct and group conversations (rooms are public and have none).
-- joined_seq: messages up to it predate the membership; read_seq: the read position.
CREATE TABLE members (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    role            TEXT    NOT NULL,
    joined_seq      INTEGER NOT NULL,
    read_seq        INTEGER NOT NULL,
    joined_ms       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX ix_members_user ON members (user_id);

-- Friendship is stored in both directions: (a, b) and (b, a).
CREATE TABLE friendships (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    friend_id  INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

-- pair_key = "<low>:<high>" while pending, NULL once settled: at most one pending request
-- between two users, whoever sent it.
CREATE TABLE friend_requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    from_id    INTEGER NOT NULL REFERENCES users (id),
    to_id      INTEGER NOT NULL REFERENCES users (id),
    note       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    pair_key   TEXT    UNIQUE,
    created_ms INTEGER NOT NULL,
    decided_ms INTEGER
);
CREATE INDEX ix_friend_requests_to ON friend_requests (to_id, status);
CREATE INDEX ix_friend_requests_from ON friend_requests (from_id, status);

CREATE TABLE blocks (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    blocked_id INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);

-- pending_key = "<conversation>:<user>" while pending, NULL once settled.
CREATE TABLE join_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    note            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    pending_key     TEXT    UNIQUE,
    created_ms      INTEGER NOT NULL,
    decided_ms      INTEGER
);
CREATE INDEX ix_join_requests_group ON join_requests (conversation_id, status);

-- Delete-for-me.
CREATE TABLE hidden_messages (
    user_id         INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) WITHOUT ROWID;

-- Each user's notifications, numbered per user (users.inbox_seq allocates).
CREATE TABLE inbox (
    user_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    payload TEXT    NOT NULL,
    ms      INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
