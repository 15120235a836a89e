-- Offline transcription of voice messages: a persisted job per voice message, and the text on
-- the message once it is known.
--
-- status: pending (due at next_attempt_ms) | running (claimed at claimed_ms; taken again if
-- its node dies and the lease runs out) | done | failed. attempts counts claims and identifies
-- the current one. No foreign key to messages: the job table is a work queue, and a job whose
-- message is gone simply finishes without writing anything.
CREATE TABLE transcription_jobs (
    conversation_id INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    file_id         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    language        TEXT,
    next_attempt_ms INTEGER NOT NULL,
    claimed_ms      INTEGER,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX ix_transcription_jobs_due ON transcription_jobs (status, next_attempt_ms);

ALTER TABLE messages ADD COLUMN transcript TEXT;
