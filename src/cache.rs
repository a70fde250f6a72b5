//! A moka cache that never serves a value this process has invalidated.
//!
//! A plain "read on miss, insert" loader races with invalidation: a load that read the old row before
//! a change commits could insert it after the change invalidated the key, and the stale value would
//! then live until the TTL. Here every invalidation bumps an epoch under a write lock, and a load
//! inserts only if no invalidation happened since it started. Changes made by other processes arrive
//! through [`crate::invalidation`] (PostgreSQL) and are bounded by the TTL in any case.

use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use moka::future::Cache;
use tokio::sync::RwLock;

pub struct ConsistentCache<K, V> {
    entries: Cache<K, V>,
    epoch: RwLock<u64>,
}

impl<K, V> ConsistentCache<K, V>
where
    K: Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        ConsistentCache {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            epoch: RwLock::new(0),
        }
    }

    /// The cached value, or the loader's (cached unless an invalidation raced with it).
    pub async fn get_or_load<E, F>(&self, key: K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.lookup(key, load).await.map(|(value, _)| value)
    }

    /// As [`ConsistentCache::get_or_load`], and whether the value came from the cache (`true`)
    /// or from the loader (`false`), for the hit and miss counters.
    pub async fn lookup<E, F>(&self, key: K, load: F) -> Result<(V, bool), E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.entries.get(&key).await {
            return Ok((value, true));
        }
        let started = *self.epoch.read().await;
        let value = load.await?;
        let epoch = self.epoch.read().await;
        if *epoch == started {
            self.entries.insert(key, value.clone()).await;
        }
        Ok((value, false))
    }

    /// Drops the key; loads that were in flight will not re-insert their (older) value.
    pub async fn invalidate(&self, key: &K) {
        let mut epoch = self.epoch.write().await;
        *epoch += 1;
        self.entries.invalidate(key).await;
    }

    /// Drops every entry, under the same guarantee as [`ConsistentCache::invalidate`].
    pub async fn invalidate_all(&self) {
        let mut epoch = self.epoch.write().await;
        *epoch += 1;
        self.entries.invalidate_all();
    }
}
