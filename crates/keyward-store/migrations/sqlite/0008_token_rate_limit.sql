-- A token's own request rate limit (`100/s`), instead of the server's per-token limit.
ALTER TABLE tokens ADD COLUMN rate_limit TEXT;
