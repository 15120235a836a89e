-- How far one of the member's devices has received the conversation ("delivered" ticks).
-- Reads deliver too: the position shown is the greater of this and read_seq, so a sender's
-- own sends, which move read_seq, need no second write.
ALTER TABLE members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
