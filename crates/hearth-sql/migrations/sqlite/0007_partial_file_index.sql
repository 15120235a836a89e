-- Only messages with an attachment need finding by file (downloads check that a message
-- shares the file). Indexing the NULLs of every text message cost an index page write per
-- stored message; a partial index holds just the attachments, and `file_id = ?` still uses it.
DROP INDEX ix_messages_file;
CREATE INDEX ix_messages_file ON messages (file_id) WHERE file_id IS NOT NULL;
