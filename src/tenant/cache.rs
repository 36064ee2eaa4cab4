//! A read-through cache in front of a [`TenantStore`] for the webhook path,
//! where every conversation turn looks its tenant up.
//!
//! Entries live for a short TTL, so changes made by other replicas show up
//! within it; writes made through this cache replace the entry at once.
//! Misses are cached too, so a flood of calls for an unknown tenant reaches
//! the store once per TTL. Strong reads always go to the store.

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Read, Seen, SpecGeneration, StoreError, TenantConfig, TenantKey, TenantSettings, TenantStore,
};
use crate::ids::Id;

/// Default entry lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Default bound on cached tenants.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A [`TenantStore`] that remembers reads for `ttl`.
pub struct CachedStore {
    inner: Arc<dyn TenantStore>,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<TenantKey, (Instant, Option<TenantConfig>)>>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn TenantStore>, ttl: Duration, capacity: usize) -> CachedStore {
        CachedStore {
            inner,
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets `key`, for changes this process learns of some other way.
    pub fn invalidate(&self, key: &TenantKey) {
        self.entries().remove(key);
    }

    fn entries(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<TenantKey, (Instant, Option<TenantConfig>)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh(&self, key: &TenantKey) -> Option<Option<TenantConfig>> {
        let entries = self.entries();
        let (stored, value) = entries.get(key)?;
        (stored.elapsed() < self.ttl).then(|| value.clone())
    }

    fn remember(&self, key: &TenantKey, value: Option<TenantConfig>) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop an arbitrary one rather
                // than grow without bound.
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(key.clone(), (Instant::now(), value));
    }

    /// Keeps the cache in step with a write: what the store now holds when
    /// the write succeeded, otherwise nothing (the next read asks the store).
    fn after_write(&self, key: &TenantKey, now_stored: Option<Option<TenantConfig>>) {
        match now_stored {
            Some(value) => self.remember(key, value),
            None => self.invalidate(key),
        }
    }
}

impl TenantStore for CachedStore {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>> {
        Box::pin(async move {
            if read == Read::Eventual
                && let Some(hit) = self.fresh(key)
            {
                return Ok(hit);
            }
            let found = self.inner.get(key, read).await?;
            self.remember(key, found.clone());
            Ok(found)
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        Box::pin(async move {
            let result = self.inner.put(key, owner, seen, planned, settings).await;
            self.after_write(key, result.as_ref().ok().map(|c| Some(c.clone())));
            result
        })
    }

    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        Box::pin(async move {
            let result = self
                .inner
                .set_enabled(key, owner, seen, planned, enabled)
                .await;
            self.after_write(key, result.as_ref().ok().map(|c| Some(c.clone())));
            result
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let result = self.inner.delete(key, owner).await;
            self.after_write(key, result.as_ref().ok().map(|_| None));
            result
        })
    }
}
