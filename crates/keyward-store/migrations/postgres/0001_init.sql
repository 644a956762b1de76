-- Keyward schema (PostgreSQL). Times are nanoseconds since the Unix epoch; booleans are 0/1.
CREATE TABLE system (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE kek_checks (tag TEXT PRIMARY KEY, check_value BYTEA NOT NULL);

-- Every key held under the master keyring: data keys, token key, audit key, transit keys.
CREATE TABLE wrapped_keys (
    domain TEXT NOT NULL,
    owner TEXT NOT NULL,
    version BIGINT NOT NULL,
    kek_tag TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, owner, version)
);
CREATE INDEX wrapped_keys_kek_tag ON wrapped_keys (kek_tag);

CREATE TABLE mounts (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    config TEXT NOT NULL
);

CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL REFERENCES mounts (id),
    path TEXT COLLATE "C" NOT NULL,
    current_version BIGINT NOT NULL,
    oldest_version BIGINT NOT NULL,
    max_versions BIGINT NOT NULL,
    cas_required BIGINT NOT NULL,
    custom_metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delete_version_after BIGINT NOT NULL,
    UNIQUE (mount_id, path)
);

CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id),
    version BIGINT NOT NULL,
    blob BYTEA,
    created_at BIGINT NOT NULL,
    deletion_time BIGINT,
    destroyed BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    field_versions TEXT NOT NULL,
    -- The data-key version that sealed the blob (NULL once destroyed), for key status and pruning.
    dek_version BIGINT,
    PRIMARY KEY (secret_id, version)
);
CREATE INDEX secret_versions_dek ON secret_versions (dek_version);

CREATE TABLE tokens (
    accessor TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    policies TEXT NOT NULL,
    parent_accessor TEXT,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ttl_secs BIGINT NOT NULL,
    expires_at BIGINT,
    last_used BIGINT,
    revoked BIGINT NOT NULL,
    allowed_cidrs TEXT NOT NULL
);
CREATE INDEX tokens_parent ON tokens (parent_accessor);

CREATE TABLE policies (
    name TEXT PRIMARY KEY,
    rules TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The audit chain: one row per entry, and its head (seq, hash) kept in the same transaction.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    entry TEXT NOT NULL,
    hash BYTEA NOT NULL
);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
-- The head row exists from the start, so appenders always lock it (seq 0, hash_0 = 32 zero bytes).
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Long key jobs run inside the server (re-encryption): the checkpoint is the data itself (a
-- migrated version no longer matches), the counters commit with each batch.
CREATE TABLE key_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    mount_id TEXT,
    mount_path TEXT,
    status TEXT NOT NULL,
    total BIGINT NOT NULL,
    done BIGINT NOT NULL,
    cursor_secret TEXT NOT NULL,
    cursor_version BIGINT NOT NULL,
    owner TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    error TEXT NOT NULL
);
