//! The webhook path's read-through cache over a real (SQLite) store.

use std::sync::Arc;
use std::time::Duration;

use crate::support::kube_mock::{Journal, JournaledStore};
use voice_operator::ids::Id;
use voice_operator::tenant::cache::CachedStore;
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{Read, Seen, SpecGeneration, TenantKey, TenantSettings, TenantStore};
use voice_operator::testkit::fixtures::tenant_settings;

/// The spec generation every write here is planned from.
const GEN: SpecGeneration = SpecGeneration {
    voice_agent: 1,
    template_created: 0,
    template: 0,
};

/// A SQLite store behind a journal, which counts the reads that reach it.
struct Fixture {
    _dir: tempfile::TempDir,
    backing: Arc<JournaledStore<SqliteStore>>,
    journal: Journal,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let inner = SqliteStore::open(&dir.path().join("t.sqlite"))
            .await
            .unwrap();
        let journal = Journal::default();
        Fixture {
            _dir: dir,
            backing: Arc::new(JournaledStore {
                inner: Arc::new(inner),
                journal: journal.clone(),
            }),
            journal,
        }
    }

    /// A fixture whose store already holds the tenant at `location`.
    async fn holding(location: &str) -> Fixture {
        let f = Fixture::new().await;
        f.backing
            .put(&key(location), &owner(), Seen::Nothing, GEN, &settings())
            .await
            .unwrap();
        f
    }

    fn cache(&self, ttl: Duration, capacity: usize) -> CachedStore {
        CachedStore::new(self.backing.clone(), ttl, capacity)
    }

    /// Reads that reached the store so far.
    fn gets(&self) -> usize {
        self.journal.count("store: get ")
    }
}

fn key(l: &str) -> TenantKey {
    TenantKey::parse("B0100001", l).unwrap()
}

fn owner() -> Id {
    Id::parse("owner", "uid-a").unwrap()
}

fn settings() -> TenantSettings {
    tenant_settings("agent_1", true)
}

/// An eventual read of `location` through `cache`: `None` without an item,
/// else whether the tenant is enabled.
async fn enabled(cache: &CachedStore, location: &str) -> Option<bool> {
    cache
        .get(&key(location), Read::Eventual)
        .await
        .unwrap()
        .map(|config| config.settings.enabled)
}

#[tokio::test]
async fn reads_within_the_ttl_are_served_from_memory_and_misses_are_remembered() {
    let f = Fixture::holding("L1").await;
    let cache = f.cache(Duration::from_secs(60), 100);
    for _ in 0..50 {
        assert!(enabled(&cache, "L1").await.is_some());
        assert_eq!(enabled(&cache, "UNKNOWN").await, None);
    }
    assert_eq!(f.gets(), 2, "one store read per key");
    // Strong reads always go to the store.
    cache.get(&key("L1"), Read::Strong).await.unwrap();
    assert_eq!(f.gets(), 3);
}

#[tokio::test]
async fn writes_through_the_cache_are_seen_at_once() {
    let f = Fixture::new().await;
    let cache = f.cache(Duration::from_secs(60), 100);
    assert_eq!(enabled(&cache, "L1").await, None);

    cache
        .put(&key("L1"), &owner(), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();
    assert_eq!(enabled(&cache, "L1").await, Some(true));
    cache
        .set_enabled(&key("L1"), &owner(), Seen::Version(1), GEN, false)
        .await
        .unwrap();
    assert_eq!(enabled(&cache, "L1").await, Some(false));
    cache.delete(&key("L1"), &owner()).await.unwrap();
    assert_eq!(enabled(&cache, "L1").await, None);
    assert_eq!(f.gets(), 1, "only the first miss read the store");

    // A failed write drops the entry, so the next read asks the store.
    let other = Id::parse("owner", "uid-b").unwrap();
    cache
        .put(&key("L2"), &owner(), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();
    assert!(
        cache
            .put(&key("L2"), &other, Seen::Version(1), GEN, &settings())
            .await
            .is_err()
    );
    enabled(&cache, "L2").await;
    assert_eq!(f.gets(), 2);
}

#[tokio::test]
async fn entries_expire_after_the_ttl_and_changes_elsewhere_show_up() {
    let f = Fixture::holding("L1").await;
    let cache = f.cache(Duration::from_millis(50), 100);
    assert_eq!(enabled(&cache, "L1").await, Some(true));
    // Another replica disables the tenant.
    f.backing
        .set_enabled(&key("L1"), &owner(), Seen::Version(1), GEN, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(enabled(&cache, "L1").await, Some(false));
    assert_eq!(f.gets(), 2);

    cache.invalidate(&key("L1"));
    enabled(&cache, "L1").await;
    assert_eq!(f.gets(), 3);
}

#[tokio::test]
async fn the_cache_stays_within_its_capacity() {
    let f = Fixture::new().await;
    let cache = f.cache(Duration::from_secs(60), 8);
    for i in 0..100 {
        enabled(&cache, &format!("L{i}")).await;
    }
    assert_eq!(f.gets(), 100);
    // The most recent key is still cached; the total is bounded.
    enabled(&cache, "L99").await;
    assert_eq!(f.gets(), 100);
    let mut hits = 0;
    for i in 0..100 {
        let before = f.gets();
        enabled(&cache, &format!("L{i}")).await;
        if f.gets() == before {
            hits += 1;
        }
    }
    assert!(hits <= 8, "{hits} entries were cached with capacity 8");
}
