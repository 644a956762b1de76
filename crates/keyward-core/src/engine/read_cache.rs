//! The in-memory read path of a single-process (SQLite) server: authenticated callers by token
//! digest and current secret versions by path, so a read needs no database round trip.
//!
//! Coherence: every change goes through this process's writer, which drops what a committed
//! batch may have changed before it acknowledges the batch ([`ReadCache::invalidate`]). A
//! reader that loaded a record from the database only caches it if no invalidation happened
//! since it started loading (a generation counter), so a value read before a commit can never be
//! cached after it. Several replicas (PostgreSQL) do not use it: there, every request reads
//! tokens, policies and secrets from the database so a revocation holds everywhere at once.
//! Values stay sealed in the cache (the blob, as stored) and are opened on every read.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::command::Evict;
use crate::{Caller, SecretMeta, SecretVersion};

/// Entries kept per map before it is emptied and refilled (bounds memory).
const CAPACITY: usize = 10_000;

/// A bounded map whose inserts are refused when an invalidation raced with the load.
struct Coherent<K, V> {
    inner: RwLock<(u64, HashMap<K, V>)>,
}

impl<K: Eq + Hash, V: Clone> Coherent<K, V> {
    fn new() -> Self {
        Self { inner: RwLock::new((0, HashMap::new())) }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.inner.read().ok()?.1.get(key).cloned()
    }

    /// The generation to pass to [`Coherent::insert`]; take it before loading.
    fn generation(&self) -> u64 {
        self.inner.read().map_or(u64::MAX, |g| g.0)
    }

    fn insert(&self, generation: u64, key: K, value: V) {
        if let Ok(mut g) = self.inner.write() {
            if g.0 != generation {
                return;
            }
            if g.1.len() >= CAPACITY {
                g.1.clear();
            }
            g.1.insert(key, value);
        }
    }

    fn update(&self, f: impl FnOnce(&mut HashMap<K, V>)) {
        if let Ok(mut g) = self.inner.write() {
            g.0 += 1;
            f(&mut g.1);
        }
    }
}

/// A secret's metadata and its current version, as stored (sealed).
pub(crate) type CurrentVersion = Arc<(SecretMeta, SecretVersion)>;

/// Callers and current versions held in memory for one single-process server.
pub(crate) struct ReadCache {
    callers: Coherent<String, Arc<Caller>>,
    secrets: Coherent<String, Vec<(Uuid, CurrentVersion)>>,
}

/// Sizes only: entries hold token digests and sealed blobs, which have no place in a log line.
impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = |g: Option<usize>| g.unwrap_or_default();
        f.debug_struct("ReadCache")
            .field("callers", &len(self.callers.inner.read().ok().map(|g| g.1.len())))
            .field("secrets", &len(self.secrets.inner.read().ok().map(|g| g.1.len())))
            .finish()
    }
}

impl ReadCache {
    pub(crate) fn new() -> Self {
        Self { callers: Coherent::new(), secrets: Coherent::new() }
    }

    /// The caller of a token digest, if cached.
    pub(crate) fn caller(&self, digest: &str) -> Option<Arc<Caller>> {
        self.callers.get(digest)
    }

    /// Take before loading a caller; pass to [`ReadCache::put_caller`].
    pub(crate) fn callers_generation(&self) -> u64 {
        self.callers.generation()
    }

    pub(crate) fn put_caller(&self, generation: u64, digest: String, caller: Arc<Caller>) {
        self.callers.insert(generation, digest, caller);
    }

    /// Records a use of a cached caller, so the next request does not record it again.
    pub(crate) fn touched(&self, digest: &str, at: crate::Nanos) {
        if let Ok(mut g) = self.callers.inner.write() {
            if let Some(c) = g.1.get_mut(digest) {
                let mut updated = (**c).clone();
                updated.token.last_used = Some(at);
                *c = Arc::new(updated);
            }
        }
    }

    /// The current version of `path` in a mount, if cached.
    pub(crate) fn current(&self, mount: Uuid, path: &str) -> Option<CurrentVersion> {
        let map = self.secrets.inner.read().ok()?;
        map.1.get(path)?.iter().find(|(m, _)| *m == mount).map(|(_, v)| v.clone())
    }

    /// Take before loading a secret; pass to [`ReadCache::put_current`].
    pub(crate) fn secrets_generation(&self) -> u64 {
        self.secrets.generation()
    }

    pub(crate) fn put_current(&self, generation: u64, mount: Uuid, path: &str, value: CurrentVersion) {
        let mut list = self.secrets.get(path).unwrap_or_default();
        list.retain(|(m, _)| *m != mount);
        list.push((mount, value));
        self.secrets.insert(generation, path.to_owned(), list);
    }

    /// Drops whatever a change may have changed; the writer calls it after its batch commits and
    /// before it answers.
    pub(crate) fn invalidate(&self, evict: &Evict<'_>) {
        match evict {
            Evict::Nothing => {}
            Evict::Secret(path) => self.secrets.update(|m| {
                m.remove(*path);
            }),
            Evict::Secrets => self.secrets.update(HashMap::clear),
            Evict::Callers => self.callers.update(HashMap::clear),
            Evict::Everything => {
                self.secrets.update(HashMap::clear);
                self.callers.update(HashMap::clear);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_after_an_invalidation_that_raced_with_its_load_is_refused() {
        let c: Coherent<String, u32> = Coherent::new();
        let g = c.generation();
        c.update(|m| {
            m.remove("a");
        });
        c.insert(g, "a".into(), 1);
        assert_eq!(c.get("a"), None, "a value loaded before the change is not cached");
        let g = c.generation();
        c.insert(g, "a".into(), 2);
        assert_eq!(c.get("a"), Some(2));
    }

    #[test]
    fn the_map_is_bounded() {
        let c: Coherent<u32, u32> = Coherent::new();
        for i in 0..(CAPACITY as u32 + 5) {
            c.insert(c.generation(), i, i);
        }
        assert!(c.inner.read().unwrap().1.len() <= CAPACITY);
    }

    #[test]
    fn debug_shows_sizes_not_entries() {
        let cache = ReadCache::new();
        let meta_path = "app/stripe";
        cache.secrets.insert(cache.secrets.generation(), meta_path.into(), Vec::new());
        let shown = format!("{cache:?}");
        assert_eq!(shown, "ReadCache { callers: 0, secrets: 1 }");
        assert!(!shown.contains(meta_path));
    }

    #[test]
    fn a_change_drops_what_it_names() {
        let cache = ReadCache::new();
        let put = |path: &str| cache.secrets.insert(cache.secrets.generation(), path.into(), Vec::new());
        put("app/db");
        put("app/other");
        cache.invalidate(&Evict::Secret("app/db"));
        assert!(cache.secrets.get("app/db").is_none() && cache.secrets.get("app/other").is_some());
        cache.invalidate(&Evict::Secrets);
        assert!(cache.secrets.get("app/other").is_none());
    }
}
