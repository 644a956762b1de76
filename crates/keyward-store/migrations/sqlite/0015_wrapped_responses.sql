-- Response wrapping (Vault's X-Vault-Wrap-TTL): a wrapped response, sealed under the KEK-wrapped
-- wrap key with the wrapping token's accessor and the creation path as AAD, kept until it is
-- unwrapped, expires or its mount is shredded (rows are deleted with secure_delete on SQLite).
-- MAC'd: whoever could move a row could hand one token's response to another. Not backed up.
CREATE TABLE wrapped_responses (
    accessor TEXT PRIMARY KEY,
    creation_path TEXT NOT NULL,
    mount_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    mac BLOB
);
CREATE INDEX wrapped_responses_expiry ON wrapped_responses (expires_at);
CREATE INDEX wrapped_responses_mount ON wrapped_responses (mount_id);
