-- Operator tools: a role per user ('user' or 'admin'; admins may use /api/admin) and bans
-- (banned_ms: when the user was banned; NULL while they are not). A banned user cannot log
-- in and none of their sessions authenticates. (sessions.user_id is already indexed by its
-- foreign key, which revoking every session of a user uses.)
ALTER TABLE users
    ADD COLUMN role      VARCHAR(16) NOT NULL DEFAULT 'user',
    ADD COLUMN banned_ms BIGINT      NULL;
