-- A user's avatar: the id of an image file they uploaded (NULL: none; clients are served a
-- generated default). Only the file's thumbnail is served, to any signed-in user.
ALTER TABLE users ADD COLUMN avatar_file_id CHAR(32) NULL;
