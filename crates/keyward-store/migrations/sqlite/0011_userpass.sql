-- Passwords with TOTP (DESIGN §4): users of userpass auth mounts, every row MAC'd (its password
-- hash, sealed TOTP seed and last accepted step included); failed logins counted per user.
CREATE TABLE userpass_users (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    totp_seed TEXT NOT NULL,
    totp_enrolled BIGINT NOT NULL,
    totp_last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    mac BLOB
);
CREATE INDEX userpass_users_mount ON userpass_users (mount_id);

CREATE TABLE login_failures (
    id TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
