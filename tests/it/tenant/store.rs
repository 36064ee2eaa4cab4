//! One suite, two stores: every case runs against the embedded SQLite store
//! and against DynamoDB on the local AWS emulator through the real SDK.
//! Each case also reads the stored item behind the store's back, to check
//! the seed's item format attribute by attribute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use voice_operator::ids::Id;
use voice_operator::tenant::dynamodb::{DynamoStore, TableOutcome, create_table};
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{
    BedrockAgentRef, Notify, Read, Seen, SpecGeneration, StoreError, TenantKey, TenantSettings,
    TenantStore,
};
use voice_operator::testkit::fixtures::{seed_item, tenant_settings};

/// A store plus raw access to what it keeps.
trait Backend {
    fn store(&self) -> Arc<dyn TenantStore>;
    /// Writes `item` (seed-format JSON) directly, as a person editing the
    /// table by hand would.
    async fn write_raw(&self, item: Value);
    /// The stored item as JSON, or `None`.
    async fn read_raw(&self, key: &TenantKey) -> Option<Value>;
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<SqliteStore>,
}

impl Sqlite {
    async fn new() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/tenants.sqlite");
        let store = Arc::new(SqliteStore::open(&path).await.unwrap());
        Sqlite {
            _dir: dir,
            path,
            store,
        }
    }

    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).unwrap()
    }
}

impl Backend for Sqlite {
    fn store(&self) -> Arc<dyn TenantStore> {
        self.store.clone()
    }

    async fn write_raw(&self, item: Value) {
        self.raw()
            .execute(
                "INSERT OR REPLACE INTO tenants (business_id, location_id, item) VALUES (?1, ?2, ?3)",
                rusqlite::params![
                    item["businessId"].as_str().unwrap(),
                    item["locationId"].as_str().unwrap(),
                    item.to_string()
                ],
            )
            .unwrap();
    }

    async fn read_raw(&self, key: &TenantKey) -> Option<Value> {
        use rusqlite::OptionalExtension;
        let text: Option<String> = self
            .raw()
            .query_row(
                "SELECT item FROM tenants WHERE business_id = ?1 AND location_id = ?2",
                rusqlite::params![key.business_id.as_str(), key.location_id.as_str()],
                |row| row.get(0),
            )
            .optional()
            .unwrap();
        text.map(|t| serde_json::from_str(&t).unwrap())
    }
}

struct Dynamo {
    client: aws_sdk_dynamodb::Client,
    table: String,
    store: Arc<DynamoStore>,
}

impl Dynamo {
    async fn new() -> Dynamo {
        let client = crate::support::dynamodb_client(&crate::support::emulator_endpoint());
        let table = crate::support::unique_name("tenants");
        let outcome = create_table(&client, &table, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(outcome, TableOutcome::Created);
        let store = Arc::new(DynamoStore::new(client.clone(), table.clone()));
        Dynamo {
            client,
            table,
            store,
        }
    }
}

/// JSON to DynamoDB types as the seed's table holds them.
fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Object(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
        other => panic!("no DynamoDB type for {other} in a tenant item"),
    }
}

/// DynamoDB types back to JSON; anything but S, N, BOOL and M fails the
/// test, as the seed's item uses only those.
fn from_attr(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => json!(n.parse::<u64>().unwrap()),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect())
        }
        other => panic!("unexpected DynamoDB type in a tenant item: {other:?}"),
    }
}

impl Backend for Dynamo {
    fn store(&self) -> Arc<dyn TenantStore> {
        self.store.clone()
    }

    async fn write_raw(&self, item: Value) {
        let item: HashMap<String, AttributeValue> = item
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), to_attr(v)))
            .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    async fn read_raw(&self, key: &TenantKey) -> Option<Value> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("businessId", AttributeValue::S(key.business_id.to_string()))
            .key("locationId", AttributeValue::S(key.location_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.map(|item| {
            Value::Object(
                item.iter()
                    .map(|(k, v)| (k.clone(), from_attr(v)))
                    .collect(),
            )
        })
    }
}

fn key(location: &str) -> TenantKey {
    TenantKey::parse("B0100001", location).unwrap()
}

/// The spec generation the writes here are planned from, unless a case
/// is about generations.
const GEN: SpecGeneration = SpecGeneration {
    voice_agent: 1,
    template_created: 0,
    template: 0,
};

