-- Operator tools: a role per user ('user' or 'admin'; admins may use /api/admin) and bans
-- (banned_ms: when the user was banned; NULL while they are not). A banned user cannot log
-- in and none of their sessions authenticates.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN banned_ms INTEGER;
-- Revoking every session of a user (ban, `hearth admin sessions revoke`).
CREATE INDEX ix_sessions_user ON sessions (user_id);
