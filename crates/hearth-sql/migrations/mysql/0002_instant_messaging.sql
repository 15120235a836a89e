-- Direct and group conversations, members, friends, blocks, join requests, per-user inboxes.

ALTER TABLE users
    ADD COLUMN inbox_seq BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_seen_ms BIGINT NULL;

-- direct_key = "<low user id>:<high user id>": one direct conversation per pair.
ALTER TABLE conversations
    ADD COLUMN direct_key VARCHAR(64) NULL,
    ADD COLUMN owner_id BIGINT NULL,
    ADD COLUMN dissolved BIGINT NOT NULL DEFAULT 0,
    ADD UNIQUE KEY uq_conversations_direct (direct_key);

-- A retried send is the same message: at most one per (sender, clientMsgId).
ALTER TABLE messages
    ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'text',
    ADD COLUMN reply_to BIGINT NULL,
    ADD COLUMN client_msg_id VARCHAR(64) NULL,
    ADD COLUMN edited_ms BIGINT NULL,
    ADD COLUMN recalled BIGINT NOT NULL DEFAULT 0,
    ADD UNIQUE KEY uq_messages_client (sender_id, client_msg_id);

CREATE TABLE members (
    conversation_id BIGINT      NOT NULL,
    user_id         BIGINT      NOT NULL,
    role            VARCHAR(16) NOT NULL,
    joined_seq      BIGINT      NOT NULL,
    read_seq        BIGINT      NOT NULL,
    joined_ms       BIGINT      NOT NULL,
    PRIMARY KEY (conversation_id, user_id),
    KEY ix_members_user (user_id),
    CONSTRAINT fk_members_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT fk_members_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE friendships (
    user_id    BIGINT NOT NULL,
    friend_id  BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    CONSTRAINT fk_friendships_user FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT fk_friendships_friend FOREIGN KEY (friend_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE friend_requests (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    from_id    BIGINT      NOT NULL,
    to_id      BIGINT      NOT NULL,
    note       TEXT        NOT NULL,
    status     VARCHAR(16) NOT NULL,
    pair_key   VARCHAR(64) NULL,
    created_ms BIGINT      NOT NULL,
    decided_ms BIGINT      NULL,
    UNIQUE KEY uq_friend_requests_pair (pair_key),
    KEY ix_friend_requests_to (to_id, status),
    KEY ix_friend_requests_from (from_id, status),
    CONSTRAINT fk_friend_requests_from FOREIGN KEY (from_id) REFERENCES users (id),
    CONSTRAINT fk_friend_requests_to FOREIGN KEY (to_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE blocks (
    user_id    BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id),
    CONSTRAINT fk_blocks_user FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT fk_blocks_blocked FOREIGN KEY (blocked_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE join_requests (
    id              BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT      NOT NULL,
    user_id         BIGINT      NOT NULL,
    note            TEXT        NOT NULL,
    status          VARCHAR(16) NOT NULL,
    pending_key     VARCHAR(64) NULL,
    created_ms      BIGINT      NOT NULL,
    decided_ms      BIGINT      NULL,
    UNIQUE KEY uq_join_requests_pending (pending_key),
    KEY ix_join_requests_group (conversation_id, status),
    CONSTRAINT fk_join_requests_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT fk_join_requests_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE hidden_messages (
    user_id         BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE inbox (
    user_id BIGINT      NOT NULL,
    seq     BIGINT      NOT NULL,
    kind    VARCHAR(32) NOT NULL,
    payload TEXT        NOT NULL,
    ms      BIGINT      NOT NULL,
    PRIMARY KEY (user_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