fn owner(name: &str) -> Id {
    Id::parse("owner", name).unwrap()
}

/// The seed's example tenant, enabled.
fn settings() -> TenantSettings {
    TenantSettings {
        voice_id: "voice_def456".into(),
        greeting: "Bună ziua! Sunt asistentul virtual.".into(),
        custom_prompt: Some("You are a helpful assistant...".into()),
        business_name: None,
        ..tenant_settings("agent_abc123", true)
    }
}

/// The seed's example item for `location` (no owner, no version).
fn seed_example(location: &str) -> Value {
    Value::Object(seed_item(location))
}

const UID_A: &str = "3f6b2c1e-0d4a-4e8b-9c7f-1a2b3c4d5e6f";
const UID_B: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

async fn round_trip_in_the_seed_format(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100001");
    assert_eq!(store.get(&k, Read::Strong).await.unwrap(), None);
    let written = store
        .put(&k, &owner(UID_A), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();
    assert_eq!(written.settings, settings());
    assert_eq!(written.version, 1);
    assert_eq!(written.owner.as_ref().map(Id::as_str), Some(UID_A));
    assert_eq!(
        store.get(&k, Read::Strong).await.unwrap(),
        Some(written.clone())
    );
    assert_eq!(
        store.get(&k, Read::Eventual).await.unwrap(),
        Some(written.clone())
    );

    let stamp = written.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut expected = seed_example("L0100001");
    expected["createdAt"] = json!(stamp);
    expected["updatedAt"] = json!(stamp);
    expected["ownerUid"] = json!(UID_A);
    expected["version"] = json!(1);
    expected["specGeneration"] = json!(GEN.voice_agent);
    expected["templateCreated"] = json!(GEN.template_created);
    expected["templateGeneration"] = json!(GEN.template);
    assert_eq!(b.read_raw(&k).await.unwrap(), expected);
    assert_eq!(b.read_raw(&k).await.unwrap(), written.to_seed_json());
}

async fn a_second_owner_gets_conflict_and_changes_nothing(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100002");
    store
        .put(&k, &owner(UID_A), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();
    let before = b.read_raw(&k).await.unwrap();

    let mut other = settings();
    other.agent_id = Id::parse("agentId", "agent_other").unwrap();
    let expect_conflict = |result: Result<_, StoreError>| match result {
        Err(StoreError::Conflict {
            current, wanted, ..
        }) => {
            assert_eq!(current.as_deref(), Some(UID_A));
            assert_eq!(wanted, UID_B);
        }
        other => panic!("expected Conflict, got {other:?}"),
    };
    let seen = Seen::Version(1);
    expect_conflict(
        store
            .put(&k, &owner(UID_B), seen, GEN, &other)
            .await
            .map(drop),
    );
    expect_conflict(
        store
            .set_enabled(&k, &owner(UID_B), seen, GEN, false)
            .await
            .map(drop),
    );
    expect_conflict(store.delete(&k, &owner(UID_B)).await.map(drop));
    assert_eq!(b.read_raw(&k).await.unwrap(), before);

    // The owner itself still writes.
    let again = store
        .put(&k, &owner(UID_A), seen, GEN, &other)
        .await
        .unwrap();
    assert_eq!(again.version, 2);
    assert_eq!(again.settings.agent_id.as_str(), "agent_other");
}

async fn disable_and_enable_keep_the_agent_id(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100003");
    let first = store
        .put(&k, &owner(UID_A), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();

    let off = store
        .set_enabled(&k, &owner(UID_A), Seen::Version(1), GEN, false)
        .await
        .unwrap();
    assert!(!off.settings.enabled);
    assert_eq!(off.settings.agent_id.as_str(), "agent_abc123");
    assert_eq!(off.version, 2);
    assert_eq!(off.created_at, first.created_at);
    let raw = b.read_raw(&k).await.unwrap();
    assert_eq!(raw["enabled"], json!(false));
    assert_eq!(raw["agentId"], json!("agent_abc123"));
    assert_eq!(raw["customPrompt"], json!("You are a helpful assistant..."));

    let on = store
        .set_enabled(&k, &owner(UID_A), Seen::Version(2), GEN, true)
        .await
        .unwrap();
    assert!(on.settings.enabled);
    assert_eq!(on.settings, first.settings);
    assert_eq!(on.version, 3);

    match store
        .set_enabled(&key("L0100099"), &owner(UID_A), Seen::Nothing, GEN, true)
        .await
    {
        Err(StoreError::NotFound { key }) => assert_eq!(key, "B0100001/L0100099"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        b.read_raw(&key("L0100099")).await,
        None,
        "set_enabled must not create items"
    );
}

async fn delete_only_by_the_owner(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100004");
    store
        .put(&k, &owner(UID_A), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();
    assert!(store.delete(&k, &owner(UID_A)).await.unwrap());
    assert_eq!(store.get(&k, Read::Strong).await.unwrap(), None);
    assert_eq!(b.read_raw(&k).await, None);
    assert!(
        !store.delete(&k, &owner(UID_A)).await.unwrap(),
        "nothing left to delete"
    );
}

async fn a_put_keeps_created_at_and_drops_cleared_attributes(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100005");
    let mut full = settings();
    full.business_name = Some("Clinica Dentara XYZ".into());
    full.phone_number = Some("+40312345678".into());
    full.bedrock = Some(BedrockAgentRef {
        agent_id: "ABCDEFGHIJ".into(),
        alias_id: "TSTALIASID".into(),
    });
    full.notify = Notify {
        email: Some("receptie@clinica.example.ro".into()),
        sms: Some("+40722000333".into()),
    };
    let first = store
        .put(&k, &owner(UID_A), Seen::Nothing, GEN, &full)
        .await
        .unwrap();
    assert_eq!(first.settings, full);
    let raw = b.read_raw(&k).await.unwrap();
    assert_eq!(raw["bedrockAgentId"], json!("ABCDEFGHIJ"));
    assert_eq!(raw["phoneNumber"], json!("+40312345678"));
    assert_eq!(raw["notifyEmail"], json!("receptie@clinica.example.ro"));
    assert_eq!(raw["notifySms"], json!("+40722000333"));

    let mut bare = settings();
    bare.custom_prompt = None;
    let second = store
        .put(&k, &owner(UID_A), Seen::Version(1), GEN, &bare)
        .await
        .unwrap();
    assert_eq!(second.settings, bare);
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(second.version, 2);
    let raw = b.read_raw(&k).await.unwrap();
    for gone in [
        "customPrompt",
        "businessName",
        "phoneNumber",
        "bedrockAgentId",
        "bedrockAgentAliasId",
        "notifyEmail",
        "notifySms",
    ] {
        assert!(raw.get(gone).is_none(), "{gone} is still stored: {raw}");
    }
}

async fn an_item_from_before_the_operator_is_read_and_claimed(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100006");
    b.write_raw(seed_example("L0100006")).await;
    let legacy = store.get(&k, Read::Strong).await.unwrap().unwrap();
    assert_eq!(legacy.owner, None);
    assert_eq!(legacy.version, 0);
    assert_eq!(legacy.settings, settings());

    let claimed = store
        .put(&k, &owner(UID_A), Seen::of(Some(&legacy)), GEN, &settings())
        .await
        .unwrap();
    assert_eq!(claimed.owner.as_ref().map(Id::as_str), Some(UID_A));
    assert_eq!(claimed.version, 1);
    assert_eq!(claimed.created_at.to_rfc3339(), "2025-10-15T10:00:00+00:00");
    assert!(matches!(
        store
            .put(&k, &owner(UID_B), Seen::Version(1), GEN, &settings())
            .await,
        Err(StoreError::Conflict { .. })
    ));
}

async fn a_hand_edited_item_is_a_typed_error_naming_the_attribute(b: &impl Backend) {
    let store = b.store();
    let cases = [
        ("L0100007", "agentId", Value::Null),
        ("L0100008", "enabled", json!("yes")),
        (
            "L0100009",
            "conversationSettings",
            json!({"recordCalls": true, "sendTranscripts": false}),
        ),
    ];
    for (location, attribute, value) in cases {
        let mut item = seed_example(location);
        if value.is_null() {
            item.as_object_mut().unwrap().remove(attribute);
        } else {
            item[attribute] = value;
        }
        b.write_raw(item).await;
        let k = key(location);
        match store.get(&k, Read::Strong).await {
            Err(StoreError::BadItem { key, error }) => {
                assert_eq!(key, format!("B0100001/{location}"));
                assert!(error.field.starts_with(attribute), "{attribute}: {error}");
            }
            other => panic!("{attribute}: {other:?}"),
        }
    }
    // Its owner (here: nobody yet) can repair it with a put; the item has
    // no version attribute, which reads as version 0.
    let k = key("L0100007");
    let repaired = store
        .put(&k, &owner(UID_A), Seen::Version(0), GEN, &settings())
        .await
        .unwrap();
    assert_eq!(store.get(&k, Read::Strong).await.unwrap(), Some(repaired));
}

async fn racing_owners_never_both_win(b: &impl Backend) {
    let store = b.store();
    for i in 0..10 {
        let k = key(&format!("R{i:07}"));
        let (s1, s2, k1, k2) = (store.clone(), store.clone(), k.clone(), k.clone());
        let a = tokio::spawn(async move {
            s1.put(&k1, &owner(UID_A), Seen::Nothing, GEN, &settings())
                .await
        });
        let b = tokio::spawn(async move {
            s2.put(&k2, &owner(UID_B), Seen::Nothing, GEN, &settings())
                .await
        });
        let results = [a.await.unwrap(), b.await.unwrap()];
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let lost = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
            .count();
        assert_eq!((won.len(), lost), (1, 1), "{results:?}");
        let stored = store.get(&k, Read::Strong).await.unwrap().unwrap();
        assert_eq!(stored.owner, won[0].owner);
        assert_eq!(stored.version, 1);
    }
}

/// Asserts `result` is the stale-write refusal, with what was read and
/// what was found.
fn expect_stale<T: std::fmt::Debug>(result: Result<T, StoreError>, read: Seen, now: Seen) {
    match result {
        Err(StoreError::Stale { seen, found, .. }) => assert_eq!((seen, found), (read, now)),
        other => panic!("expected Stale ({read} -> {now}), got {other:?}"),
    }
}

/// Two reconciles of the same VoiceAgent (same owner) both read version 1,
/// as an old and a new leader do during a Lease hand-over. The first write
/// wins; the second is refused as stale, not as another owner's, and
/// changes nothing. Reading again, it plans again and its write succeeds.
async fn a_stale_writer_loses_and_succeeds_after_reading_again(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100010");
    let first = store
        .put(&k, &owner(UID_A), Seen::Nothing, GEN, &settings())
        .await
        .unwrap();
    let read = Seen::of(Some(&first));
    assert_eq!(read, Seen::Version(1));

    let newer = TenantSettings {
        greeting: "Newer spec".into(),
        ..settings()
    };
    let won = store
        .put(&k, &owner(UID_A), read, GEN, &newer)
        .await
        .unwrap();
    assert_eq!(won.version, 2);
    let stored = b.read_raw(&k).await.unwrap();

    let older = TenantSettings {
        greeting: "Older spec".into(),
        ..settings()
    };
    let now = Seen::Version(2);
    expect_stale(
        store.put(&k, &owner(UID_A), read, GEN, &older).await,
        read,
        now,
    );
    expect_stale(
        store.set_enabled(&k, &owner(UID_A), read, GEN, false).await,
        read,
        now,
    );
    // A writer that found no item (a first reconcile) cannot create over it.
    expect_stale(
        store
            .put(&k, &owner(UID_A), Seen::Nothing, GEN, &older)
            .await,
        Seen::Nothing,
        now,
    );
    assert_eq!(b.read_raw(&k).await.unwrap(), stored, "nothing was written");

    // Reading again shows the newer spec; the plan made from it writes.
    let again = store.get(&k, Read::Strong).await.unwrap().unwrap();
    assert_eq!(again.settings.greeting, "Newer spec");
    let off = store
        .set_enabled(&k, &owner(UID_A), Seen::of(Some(&again)), GEN, false)
        .await
        .unwrap();
    assert_eq!(off.version, 3);
    assert_eq!(off.settings.greeting, "Newer spec");

    // An item deleted after the read: the write does not bring it back.
    assert!(store.delete(&k, &owner(UID_A)).await.unwrap());
    expect_stale(
        store
            .put(&k, &owner(UID_A), Seen::Version(3), GEN, &older)
            .await,
        Seen::Version(3),
        Seen::Nothing,
    );
    assert_eq!(b.read_raw(&k).await, None);
}

/// An item from before the operator (no version attribute) is version 0
/// to a writer; once claimed, a write planned from the old read is stale.
async fn a_claim_planned_from_an_old_read_of_a_seed_item_is_stale(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100011");
    b.write_raw(seed_example("L0100011")).await;
    let read = Seen::of(store.get(&k, Read::Strong).await.unwrap().as_ref());
    assert_eq!(read, Seen::Version(0));
    store
        .put(&k, &owner(UID_A), read, GEN, &settings())
        .await
        .unwrap();
    expect_stale(
        store.put(&k, &owner(UID_A), read, GEN, &settings()).await,
        read,
        Seen::Version(1),
    );
}

/// An old leader whose cache holds an older VoiceAgent (generation 3)
/// reads the item after the new leader wrote it from generation 4: it
/// sees the newest version, yet its write is refused as planned from an
/// older spec, and nothing changes. The template's generation counts when
/// the VoiceAgent's are equal and the template is the same one. An item from before generations were stored
/// accepts any.
async fn a_write_planned_from_an_older_generation_is_refused_after_a_newer_one(b: &impl Backend) {
    let store = b.store();
    let k = key("L0100012");
    let at = |voice_agent, made, template| {
        SpecGeneration::of(Some(voice_agent)).with_template(Some(made), Some(template))
    };
    let first = store
        .put(&k, &owner(UID_A), Seen::Nothing, at(3, 0, 0), &settings())
        .await
        .unwrap();
    let newer = TenantSettings {
        greeting: "Generation 4".into(),
        ..settings()
    };
    let written = store
        .put(
            &k,
            &owner(UID_A),
            Seen::of(Some(&first)),
            at(4, 0, 0),
            &newer,
        )
        .await
        .unwrap();
    assert_eq!(written.spec_generation, Some(at(4, 0, 0)));
    let stored = b.read_raw(&k).await.unwrap();
    assert_eq!(
        (&stored["specGeneration"], &stored["templateGeneration"]),
        (&json!(4), &json!(0))
    );

    // The newest version, read after the newer write.
    let read = Seen::of(store.get(&k, Read::Strong).await.unwrap().as_ref());
    assert_eq!(read, Seen::Version(2));
    let older = TenantSettings {
        greeting: "Generation 3".into(),
        ..settings()
    };
    let expect_superseded = |result: Result<_, StoreError>, planned, newer| match result {
        Err(StoreError::Superseded {
            planned: p, stored, ..
        }) => assert_eq!((p, stored), (planned, newer)),
        other => panic!("expected Superseded, got {other:?}"),
    };
    expect_superseded(
        store
            .put(&k, &owner(UID_A), read, at(3, 0, 0), &older)
            .await,
        at(3, 0, 0),
        at(4, 0, 0),
    );
    expect_superseded(
        store
            .set_enabled(&k, &owner(UID_A), read, at(3, 1_000, 9), false)
            .await,
        at(3, 1_000, 9),
        at(4, 0, 0),
    );
    assert_eq!(b.read_raw(&k).await.unwrap(), stored, "nothing was written");

    // Same VoiceAgent generation: a template edit moves it on, an older
    // template generation is refused, an equal one writes.
    let templated = store
        .set_enabled(&k, &owner(UID_A), read, at(4, 1_000, 2), false)
        .await
        .unwrap();
    let templated_read = Seen::of(Some(&templated));
    expect_superseded(
        store
            .put(&k, &owner(UID_A), templated_read, at(4, 1_000, 1), &newer)
            .await,
        at(4, 1_000, 1),
        at(4, 1_000, 2),
    );
    let again = store
        .put(
            &k,
            &owner(UID_A),
            Seen::of(Some(&templated)),
            at(4, 1_000, 2),
            &newer,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.version, again.spec_generation),
        (4, Some(at(4, 1_000, 2)))
    );
    // The template deleted and made again under its name: generation 1,
    // made later, so newer.
    let remade = store
        .put(
            &k,
            &owner(UID_A),
            Seen::of(Some(&again)),
            at(4, 1_001, 1),
            &newer,
        )
        .await
        .unwrap();
    assert_eq!(remade.spec_generation, Some(at(4, 1_001, 1)));
    let raw = b.read_raw(&k).await.unwrap();
    assert_eq!(
        (&raw["templateCreated"], &raw["templateGeneration"]),
        (&json!(1_001), &json!(1))
    );

    // A seed item has no generation: any plan may claim it.
    let legacy = key("L0100013");
    b.write_raw(seed_example("L0100013")).await;
    let claimed = store
        .put(
            &legacy,
            &owner(UID_A),
            Seen::Version(0),
            at(0, 0, 0),
            &settings(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.spec_generation, Some(at(0, 0, 0)));
}

/// SQLite only, like the race of owners below: writers of one owner
/// that read the same version race; exactly one writes.
async fn racing_writers_of_one_read_never_both_win(b: &impl Backend) {
    let store = b.store();
    for i in 0..10 {
        let k = key(&format!("S{i:07}"));
        store
            .put(&k, &owner(UID_A), Seen::Nothing, GEN, &settings())
            .await
            .unwrap();
        let writers = ["first", "second"].map(|greeting| {
            let (store, k) = (store.clone(), k.clone());
            let next = TenantSettings {
                greeting: greeting.into(),
                ..settings()
            };
            tokio::spawn(async move {
                store
                    .put(&k, &owner(UID_A), Seen::Version(1), GEN, &next)
                    .await
            })
        });
        let mut results = Vec::new();
        for writer in writers {
            results.push(writer.await.unwrap());
        }
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let stale = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Stale { .. })))
            .count();
        assert_eq!((won.len(), stale), (1, 1), "{results:?}");
        let stored = store.get(&k, Read::Strong).await.unwrap().unwrap();
        assert_eq!(stored.version, 2);
        assert_eq!(stored.settings.greeting, won[0].settings.greeting);
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Sqlite::new().await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Dynamo::new().await).await;
                }
            )*
        }
    };
}

