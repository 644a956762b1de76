//! A write transaction: its handle, commits and savepoints; what it reads and writes of each
//! aggregate is in that aggregate's module (`secrets`, `tokens`, `keys`…).
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use keyward_core::{Mount, SecretVersion, StoreError, StoreTx};
use uuid::Uuid;

use crate::db::{args, TxConn};
use crate::integrity::{not_loaded, Integrity, Macs, SYSTEM};
use crate::{sql_store, Backend};

/// One write transaction on either engine: sqlx on PostgreSQL, rusqlite on SQLite.
pub(crate) struct SqlTx {
    pub(crate) db: Box<dyn TxConn>,
    pub(crate) backend: Backend,
    pub(crate) seen: Seen,
    /// The row keys, as the store held them when the transaction began (or as initialisation
    /// installed them for it).
    pub(crate) macs: Option<Macs>,
    /// The store's row keys and tamper counter.
    pub(crate) integrity: Arc<Integrity>,
}

/// What this transaction has read and not changed since, so a batch of writes reads each once
/// (on PostgreSQL each statement is a round trip). Each part is dropped by the statements that
/// change what it holds, and all of it by a rollback to the savepoint.
#[derive(Default)]
pub(crate) struct Seen {
    /// Mounts by path (`None`: no such mount).
    pub(crate) mounts: HashMap<String, Option<Mount>>,
    /// The newest version of a wrapped key, by domain and owner; on PostgreSQL its row is
    /// share-locked by this transaction.
    pub(crate) newest: HashMap<(String, Uuid), Option<u32>>,
    /// The version read with its secret by `secret_for_update` on SQLite (`None`: no such row).
    pub(crate) version: Option<((Uuid, u64), Option<SecretVersion>)>,
}

impl SqlTx {
    pub(crate) fn new(db: Box<dyn TxConn>, backend: Backend, integrity: Arc<Integrity>) -> Self {
        Self { db, backend, seen: Seen::default(), macs: integrity.macs(), integrity }
    }

    /// The row keys, to check a MAC'd row read or seal one written.
    pub(crate) fn macs(&self) -> Result<Macs, StoreError> {
        self.macs.clone().ok_or_else(not_loaded)
    }

    /// How many rows a multi-row statement should carry: many where each statement is a round
    /// trip (PostgreSQL), one where statements are local calls (SQLite).
    pub(crate) fn rows_per_statement(&self, round_trip: usize) -> usize {
        match self.backend {
            Backend::Postgres => round_trip,
            Backend::Sqlite => 1,
        }
    }

