-- Keyward schema (SQLite). Times are nanoseconds since the Unix epoch; booleans are 0/1.
CREATE TABLE system (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE kek_checks (tag TEXT PRIMARY KEY, check_value BLOB NOT NULL);

-- Every key held under the master keyring: data keys, token key, audit key, transit keys.
CREATE TABLE wrapped_keys (
    domain TEXT NOT NULL,
    owner TEXT NOT NULL,
    version INTEGER NOT NULL,
    kek_tag TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (domain, owner, version)
);
CREATE INDEX wrapped_keys_kek_tag ON wrapped_keys (kek_tag);

CREATE TABLE mounts (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    config TEXT NOT NULL
);

CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL REFERENCES mounts (id),
    path TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    oldest_version INTEGER NOT NULL,
    max_versions INTEGER NOT NULL,
    cas_required INTEGER NOT NULL,
    custom_metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delete_version_after INTEGER NOT NULL,
    UNIQUE (mount_id, path)
);

CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id),
    version INTEGER NOT NULL,
    blob BLOB,
    created_at INTEGER NOT NULL,
    deletion_time INTEGER,
    destroyed INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    field_versions TEXT NOT NULL,
    -- The data-key version that sealed the blob (NULL once destroyed), for key status and pruning.
    dek_version INTEGER,
    PRIMARY KEY (secret_id, version)
);
CREATE INDEX secret_versions_dek ON secret_versions (dek_version);

CREATE TABLE tokens (
    accessor TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    policies TEXT NOT NULL,
    parent_accessor TEXT,
    display_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ttl_secs INTEGER NOT NULL,
    expires_at INTEGER,
    last_used INTEGER,
    revoked INTEGER NOT NULL,
    allowed_cidrs TEXT NOT NULL
);
CREATE INDEX tokens_parent ON tokens (parent_accessor);

CREATE TABLE policies (
    name TEXT PRIMARY KEY,
    rules TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The audit chain: one row per entry, and its head (seq, hash) kept in the same transaction.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    hash BLOB NOT NULL
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
-- The head row exists from the start, so appenders always lock it (seq 0, hash_0 = 32 zero bytes).
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Long key jobs run inside the server (re-encryption): the checkpoint is the data itself (a
-- migrated version no longer matches), the counters commit with each batch.
CREATE TABLE key_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    mount_id TEXT,
    mount_path TEXT,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    cursor_secret TEXT NOT NULL,
    cursor_version INTEGER NOT NULL,
    owner TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    error TEXT NOT NULL
);
