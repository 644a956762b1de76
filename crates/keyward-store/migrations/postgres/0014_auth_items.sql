-- Settings of login methods that keep them as JSON documents (DESIGN §4, §8): a JWT method's
-- config (its key source and issuer) and its roles. Every row MAC'd: whoever could swap the keys
-- or widen a role could mint logins.
CREATE TABLE auth_items (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    mac BYTEA
);
CREATE INDEX auth_items_mount ON auth_items (mount_id, kind, name);
