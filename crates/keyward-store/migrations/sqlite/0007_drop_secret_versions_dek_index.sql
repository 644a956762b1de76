-- keys status and prune count a data key's blobs with a scan of the mount (they are rare operator
-- commands); an index on dek_version made every write and every re-encrypted row move an entry at a
-- random place in it, which halved the speed of key migrations on large databases.
DROP INDEX IF EXISTS secret_versions_dek;