suite!(
    round_trip_in_the_seed_format,
    a_second_owner_gets_conflict_and_changes_nothing,
    disable_and_enable_keep_the_agent_id,
    delete_only_by_the_owner,
    a_put_keeps_created_at_and_drops_cleared_attributes,
    an_item_from_before_the_operator_is_read_and_claimed,
    a_hand_edited_item_is_a_typed_error_naming_the_attribute,
    a_stale_writer_loses_and_succeeds_after_reading_again,
    a_claim_planned_from_an_old_read_of_a_seed_item_is_stale,
    a_write_planned_from_an_older_generation_is_refused_after_a_newer_one,
);

/// SQLite only: moto evaluates a condition and writes without a lock, so
/// two racing writers can both pass there (seen: both puts succeeded).
/// DynamoDB itself applies a conditional write atomically; the condition
/// expression is the same one the suite checks sequentially above.
#[tokio::test]
async fn racing_owners_never_both_win_on_sqlite() {
    racing_owners_never_both_win(&Sqlite::new().await).await;
}

#[tokio::test]
async fn racing_writers_of_one_read_never_both_win_on_sqlite() {
    racing_writers_of_one_read_never_both_win(&Sqlite::new().await).await;
}

#[tokio::test]
async fn create_table_is_idempotent_and_checks_the_key_schema() {
    let client = crate::support::dynamodb_client(&crate::support::emulator_endpoint());
    let table = crate::support::unique_name("tenants");
    let wait = Duration::from_secs(30);
    assert_eq!(
        create_table(&client, &table, wait).await.unwrap(),
        TableOutcome::Created
    );
    assert_eq!(
        create_table(&client, &table, wait).await.unwrap(),
        TableOutcome::AlreadyExisted
    );
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let description = described.table.unwrap();
    assert_eq!(
        description
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );

    // A table of that name with another key is reported, not used.
    let wrong = crate::support::unique_name("wrong");
    client
        .create_table()
        .table_name(&wrong)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let err = create_table(&client, &wrong, wait).await.unwrap_err();
    assert!(err.to_string().contains("HASH id"), "{err}");
}

#[tokio::test]
async fn a_missing_table_says_how_to_create_it() {
    let client = crate::support::dynamodb_client(&crate::support::emulator_endpoint());
    let store = DynamoStore::new(client, "no-such-table".into());
    let err = store.get(&key("L1"), Read::Strong).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("voice-operator dynamodb create-table"),
        "{err}"
    );
}

#[tokio::test]
async fn the_sqlite_store_keeps_items_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.sqlite");
    let written = {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .put(&key("L1"), &owner(UID_A), Seen::Nothing, GEN, &settings())
            .await
            .unwrap()
    };
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.get(&key("L1"), Read::Strong).await.unwrap(),
        Some(written)
    );
}
