//! The webhook path's read-through cache over a real (SQLite) store.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use voice_operator::ids::Id;
use voice_operator::tenant::cache::CachedStore;
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{
    ConversationSettings, Read, StoreError, TenantConfig, TenantKey, TenantSettings, TenantStore,
};

/// Counts the reads that reach the store.
struct Counting {
    inner: SqliteStore,
    gets: AtomicUsize,
}

impl TenantStore for Counting {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key, read)
    }
    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        self.inner.put(key, owner, settings)
    }
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        self.inner.set_enabled(key, owner, enabled)
    }
    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.delete(key, owner)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    backing: Arc<Counting>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let inner = SqliteStore::open(&dir.path().join("t.sqlite"))
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            backing: Arc::new(Counting {
                inner,
                gets: AtomicUsize::new(0),
            }),
        }
    }

    fn cache(&self, ttl: Duration, capacity: usize) -> CachedStore {
        CachedStore::new(self.backing.clone(), ttl, capacity)
    }

    fn gets(&self) -> usize {
        self.backing.gets.load(Ordering::SeqCst)
    }
}

fn key(l: &str) -> TenantKey {
    TenantKey::parse("B0100001", l).unwrap()
}

fn owner() -> Id {
    Id::parse("owner", "uid-a").unwrap()
}

fn settings() -> TenantSettings {
    TenantSettings {
        enabled: true,
        agent_id: Id::parse("agentId", "agent_1").unwrap(),
        voice_id: "v".into(),
        greeting: "Bună ziua!".into(),
        custom_prompt: None,
        business_name: None,
        phone_number: None,
        bedrock: None,
        conversation: ConversationSettings {
            max_duration_secs: 300,
            record_calls: false,
            send_transcripts: false,
        },
    }
}

#[tokio::test]
async fn reads_within_the_ttl_are_served_from_memory_and_misses_are_remembered() {
    let f = Fixture::new().await;
    f.backing
        .put(&key("L1"), &owner(), &settings())
        .await
        .unwrap();
    let cache = f.cache(Duration::from_secs(60), 100);
    for _ in 0..50 {
        assert!(
            cache
                .get(&key("L1"), Read::Eventual)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .get(&key("UNKNOWN"), Read::Eventual)
                .await
                .unwrap()
                .is_none()
        );
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
    assert!(
        cache
            .get(&key("L1"), Read::Eventual)
            .await
            .unwrap()
            .is_none()
    );

    cache.put(&key("L1"), &owner(), &settings()).await.unwrap();
    assert!(
        cache
            .get(&key("L1"), Read::Eventual)
            .await
            .unwrap()
            .unwrap()
            .settings
            .enabled
    );
    cache
        .set_enabled(&key("L1"), &owner(), false)
        .await
        .unwrap();
    assert!(
        !cache
            .get(&key("L1"), Read::Eventual)
            .await
            .unwrap()
            .unwrap()
            .settings
            .enabled
    );
    cache.delete(&key("L1"), &owner()).await.unwrap();
    assert!(
        cache
            .get(&key("L1"), Read::Eventual)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(f.gets(), 1, "only the first miss read the store");

    // A failed write drops the entry, so the next read asks the store.
    let other = Id::parse("owner", "uid-b").unwrap();
    cache.put(&key("L2"), &owner(), &settings()).await.unwrap();
    assert!(cache.put(&key("L2"), &other, &settings()).await.is_err());
    cache.get(&key("L2"), Read::Eventual).await.unwrap();
    assert_eq!(f.gets(), 2);
}

#[tokio::test]
async fn entries_expire_after_the_ttl_and_changes_elsewhere_show_up() {
    let f = Fixture::new().await;
    f.backing
        .put(&key("L1"), &owner(), &settings())
        .await
        .unwrap();
    let cache = f.cache(Duration::from_millis(50), 100);
    assert!(
        cache
            .get(&key("L1"), Read::Eventual)
            .await
            .unwrap()
            .unwrap()
            .settings
            .enabled
    );
    // Another replica disables the tenant.
    f.backing
        .set_enabled(&key("L1"), &owner(), false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        !cache
            .get(&key("L1"), Read::Eventual)
            .await
            .unwrap()
            .unwrap()
            .settings
            .enabled
    );
    assert_eq!(f.gets(), 2);

    cache.invalidate(&key("L1"));
    cache.get(&key("L1"), Read::Eventual).await.unwrap();
    assert_eq!(f.gets(), 3);
}

#[tokio::test]
async fn the_cache_stays_within_its_capacity() {
    let f = Fixture::new().await;
    let cache = f.cache(Duration::from_secs(60), 8);
    for i in 0..100 {
        cache
            .get(&key(&format!("L{i}")), Read::Eventual)
            .await
            .unwrap();
    }
    assert_eq!(f.gets(), 100);
    // The most recent key is still cached; the total is bounded.
    cache.get(&key("L99"), Read::Eventual).await.unwrap();
    assert_eq!(f.gets(), 100);
    let mut hits = 0;
    for i in 0..100 {
        let before = f.gets();
        cache
            .get(&key(&format!("L{i}")), Read::Eventual)
            .await
            .unwrap();
        if f.gets() == before {
            hits += 1;
        }
    }
    assert!(hits <= 8, "{hits} entries were cached with capacity 8");
}
