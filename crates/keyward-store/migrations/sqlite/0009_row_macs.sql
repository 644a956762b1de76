-- Untrusted storage (DESIGN §8): every row read to authenticate, authorise, route or decide
-- initialisation carries a MAC under a key derived from the integrity key. SQL cannot compute
-- them: the server gives existing rows theirs once, under the initialisation lock, after its
-- master keyring loads; from then on a row without a valid MAC is refused as tampered.
ALTER TABLE system ADD COLUMN mac BLOB;
ALTER TABLE tokens ADD COLUMN mac BLOB;
ALTER TABLE policies ADD COLUMN mac BLOB;
ALTER TABLE mounts ADD COLUMN mac BLOB;
ALTER TABLE secrets ADD COLUMN mac BLOB;
ALTER TABLE proxy_routes ADD COLUMN mac BLOB;
ALTER TABLE transit_keys ADD COLUMN mac BLOB;
-- Deleting a policy leaves a tombstone (deleted = 1, no rules), so a row simply missing is
-- known to have been removed outside keyward.
ALTER TABLE policies ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
