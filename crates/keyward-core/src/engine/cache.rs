//! A small time-bounded cache for rarely changing records read on every request (mounts).
use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::StoreError;

/// Values by name, each kept at most `ttl`; absent records are not cached.
#[derive(Debug)]
pub struct TtlCache<T: Clone> {
    ttl: Duration,
    entries: RwLock<HashMap<String, (T, Instant)>>,
}

impl<T: Clone> TtlCache<T> {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::new(HashMap::new()) }
    }

    /// The cached value, or `load`'s (cached when found).
    pub async fn get<F, Fut>(&self, name: &str, load: F) -> Result<Option<T>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        if let Ok(map) = self.entries.read() {
            if let Some((v, at)) = map.get(name) {
                if at.elapsed() < self.ttl {
                    return Ok(Some(v.clone()));
                }
            }
        }
        let loaded = load().await?;
        if let (Some(v), Ok(mut map)) = (&loaded, self.entries.write()) {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(name.to_owned(), (v.clone(), Instant::now()));
        }
        Ok(loaded)
    }

    /// Drops a name (after this process changed it).
    pub fn forget(&self, name: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caches_found_values_for_the_ttl_only() {
        let c = TtlCache::new(Duration::from_millis(50));
        assert_eq!(c.get("a", || async { Ok(Some(1)) }).await.unwrap(), Some(1));
        assert_eq!(c.get("a", || async { Ok(Some(2)) }).await.unwrap(), Some(1));
        assert_eq!(c.get("b", || async { Ok(None) }).await.unwrap(), None);
        assert_eq!(c.get("b", || async { Ok(Some(3)) }).await.unwrap(), Some(3), "misses are not cached");
        c.forget("a");
        assert_eq!(c.get("a", || async { Ok(Some(4)) }).await.unwrap(), Some(4));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(c.get("a", || async { Ok(Some(5)) }).await.unwrap(), Some(5));
    }
}
