-- Vault-compatible API: policies keep the HCL text they were written as; transit keys.
ALTER TABLE policies ADD COLUMN hcl TEXT;

-- A transit mount's named keys. Key versions are wrapped keys (domain keyward/transit-key,
-- owner = id); config holds the key policy (type, versions, min versions, flags) as JSON.
CREATE TABLE transit_keys (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL REFERENCES mounts (id),
    name TEXT COLLATE "C" NOT NULL,
    config TEXT NOT NULL,
    UNIQUE (mount_id, name)
);
