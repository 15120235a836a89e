-- The search feed: one row per stored message, written in the message's transaction. Every
-- node tails it (id > cursor) into its own search index. AUTO_INCREMENT ids can commit out of
-- order; the tailers re-read holes for a while before giving up on them.
CREATE TABLE message_feed (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT NOT NULL,
    seq             BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Existing messages are fed too, so an upgraded server indexes its whole history.
INSERT INTO message_feed (conversation_id, seq)
SELECT conversation_id, seq FROM messages ORDER BY conversation_id, seq;
