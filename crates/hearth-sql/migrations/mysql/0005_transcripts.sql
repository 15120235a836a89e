-- Offline transcription of voice messages: a persisted job per voice message, and the text on
-- the message once it is known.
--
-- status: pending (due at next_attempt_ms) | running (claimed at claimed_ms; taken again if
-- its node dies and the lease runs out) | done | failed. attempts counts claims and identifies
-- the current one. No foreign key to messages: the job table is a work queue, and a job whose
-- message is gone simply finishes without writing anything.
CREATE TABLE transcription_jobs (
    conversation_id BIGINT       NOT NULL,
    seq             BIGINT       NOT NULL,
    file_id         VARCHAR(255) NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    attempts        BIGINT       NOT NULL DEFAULT 0,
    last_error      TEXT         NULL,
    language        VARCHAR(16)  NULL,
    next_attempt_ms BIGINT       NOT NULL,
    claimed_ms      BIGINT       NULL,
    created_ms      BIGINT       NOT NULL,
    updated_ms      BIGINT       NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    KEY ix_transcription_jobs_due (status, next_attempt_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;


ALTER TABLE messages ADD COLUMN transcript TEXT NULL;