    pub(crate) async fn exec(&mut self, sql: &str) -> Result<(), StoreError> {
        self.db.execute(sql, vec![]).await?;
        Ok(())
    }
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

#[async_trait]
impl StoreTx for SqlTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.db.commit().await
    }

    async fn commit_unsynced(self: Box<Self>) -> Result<(), StoreError> {
        self.db.commit_unsynced().await
    }

    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("SAVEPOINT kw_op").await
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("RELEASE SAVEPOINT kw_op").await
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.seen = Seen::default();
        self.exec("ROLLBACK TO SAVEPOINT kw_op").await
    }

    async fn system_value(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        sql_store::system_value(&mut *self.db, self.macs.as_ref(), key).await
    }

    async fn set_system_value(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO system (key, value, mac) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = \
                   excluded.value, mac = excluded.mac";
        let mut values = args![key, value];
        let mac = self.macs()?.seal(&SYSTEM, &[("key", &values[0]), ("value", &values[1])])?;
        values.push(mac);
        self.db.execute(sql, values).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keyward_core::{
        KeyReads, Mount, MountKind, MountReads, ResealedVersion, SecretMeta, SecretVersion, Store, WrappedKey,
    };

    use super::*;
    use crate::keys::{unmigrated_sql, BLOBS_PAGE, DEK_DOMAIN};

    fn wrapped() -> WrappedKey {
        WrappedKey { kek_tag: "v1".into(), bytes: vec![1; 61] }
    }

    fn kv_mount() -> Mount {
        Mount {
            id: Uuid::new_v4(),
            path: "kv".into(),
            kind: MountKind::Kv,
            created_at: 0,
            config: serde_json::json!({}),
        }
    }

    fn version(n: u64, dek: u32) -> SecretVersion {
        SecretVersion {
            version: n,
            blob: Some(vec![n as u8; 40]),
            dek_version: Some(dek),
            created_at: 0,
            deletion_time: None,
            destroyed: false,
            created_by: "test".into(),
            field_versions: BTreeMap::new(),
        }
    }

    /// A store on a new PostgreSQL database with one kv mount and its data key v1 (and the
    /// database, dropped with it), or `None` when `KEYWARD_TEST_DATABASE_URL` is unset.
    async fn postgres_with_mount() -> Option<(crate::SqlStore, Mount, crate::connect::TestPg)> {
        let Some(pg) = crate::connect::test_postgres().await else {
            eprintln!("PostgreSQL test skipped: KEYWARD_TEST_DATABASE_URL is not set");
            return None;
        };
        let store = crate::connect::test_store(&pg.url, 4).await;
        let mount = kv_mount();
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        tx.commit().await.unwrap();
        Some((store, mount, pg))
    }

    /// Two servers on one PostgreSQL: a write on one has read data key v1 as its mount's newest
    /// and not committed; v2 is added, and `keys prune` on the other counts v1 unused. v1 must
    /// not be deleted under that write, nor after it committed a blob sealed under v1. Then a
    /// version destroyed while a re-encryption batch holds its old blob stays destroyed.
    #[tokio::test]
    async fn a_write_or_destroy_on_another_server_is_respected_by_prune_and_reencryption() {
        let Some((store, mount, _pg)) = postgres_with_mount().await else { return };

        let mut write = store.begin_write(false).await.unwrap();
        assert_eq!(write.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));
        let mut rotate = store.begin_write(false).await.unwrap();
        rotate.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        rotate.commit().await.unwrap();

        let mut prune = store.begin_write(false).await.unwrap();
        assert_eq!(prune.unused_data_keys(mount.id, &[1]).await.unwrap(), Vec::<u32>::new(), "v1 is in use");
        drop(prune);

        let meta = SecretMeta::new(mount.id, "a", 0);
        write.insert_secret(&meta).await.unwrap();
        write.insert_version(meta.id, &version(1, 1)).await.unwrap();
        write.commit().await.unwrap();

        let mut prune = store.begin_write(false).await.unwrap();
        assert_eq!(prune.unused_data_keys(mount.id, &[1]).await.unwrap(), Vec::<u32>::new(), "a blob uses v1");
        drop(prune);

        // A re-encryption batch reads the version; another server destroys it and commits; the
        // batch's re-sealed blob must not bring it back.
        let (rows, _) = store.unmigrated_versions(Some(mount.id), &(String::new(), 0), 10).await.unwrap();
        let mut batch = store.begin_write(false).await.unwrap();
        assert_eq!(rows.iter().map(|r| (r.secret, r.version)).collect::<Vec<_>>(), vec![(meta.id, 1)]);
        let mut destroy = store.begin_write(false).await.unwrap();
        destroy.destroy_version(meta.id, 1).await.unwrap();
        destroy.commit().await.unwrap();
        let resealed =
            |b: u8| ResealedVersion { secret: meta.id, version: 1, row: 0, blob: vec![b; 40], dek_version: 2 };
        for rows in [vec![resealed(2)], vec![resealed(2), resealed(3)]] {
            batch.update_version_blobs(&rows).await.unwrap();
        }
        batch.commit().await.unwrap();
        let mut read = store.begin_write(false).await.unwrap();
        let v = read.version(meta.id, 1).await.unwrap().unwrap();
        assert!(v.destroyed && v.blob.is_none() && v.dek_version.is_none(), "the destroyed version came back");
        drop(read);
        store.close().await;
    }

    /// Shared buffers (hit or read) the first plan node of `EXPLAIN (ANALYZE, BUFFERS) sql` used.
    async fn buffers_used(pool: &sqlx::AnyPool, sql: &str, after: &str, limit: i64) -> u64 {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            .bind(after)
            .bind(0_i64)
            .bind(limit)
            .fetch_all(pool)
            .await
            .unwrap();
        let line = plan.iter().find(|l| l.trim_start().starts_with("Buffers: shared")).expect("a Buffers line");
        let count = |what: &str| {
            line.split(&format!("{what}="))
                .nth(1)
                .map_or(0, |rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<u64>().unwrap())
        };
        count("hit") + count("read")
    }

    /// On PostgreSQL, a page of the re-encryption walk and of `doctor --verify-all` reads a few
    /// buffers per row wherever the cursor is, even with no table statistics: not every secret
    /// from the first (a merge join), nor every version (a hash join and a sort).
    #[tokio::test]
    async fn a_walk_page_reads_a_few_buffers_per_row_wherever_it_is() {
        let Some(pg) = crate::connect::test_postgres().await else { return };
        let store = crate::connect::test_store(&pg.url, 2).await;
        let mount = kv_mount();
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..6000 {
            let meta = SecretMeta::new(mount.id, &format!("s{i}"), 0);
            tx.insert_secret(&meta).await.unwrap();
            tx.insert_version(meta.id, &version(1, 1)).await.unwrap();
            ids.push(meta.id.to_string());
        }
        tx.commit().await.unwrap();
        ids.sort();
        let crate::DatabaseUrl::Postgres(url) = &pg.url else { unreachable!() };
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        // No ANALYZE: without statistics, as after a bulk import, is when planners guess worst.
        let walk = unmigrated_sql(Backend::Postgres, true);
        for (name, sql) in [("re-encryption walk", walk), ("blob page", BLOBS_PAGE)] {
            for (at, cursor) in [("at the start", &ids[0]), ("two thirds in", &ids[4000])] {
                let used = buffers_used(&pool, sql, cursor, 20).await;
                assert!(used <= 100, "{name}: {used} buffers for a page of 20 {at}");
            }
        }
        pool.close().await;
        store.close().await;
    }

    /// A mount deletion on one server meets a write into that mount on another: the deletion
    /// waits for the write (its share lock on the data key), then fails as a conflict — which the
    /// writer retries, deleting the new secret too — not as a database error.
    #[tokio::test]
    async fn a_mount_deleted_during_a_write_into_it_is_a_conflict_then_goes() {
        let Some((store, mount, _pg)) = postgres_with_mount().await else { return };
        let store = std::sync::Arc::new(store);
        let mut write = store.begin_write(false).await.unwrap();
        assert_eq!(write.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));
        let delete = |store: std::sync::Arc<crate::SqlStore>| async move {
            let mut tx = store.begin_write(false).await?;
            tx.delete_mount(mount.id).await?;
            tx.commit().await
        };
        let deleting = tokio::spawn(delete(store.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!deleting.is_finished(), "the deletion did not wait for the write");
        write.insert_secret(&SecretMeta::new(mount.id, "a", 0)).await.unwrap();
        write.commit().await.unwrap();
        let first = deleting.await.unwrap();
        assert!(matches!(first, Err(StoreError::Conflict)), "{first:?}");
        delete(store.clone()).await.unwrap();
        assert!(store.mount("kv").await.unwrap().is_none());
        store.close().await;
    }

    /// Two servers write one secret at once: the second waits for the first's lock on it and
    /// must then see the version the first wrote, not the one current when it began to wait
    /// (a write builds on it: a stale one would drop the first write's fields).
    #[tokio::test]
    async fn a_write_that_waited_for_another_reads_what_that_one_wrote() {
        let Some((store, mount, _pg)) = postgres_with_mount().await else { return };
        let store = std::sync::Arc::new(store);
        let mut meta = SecretMeta::new(mount.id, "a", 0);
        meta.current_version = 1;
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_secret(&meta).await.unwrap();
        tx.insert_version(meta.id, &version(1, 1)).await.unwrap();
        tx.commit().await.unwrap();

        let mut first = store.begin_write(false).await.unwrap();
        assert!(first.secret_for_update(mount.id, "a").await.unwrap().is_some());
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write(false).await.unwrap();
                let meta = tx.secret_for_update(mount.id, "a").await.unwrap().unwrap();
                let current = tx.version(meta.id, meta.current_version).await.unwrap();
                (meta.current_version, current)
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!second.is_finished(), "the second write did not wait for the first");
        first.insert_version(meta.id, &version(2, 1)).await.unwrap();
        meta.current_version = 2;
        first.update_secret(&meta).await.unwrap();
        first.commit().await.unwrap();
        let (current, read) = second.await.unwrap();
        assert_eq!((current, read), (2, Some(version(2, 1))));
        store.close().await;
    }

    /// What a transaction has read is served again only while it holds: each change made in the
    /// same transaction, and a rollback to the savepoint, shows through on the next read.
    async fn sees_its_own_changes(store: &dyn Store) {
        let mut tx = store.begin_write(false).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap(), None);
        let mount = kv_mount();
        tx.insert_mount(&mount).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap(), Some(mount.clone()));
        tx.update_mount_config(mount.id, &serde_json::json!({"max_versions": 3})).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap().unwrap().config, serde_json::json!({"max_versions": 3}));

        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), None);
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));

        let mut meta = SecretMeta::new(mount.id, "a", 0);
        tx.insert_secret(&meta).await.unwrap();
        meta.current_version = 1;
        tx.update_secret(&meta).await.unwrap();
        tx.insert_version(meta.id, &version(1, 1)).await.unwrap();
        assert_eq!(tx.secret_for_update(mount.id, "a").await.unwrap(), Some(meta.clone()));
        assert_eq!(tx.version(meta.id, 1).await.unwrap(), Some(version(1, 1)));
        tx.destroy_version(meta.id, 1).await.unwrap();
        assert!(tx.version(meta.id, 1).await.unwrap().unwrap().destroyed, "a destroyed version read as it was");

        // A job that rotates the key and writes, then fails: what it did is forgotten.
        tx.savepoint().await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(2));
        assert!(tx.secret_for_update(mount.id, "a").await.unwrap().is_some());
        tx.delete_mount(mount.id).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap(), None);
        tx.rollback_to_savepoint().await.unwrap();
        tx.release_savepoint().await.unwrap();
        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));
        assert_eq!(tx.mount("kv").await.unwrap().map(|m| m.id), Some(mount.id));
        tx.commit().await.unwrap();
    }

    /// The re-encryption walk visits every version under an older data key once, across batches,
    /// and skips those already under the newest. On SQLite it goes in storage (insertion) order,
    /// so a batch's rows share table pages; a cursor of the other kind starts it again.
    async fn walks_every_unmigrated_version_once(store: &dyn Store, sqlite: bool) {
        let mount = kv_mount();
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        let secrets: Vec<SecretMeta> = ["a", "b", "c"].iter().map(|p| SecretMeta::new(mount.id, p, 0)).collect();
        let mut inserted = Vec::new();
        for meta in &secrets {
            tx.insert_secret(meta).await.unwrap();
        }
        for n in 1..=3 {
            for meta in &secrets {
                tx.insert_version(meta.id, &version(n, 1)).await.unwrap();
                inserted.push((meta.id, n));
            }
        }
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        tx.insert_version(secrets[0].id, &version(4, 2)).await.unwrap();
        // Another mount's unmigrated version: outside the scoped walk, inside the whole one.
        let other = Mount { path: "other".into(), ..kv_mount() };
        let theirs = SecretMeta::new(other.id, "z", 0);
        tx.insert_mount(&other).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, other.id, 1, &wrapped()).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, other.id, 2, &wrapped()).await.unwrap();
        tx.insert_secret(&theirs).await.unwrap();
        tx.insert_version(theirs.id, &version(1, 1)).await.unwrap();
        tx.commit().await.unwrap();
        let (all, _) = store.unmigrated_versions(None, &(String::new(), 0), 100).await.unwrap();
        assert_eq!(all.len(), inserted.len() + 1, "the whole walk misses a mount");
        assert!(all.iter().any(|r| r.secret == theirs.id && r.mount == other.id));

        let (mut seen, mut cursor, mut batches) = (Vec::new(), (String::new(), 0), 0);
        loop {
            let (rows, next) = store.unmigrated_versions(Some(mount.id), &cursor, 2).await.unwrap();
            seen.extend(rows.iter().map(|r| (r.secret, r.version)));
            batches += 1;
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        if sqlite {
            assert_eq!(seen, inserted, "not in storage order");
            let stale = (secrets[2].id.to_string(), 3);
            let (rows, _) = store.unmigrated_versions(Some(mount.id), &stale, 2).await.unwrap();
            assert_eq!(rows.iter().map(|r| (r.secret, r.version)).collect::<Vec<_>>(), inserted[..2].to_vec());
        } else {
            let mut sorted = inserted.clone();
            sorted.sort_by_key(|(id, n)| (id.to_string(), *n));
            assert_eq!(seen, sorted, "not in key order");
        }
        // Five full batches of two (the last scans the v2 row) and an empty one; on PostgreSQL the
        // walk also scans the other mount's row, which the store skips itself: one batch more.
        assert_eq!(batches, if sqlite { 6 } else { 7 });
    }

    /// On SQLite a re-sealed blob goes back to its row by row id; a row deleted after it was read
    /// can give its id to a new version, which must keep its own blob.
    #[tokio::test]
    async fn a_resealed_blob_never_lands_on_a_row_that_took_its_row_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::connect::test_store(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await;
        let mount = kv_mount();
        let (a, b) = (SecretMeta::new(mount.id, "a", 0), SecretMeta::new(mount.id, "b", 0));
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        tx.insert_secret(&a).await.unwrap();
        tx.insert_secret(&b).await.unwrap();
        tx.insert_version(a.id, &version(1, 1)).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        tx.commit().await.unwrap();
        let (rows, _) = store.unmigrated_versions(None, &(String::new(), 0), 10).await.unwrap();
        let read = rows.into_iter().next().unwrap();

        let mut tx = store.begin_write(false).await.unwrap();
        tx.delete_versions_below(a.id, 2).await.unwrap();
        tx.insert_version(b.id, &version(1, 2)).await.unwrap();
        let resealed = ResealedVersion { secret: a.id, version: 1, row: read.row, blob: vec![9; 40], dek_version: 2 };
        tx.update_version_blobs(&[resealed]).await.unwrap();
        tx.commit().await.unwrap();
        let (rows, _) = store.unmigrated_versions(None, &(String::new(), 0), 10).await.unwrap();
        assert!(rows.is_empty());
        let mut tx = store.begin_write(false).await.unwrap();
        assert_eq!(tx.version(b.id, 1).await.unwrap().unwrap().blob, version(1, 2).blob, "b's blob was overwritten");
        drop(tx);
        let reused: i64 = sqlx::query_scalar("SELECT rowid FROM secret_versions WHERE secret_id = $1")
            .bind(b.id.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(reused, read.row, "the row id was not reused: this test shows nothing");
        store.close().await;
    }

    #[tokio::test]
    async fn the_reencryption_walk_visits_every_unmigrated_version_once() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = crate::connect::test_store(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await;
        walks_every_unmigrated_version_once(&sqlite, true).await;
        sqlite.close().await;
        if let Some(pg) = crate::connect::test_postgres().await {
            let pg = crate::connect::test_store(&pg.url, 2).await;
            walks_every_unmigrated_version_once(&pg, false).await;
            pg.close().await;
        }
    }

    #[tokio::test]
    async fn a_transaction_sees_its_own_changes_through_what_it_has_read() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = crate::connect::test_store(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await;
        sees_its_own_changes(&sqlite).await;
        sqlite.close().await;
        if let Some(pg) = crate::connect::test_postgres().await {
            let pg = crate::connect::test_store(&pg.url, 2).await;
            sees_its_own_changes(&pg).await;
            pg.close().await;
        }
    }
}
