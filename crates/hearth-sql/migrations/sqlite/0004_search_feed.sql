-- The search feed: one row per stored message, written in the message's transaction. Every
-- node tails it (id > cursor) into its own search index. AUTOINCREMENT: ids are never reused,
-- even if old rows are deleted, so a node's cursor stays meaningful.
CREATE TABLE message_feed (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL,
    seq             INTEGER NOT NULL
);

-- Existing messages are fed too, so an upgraded server indexes its whole history.
INSERT INTO message_feed (conversation_id, seq)
SELECT conversation_id, seq FROM messages ORDER BY conversation_id, seq;
