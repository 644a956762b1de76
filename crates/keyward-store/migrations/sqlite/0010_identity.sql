-- Login methods (DESIGN §4, §8): auth mounts, AppRole roles and secret IDs, every row MAC'd;
-- a token's origin (the auth mount, role and secret ID that issued it) and its metadata.
ALTER TABLE tokens ADD COLUMN auth_mount TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN auth_role TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN secret_id_accessor TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
CREATE INDEX tokens_auth_mount ON tokens (auth_mount);

CREATE TABLE auth_mounts (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    mac BLOB
);

CREATE TABLE approle_roles (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL,
    name TEXT NOT NULL,
    role_id TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    mac BLOB
);
CREATE UNIQUE INDEX approle_roles_name ON approle_roles (mount_id, name);
CREATE UNIQUE INDEX approle_roles_role_id ON approle_roles (mount_id, role_id);

CREATE TABLE approle_secret_ids (
    accessor TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    metadata TEXT NOT NULL,
    cidrs TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    num_uses BIGINT NOT NULL,
    uses_left BIGINT NOT NULL,
    mac BLOB
);
CREATE INDEX approle_secret_ids_role ON approle_secret_ids (role);
