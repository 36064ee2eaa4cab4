//! The reconciler against a mocked API server (tower_test), the fake
//! ElevenLabs on wiremock and a real SQLite tenant store: the exact calls,
//! in order, of each kind of reconcile.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_elevenlabs::{API_KEY, FakeElevenLabs, FaultKinds, Faults};
use crate::support::kube_mock::{
    Journal, JournaledPlatform, JournaledStore, MockKube, WriteAfterRead,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use kube::runtime::watcher;
use prometheus_client::registry::Registry;
use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::controller::objects::KubeObjects;
use voice_operator::controller::{
    Context, Metrics, Parts, Timing, desired, error_policy, reconcile,
};
use voice_operator::crd::{
    DeletionPolicy, FINALIZER, NotifySpec, Phase, SecretRef, SipTransport, SipTrunkSpec,
    TelephonySpec, VoiceAgent, VoiceAgentSpec, VoiceModel, VoiceSpec,
};
use voice_operator::elevenlabs::{ClientConfig, ElevenLabsClient};
use voice_operator::ids::Id;
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{Notify, Read, SpecGeneration, TenantKey, TenantStore};
use voice_operator::testkit::fixtures::{self, CLINIC_UID as UID, operator_settings as settings};

const KEY: &str = "B0100001/L0100001";

/// The clinic without its phone number, for the agent and tenant-item
/// sequences; the phone-number tests at the end give it back.
fn clinic() -> VoiceAgent {
    let mut va = fixtures::clinic();
    va.spec.phone_number = None;
    va
}

struct Harness {
    kube: MockKube,
    journal: Journal,
    fake: FakeElevenLabs,
    store: Arc<WriteAfterRead<SqliteStore>>,
    ctx: Arc<Context>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(va: &VoiceAgent, others: &[VoiceAgent]) -> Harness {
        Harness::with_fake(va, others, FakeElevenLabs::start(Faults::default()).await).await
    }

    async fn with_fake(va: &VoiceAgent, others: &[VoiceAgent], fake: FakeElevenLabs) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(WriteAfterRead::new(Arc::new(
            SqliteStore::open(&dir.path().join("t.sqlite3"))
                .await
                .unwrap(),
        )));
        let journal = Journal::default();
        let kube = MockKube::start(va, journal.clone());
        let ctx = context(&kube, &fake, &journal, &store, va, others);
        Harness {
            kube,
            journal,
            fake,
            store,
            ctx,
            _dir: dir,
        }
    }

    /// A context as a freshly started controller has it.
    fn restarted(&self, va: &VoiceAgent) -> Arc<Context> {
        context(&self.kube, &self.fake, &self.journal, &self.store, va, &[])
    }

    /// A user's spec edit: the API server raises the generation.
    fn edit_spec(&self, edit: impl FnOnce(&mut VoiceAgentSpec)) {
        let mut va = self.kube.current();
        edit(&mut va.spec);
        va.metadata.generation = Some(va.metadata.generation.unwrap_or(1) + 1);
        self.kube.set(&va);
    }

    async fn reconcile(&self) -> Action {
        let va = Arc::new(self.kube.current());
        reconcile(va, self.ctx.clone()).await.unwrap()
    }

    /// Asserts the calls made since the last look, in order; `{KEY}` in
    /// `expected` stands for the tenant's key.
    fn assert_calls(&self, expected: &[&str]) {
        let expected: Vec<String> = expected.iter().map(|s| s.replace("{KEY}", KEY)).collect();
        assert_eq!(self.journal.take(), expected);
    }

    async fn item(&self) -> Option<voice_operator::tenant::TenantConfig> {
        let key = TenantKey::parse("B0100001", "L0100001").unwrap();
        self.store.inner.get(&key, Read::Strong).await.unwrap()
    }
}

fn context(
    kube: &MockKube,
    fake: &FakeElevenLabs,
    journal: &Journal,
    store: &Arc<WriteAfterRead<SqliteStore>>,
    va: &VoiceAgent,
    others: &[VoiceAgent],
) -> Arc<Context> {
    let mut config = ClientConfig::new(fake.uri(), SecretString::from(API_KEY));
    config.max_retries = 0;
    let platform = JournaledPlatform {
        inner: ElevenLabsClient::new(config).unwrap(),
        journal: journal.clone(),
    };
    let store = JournaledStore {
        inner: store.clone(),
        journal: journal.clone(),
    };
    Arc::new(Context::new(Parts {
        objects: Arc::new(KubeObjects::new(kube.client.clone(), Some("test".into()))),
        platform: Arc::new(platform),
        store: Arc::new(store),
        settings: settings(),
        timing: Timing::default(),
        claims: claims(va, others),
        metrics: Arc::new(Metrics::register(&mut Registry::default())),
    }))
}

fn claims(va: &VoiceAgent, others: &[VoiceAgent]) -> reflector::Store<VoiceAgent> {
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for v in std::iter::once(va).chain(others) {
        writer.apply_watcher_event(&watcher::Event::InitApply(v.clone()));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// First reconcile, then the journal is cleared; returns the agent id.
async fn created(h: &Harness) -> String {
    h.reconcile().await;
    h.journal.take();
    h.fake.take_log();
    h.kube.current().status.unwrap().agent_id.unwrap()
}

#[tokio::test]
async fn first_reconcile_adds_the_finalizer_creates_the_agent_writes_the_item_then_the_status() {
    let h = Harness::new(&clinic(), &[]).await;
    let action = h.reconcile().await;
    // The fake numbers agents from 1.
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "store: get {KEY}",
        // Reconciling True before the first call to ElevenLabs.
        "kube: patch status",
        "elevenlabs: list agents",
        "elevenlabs: create agent",
        "kube: create Event Created",
        "elevenlabs: get agent agent_000001",
        "store: put {KEY}",
        "kube: create Event ConfigSynced",
        "kube: patch status",
    ]);
    assert!(
        format!("{action:?}").contains("requeue_after: Some"),
        "{action:?}"
    );

    let agents = h.fake.agents();
    assert_eq!(agents.len(), 1);
    let (agent_id, agent) = agents.iter().next().unwrap();
    assert_eq!(agent["name"], "Agent Clinica Dentara XYZ");
    let tags: Vec<&str> = agent["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"voice-operator") && tags.contains(&format!("uid:{UID}").as_str()),
        "{tags:?}"
    );
    let prompt = &agent["conversation_config"]["agent"]["prompt"];
    assert_eq!(prompt["llm"], "custom-llm");
    assert_eq!(
        prompt["custom_llm"]["url"],
        "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001"
    );
    // Accepted by the contract-enforcing stand-in: Romanian speaks through
    // a multilingual model, every turn carries its conversation id, and
    // recordCalls reaches ElevenLabs' own privacy settings.
    assert_eq!(
        agent["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2_5"
    );
    assert_eq!(
        prompt["custom_llm"]["request_headers"]["X-Conversation-Id"],
        json!({"variable_name": "system__conversation_id"})
    );
    assert_eq!(
        agent["platform_settings"]["privacy"],
        json!({"record_voice": true, "retention_days": 90, "zero_retention_mode": false})
    );

    let item = h.item().await.expect("the tenant item is written");
    assert_eq!(item.settings.agent_id.as_str(), agent_id);
    assert_eq!(item.owner.as_ref().map(|o| o.as_str()), Some(UID));
    assert!(item.settings.enabled);

    let va = h.kube.current();
    assert_eq!(va.metadata.finalizers, Some(vec![FINALIZER.to_owned()]));
    let status = va.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Active));
    assert_eq!(status.agent_id.as_deref(), Some(agent_id.as_str()));
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.config_hash.is_some() && status.last_synced_at.is_some());
    let conditions: Vec<(&str, &str, &str)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Ready", "True", "Active"),
            ("Reconciling", "False", "Reconciled"),
            ("Stalled", "False", "Reconciled"),
            ("AgentSynced", "True", "Synced"),
            ("ConfigSynced", "True", "Synced")
        ]
    );
    // The status went out as server-side apply of the status alone.
    let patch = h.kube.status_patches.lock().unwrap()[0].clone();
    assert_eq!(patch["kind"], "VoiceAgent");
    assert_eq!(patch["apiVersion"], "voiceagents.io/v1alpha1");
}

#[tokio::test]
async fn a_second_reconcile_with_nothing_changed_only_reads_the_item() {
    let h = Harness::new(&clinic(), &[]).await;
    created(&h).await;
    h.reconcile().await;
    h.assert_calls(&["store: get {KEY}"]);
    assert!(h.fake.take_log().is_empty());
}

/// Turns the VoiceAgent's `enabled` to `on` and reconciles: only the item's
/// switch is written, with its Event.
async fn switch(h: &Harness, on: bool) {
    h.edit_spec(|spec| spec.enabled = on);
    h.reconcile().await;
    let event = if on { "Enabled" } else { "Disabled" };
    // The agent's first message follows: the greeting, or the closing
    // sentence while disabled.
    let updated = if on { "repeat" } else { "create" };
    h.assert_calls(&[
        "store: get {KEY}",
        "elevenlabs: update agent agent_000001",
        &format!("kube: {updated} Event Updated"),
        "elevenlabs: get agent agent_000001",
        &format!("store: set {{KEY}} enabled={on}"),
        &format!("kube: create Event {event}"),
        "kube: patch status",
    ]);
}

#[tokio::test]
async fn disabling_switches_the_item_off_and_keeps_the_agent_for_reenabling() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;

    switch(&h, false).await;
    let item = h.item().await.unwrap();
    assert!(!item.settings.enabled);
    assert_eq!(item.settings.agent_id.as_str(), agent_id);
    assert!(h.fake.agents().contains_key(&agent_id), "agent kept");
    let status = h.kube.current().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Disabled));
    assert_eq!(status.agent_id.as_deref(), Some(agent_id.as_str()));
    assert_eq!(status.observed_generation, Some(2));

    switch(&h, true).await;
    assert_eq!(
        h.kube.current().status.unwrap().agent_id.as_deref(),
        Some(agent_id.as_str())
    );
    assert_eq!(h.fake.agents().len(), 1);
}

#[tokio::test]
async fn a_spec_change_sends_exactly_one_patch() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    h.edit_spec(|spec| spec.greeting = "Bună seara!".into());
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        &format!("elevenlabs: update agent {agent_id}"),
        "kube: create Event Updated",
        &format!("elevenlabs: get agent {agent_id}"),
        "store: put {KEY}",
        "kube: repeat Event ConfigSynced",
        "kube: patch status",
    ]);
    assert_eq!(
        h.fake.take_log(),
        [
            format!("PATCH /v1/convai/agents/{agent_id}"),
            format!("GET /v1/convai/agents/{agent_id}")
        ]
    );
    assert_eq!(
        h.fake.agents()[&agent_id]["conversation_config"]["agent"]["first_message"],
        "Bună seara!"
    );
    assert_eq!(h.item().await.unwrap().settings.greeting, "Bună seara!");
}

#[tokio::test]
async fn the_notify_addresses_reach_the_tenant_item() {
    let h = Harness::new(&clinic(), &[]).await;
    created(&h).await;
    assert_eq!(h.item().await.unwrap().settings.notify, Notify::default());
    h.edit_spec(|spec| {
        spec.conversation.send_transcripts = true;
        spec.notify = Some(NotifySpec {
            email: Some("receptie@clinica.example.ro".into()),
            sms: Some("+40722000333".into()),
        });
    });
    h.reconcile().await;
    let item = h.item().await.unwrap();
    assert!(item.settings.conversation.send_transcripts);
    assert_eq!(
        item.settings.notify,
        Notify {
            email: Some("receptie@clinica.example.ro".into()),
            sms: Some("+40722000333".into()),
        }
    );
}

/// Two replicas on the same spec generation (a Lease hand-over where both
/// caches hold spec 2): the other writes the tenant item between this
/// reconcile's read and its write. This write is refused as stale (not
/// Conflict, not Stalled, status untouched), the retry comes within a
/// second, and reconciling again from fresh reads leaves the newest spec
/// everywhere.
#[tokio::test]
async fn a_write_planned_from_an_item_that_changed_is_refused_and_the_newest_spec_wins() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    let before = h.kube.current().status.unwrap();
    h.edit_spec(|spec| spec.greeting = "Spec 2".into());
    let stale = Arc::new(h.kube.current());
    let owner = Id::parse("uid", UID).unwrap();
    let agent = Id::parse("agentId", &agent_id).unwrap();
    let planned = SpecGeneration::of(stale.metadata.generation);
    let mut other = desired::tenant_settings(&stale, &agent);
    other.greeting = "Written by the other replica".into();
    h.store.write_after_next_read(owner, planned, other);

    let err = reconcile(stale.clone(), h.ctx.clone()).await.unwrap_err();
    assert!(err.is_stale() && !err.is_permanent(), "{err}");
    assert_eq!(err.reason().as_str(), "TenantItemChanged");
    assert!(
        err.to_string().contains("read version 1, found version 2"),
        "{err}"
    );
    let journal = h.journal.take();
    let store_calls: Vec<&String> = journal.iter().filter(|c| c.starts_with("store:")).collect();
    assert_eq!(
        store_calls,
        [
            &"store: get {KEY}".replace("{KEY}", KEY),
            &"store: put {KEY}".replace("{KEY}", KEY)
        ],
        "{journal:?}"
    );
    assert_eq!(journal.last(), store_calls.last().copied(), "{journal:?}");
    let item = h.item().await.unwrap();
    assert_eq!(
        (item.settings.greeting.as_str(), item.version),
        ("Written by the other replica", 2)
    );
    assert_eq!(
        h.kube.current().status.unwrap(),
        before,
        "a stale write is no failure to report"
    );
    assert!(
        !h.kube
            .event_reasons()
            .contains(&"TenantItemChanged".to_owned())
    );
    let wait = requeue_secs(&error_policy(stale, &err, h.ctx.clone()));
    assert!(wait <= 1.0, "retried within the first backoff step: {wait}");

    // The next edit, reconciled from fresh reads, wins everywhere.
    h.edit_spec(|spec| spec.greeting = "Spec 3".into());
    h.reconcile().await;
    let item = h.item().await.unwrap();
    assert_eq!(
        (item.settings.greeting.as_str(), item.version),
        ("Spec 3", 3)
    );
    assert_eq!(
        h.fake.agents()[&agent_id]["conversation_config"]["agent"]["first_message"],
        "Spec 3"
    );
    let status = h.kube.current().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Active));
    assert_eq!(
        status.observed_generation,
        h.kube.current().metadata.generation
    );
}

/// A Lease hand-over where the old leader's cache lags: the new leader has
/// reconciled spec 3; the old leader then reconciles spec 2 (a lower
/// generation), reads the item after the new leader wrote it and so sees
/// its newest version. It touches nothing: no PATCH to ElevenLabs, no
/// store write, no status, no Event; the refusal is retried with backoff
/// like a stale write. The item and the agent keep spec 3.
#[tokio::test]
async fn an_old_leader_with_an_older_spec_changes_nothing_after_the_newer_one_wrote() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    h.edit_spec(|spec| spec.greeting = "Spec 2".into());
    let old_leader = Arc::new(h.kube.current());
    h.edit_spec(|spec| spec.greeting = "Spec 3".into());
    h.reconcile().await;
    let newest = h.kube.current();
    let item = h.item().await.unwrap();
    assert_eq!(
        item.spec_generation,
        Some(SpecGeneration::of(newest.metadata.generation))
    );
    h.journal.take();
    h.fake.take_log();

    let err = reconcile(old_leader.clone(), h.ctx.clone())
        .await
        .unwrap_err();
    assert!(err.is_stale() && !err.is_permanent(), "{err}");
    assert_eq!(err.reason().as_str(), "TenantSpecSuperseded");
    assert!(
        err.to_string()
            .contains("newer spec (generation 3) than this write was planned from (generation 2)"),
        "{err}"
    );
    h.assert_calls(&["store: get {KEY}"]);
    assert!(h.fake.take_log().is_empty(), "ElevenLabs was not called");
    assert_eq!(h.item().await.unwrap(), item);
    assert_eq!(
        h.fake.agents()[&agent_id]["conversation_config"]["agent"]["first_message"],
        "Spec 3"
    );
    assert_eq!(h.kube.current().status, newest.status, "status untouched");
    let first = requeue_secs(&error_policy(old_leader.clone(), &err, h.ctx.clone()));
    assert!(first <= 1.0, "first retry within a second: {first}");
    let later = requeue_secs(&error_policy(old_leader, &err, h.ctx.clone()));
    // Backoff base 1 s: the second wait is 1 to 2 s, never below the first.
    assert!(
        later >= first && later <= 2.0,
        "backs off: {first} then {later}"
    );
}

fn deleting(mut va: VoiceAgent, policy: DeletionPolicy) -> VoiceAgent {
    va.spec.deletion_policy = policy;
    va.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    va
}

#[tokio::test]
async fn delete_with_policy_delete_removes_agent_and_item_then_the_finalizer() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    h.kube
        .set(&deleting(h.kube.current(), DeletionPolicy::Delete));
    let action = h.reconcile().await;
    assert_eq!(action, Action::await_change());
    h.assert_calls(&[
        &format!("elevenlabs: delete agent {agent_id}"),
        "kube: create Event AgentDeleted",
        "store: delete {KEY}",
        "kube: create Event ConfigDeleted",
        "kube: patch finalizers []",
    ]);
    assert!(h.fake.agents().is_empty());
    assert!(h.item().await.is_none());
    assert_eq!(h.kube.current().metadata.finalizers, Some(vec![]));
}

#[tokio::test]
async fn delete_with_policy_retain_keeps_the_agent_even_after_a_restart() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    let va = deleting(h.kube.current(), DeletionPolicy::Retain);
    h.kube.set(&va);
    // A new process: its inventory starts with a listing.
    let restarted = Harness {
        ctx: h.restarted(&va),
        ..h
    };
    restarted.reconcile().await;
    restarted.assert_calls(&[
        "elevenlabs: list agents",
        "kube: create Event AgentRetained",
        "store: delete {KEY}",
        "kube: create Event ConfigDeleted",
        "kube: patch finalizers []",
    ]);
    assert!(restarted.fake.agents().contains_key(&agent_id));
    assert!(restarted.item().await.is_none());
}

#[tokio::test]
async fn the_newer_claimant_of_a_location_goes_to_conflict_and_touches_nothing() {
    let mut older = clinic();
    older.metadata.name = Some("first-claim".into());
    older.metadata.uid = Some("11111111-aaaa-4bbb-8ccc-000000000001".into());
    older.metadata.creation_timestamp = Some(Time(Timestamp::from_second(1_600_000_000).unwrap()));
    let h = Harness::new(&clinic(), &[older]).await;
    let action = h.reconcile().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "kube: create Event Conflict",
        "kube: patch status",
    ]);
    assert!(h.fake.take_log().is_empty());
    assert!(h.item().await.is_none());
    let status = h.kube.current().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Conflict));
    assert!(
        status.conditions[0].message.contains("tenants/first-claim"),
        "{:?}",
        status.conditions
    );

    // Still in conflict: nothing is written again.
    h.reconcile().await;
    assert!(h.journal.take().is_empty());
}

#[tokio::test]
async fn an_agent_made_before_a_crash_is_adopted_not_created_again() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let tags = json!([
        "voice-operator",
        format!("uid:{UID}"),
        "tenant:B0100001:L0100001"
    ]);
    fake.insert(
        "agent_b",
        json!({"name": "Agent Clinica Dentara XYZ", "tags": tags}),
    );
    fake.insert(
        "agent_a",
        json!({"name": "Agent Clinica Dentara XYZ", "tags": tags}),
    );
    fake.insert("agent_other", json!({"name": "Agent Clinica Dentara XYZ", "tags": ["voice-operator", "uid:someone-else"]}));
    let mut va = clinic();
    va.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let h = Harness::with_fake(&va, &[], fake).await;
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        "kube: patch status",
        "elevenlabs: list agents",
        "elevenlabs: update agent agent_a",
        "kube: create Event Adopted",
        "elevenlabs: delete agent agent_b",
        "kube: create Event DuplicateDeleted",
        "elevenlabs: get agent agent_a",
        "store: put {KEY}",
        "kube: create Event ConfigSynced",
        "kube: patch status",
    ]);
    let agents = h.fake.agents();
    assert_eq!(
        agents.keys().collect::<Vec<_>>(),
        ["agent_a", "agent_other"]
    );
    assert_eq!(
        h.kube.current().status.unwrap().agent_id.as_deref(),
        Some("agent_a")
    );
    assert_eq!(h.fake.counts().0, 0, "nothing created");
}

#[tokio::test]
async fn a_rejected_spec_sets_phase_error_with_the_provider_message_and_requeues_slowly() {
    let mut va = clinic();
    va.spec.voice_id = "nope".into();
    let h = Harness::new(&va, &[]).await;
    let action = h.reconcile().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "store: get {KEY}",
        // Reconciling True before the first call to ElevenLabs.
        "kube: patch status",
        "elevenlabs: list agents",
        "elevenlabs: create agent",
        "kube: create Event ElevenLabsRejected",
        "kube: patch status",
    ]);
    let status = h.kube.current().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Error));
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "False")
    );
    assert!(
        ready.message.contains("Voice 'nope' does not exist"),
        "{}",
        ready.message
    );
    let events = h.kube.events.lock().unwrap();
    assert_eq!(events[0]["type"], "Warning");
    assert!(
        events[0]["note"]
            .as_str()
            .unwrap()
            .contains("Voice 'nope' does not exist")
    );
}

#[tokio::test]
async fn an_english_agent_keeps_flash_v2_and_privacy_follows_the_spec() {
    let mut va = clinic();
    va.spec.language = "en".into();
    va.spec.greeting = "Hello, how can I help?".into();
    let h = Harness::new(&va, &[]).await;
    let agent_id = created(&h).await;
    let agent = &h.fake.agents()[&agent_id];
    assert_eq!(
        agent["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2"
    );
    assert_eq!(h.kube.current().status.unwrap().phase, Some(Phase::Active));

    h.edit_spec(|spec| {
        spec.conversation.record_calls = false;
        spec.conversation.retention_days = 0;
        spec.conversation.zero_retention = true;
    });
    h.reconcile().await;
    assert_eq!(
        h.fake.take_log(),
        [
            format!("PATCH /v1/convai/agents/{agent_id}"),
            format!("GET /v1/convai/agents/{agent_id}")
        ]
    );
    assert_eq!(
        h.fake.agents()[&agent_id]["platform_settings"]["privacy"],
        json!({"record_voice": false, "retention_days": 0, "zero_retention_mode": true})
    );
    assert!(!h.item().await.unwrap().settings.conversation.record_calls);
}

#[tokio::test]
async fn a_voice_model_the_language_cannot_use_never_leaves_the_controller() {
    let mut va = clinic();
    va.spec.voice = Some(VoiceSpec {
        model: Some(VoiceModel::ElevenFlashV2),
        ..VoiceSpec::default()
    });
    let h = Harness::new(&va, &[]).await;
    let action = h.reconcile().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "kube: create Event InvalidSpec",
        "kube: patch status",
    ]);
    assert!(h.fake.take_log().is_empty(), "no ElevenLabs call");
    let status = h.kube.current().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Error));
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready
            .message
            .contains("spec.voice.model: eleven_flash_v2 cannot speak language ro")
            && ready.message.contains("use eleven_flash_v2_5"),
        "{}",
        ready.message
    );
}

#[tokio::test]
async fn a_hand_edit_in_the_dashboard_is_set_back_on_resync() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    h.fake.edit(&agent_id, |a| {
        a["conversation_config"]["tts"]["voice_id"] = json!("someone-elses-voice")
    });
    let mut va = h.kube.current();
    va.status.as_mut().unwrap().last_synced_at = Some("2020-01-01T00:00:00Z".into());
    h.kube.set(&va);
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        &format!("elevenlabs: get agent {agent_id}"),
        &format!("elevenlabs: update agent {agent_id}"),
        "kube: create Event DriftCorrected",
        &format!("elevenlabs: get agent {agent_id}"),
        "kube: patch status",
    ]);
    assert_eq!(
        h.fake.agents()[&agent_id]["conversation_config"]["tts"]["voice_id"],
        "21m00Tcm4TlvDq8ikWAM"
    );
    let note = h.kube.events.lock().unwrap().last().unwrap()["note"].clone();
    assert!(
        note.as_str()
            .unwrap()
            .contains("conversation_config.tts.voice_id"),
        "{note}"
    );
}

#[tokio::test]
async fn an_agent_deleted_by_hand_is_made_again() {
    let h = Harness::new(&clinic(), &[]).await;
    let agent_id = created(&h).await;
    h.fake.remove(&agent_id);
    h.edit_spec(|spec| spec.greeting = "Alo!".into());
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        &format!("elevenlabs: update agent {agent_id}"),
        "kube: create Event AgentMissing",
        "elevenlabs: create agent",
        "kube: repeat Event Created",
        "elevenlabs: get agent agent_000002",
        "store: put {KEY}",
        "kube: repeat Event ConfigSynced",
        "kube: patch status",
    ]);
    let agents = h.fake.agents();
    assert_eq!(agents.len(), 1);
    let new_id = agents.keys().next().unwrap();
    assert_ne!(*new_id, agent_id);
    assert_eq!(
        h.kube.current().status.unwrap().agent_id.as_ref(),
        Some(new_id)
    );
    assert_eq!(h.item().await.unwrap().settings.agent_id.as_str(), new_id);
}

/// Makes the next reconcile a resync: the last sync was long ago.
fn resync_due(h: &Harness) {
    let mut va = h.kube.current();
    va.status.as_mut().unwrap().last_synced_at = Some("2020-01-01T00:00:00Z".into());
    h.kube.set(&va);
}

#[tokio::test]
async fn a_field_the_api_does_not_keep_is_named_in_agent_synced_and_not_patched_again() {
    let dropped = "platform_settings.privacy.retention_days";
    let fake = FakeElevenLabs::start(Faults {
        drop_fields: vec![dropped.into()],
        ..Faults::default()
    })
    .await;
    let h = Harness::with_fake(&clinic(), &[], fake).await;
    h.reconcile().await;
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "store: get {KEY}",
        // Reconciling True before the first call to ElevenLabs.
        "kube: patch status",
        "elevenlabs: list agents",
        "elevenlabs: create agent",
        "kube: create Event Created",
        "elevenlabs: get agent agent_000001",
        "kube: create Event FieldsNotKept",
        "store: put {KEY}",
        "kube: create Event ConfigSynced",
        "kube: patch status",
    ]);
    let status = h.kube.current().status.unwrap();
    // The agent answers calls, only not as specified.
    assert_eq!(status.phase, Some(Phase::Active));
    let conditions: Vec<(&str, &str, &str)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Ready", "True", "Active"),
            ("Reconciling", "False", "Reconciled"),
            ("Stalled", "False", "Reconciled"),
            ("AgentSynced", "False", "FieldsNotKept"),
            ("ConfigSynced", "True", "Synced")
        ]
    );
    assert!(
        status.conditions[3].message.ends_with(dropped),
        "{}",
        status.conditions[3].message
    );
    let event = h.kube.events.lock().unwrap()[1].clone();
    assert_eq!(event["type"], "Warning");
    assert!(event["note"].as_str().unwrap().contains(dropped), "{event}");

    // The resync reads the agent, finds the same field missing and writes
    // nothing: no PATCH, no Event, the same status.
    h.fake.take_log();
    resync_due(&h);
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        "elevenlabs: get agent agent_000001",
        "kube: patch status",
    ]);
    assert_eq!(h.fake.take_log(), ["GET /v1/convai/agents/agent_000001"]);
    let again = h.kube.current().status.unwrap();
    assert_eq!(again.conditions, status.conditions);

    // A spec change is written, read back and named again.
    h.edit_spec(|spec| spec.greeting = "Bună seara!".into());
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        "elevenlabs: update agent agent_000001",
        "kube: create Event Updated",
        "elevenlabs: get agent agent_000001",
        "kube: repeat Event FieldsNotKept",
        "store: put {KEY}",
        "kube: repeat Event ConfigSynced",
        "kube: patch status",
    ]);
}

/// The requeue delay of an [`Action`], read from its Debug form (kube
/// offers no getter).
fn requeue_secs(action: &Action) -> f64 {
    let text = format!("{action:?}");
    let inner = text
        .split("Some(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no requeue in {text}"));
    let (number, unit) =
        inner.split_at(inner.find(|c: char| c.is_alphabetic() || c == 'µ').unwrap());
    let n: f64 = number.parse().unwrap();
    match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" => n / 1e6,
        "ns" => n / 1e9,
        other => panic!("unit {other} in {text}"),
    }
}

async fn failing(kinds: FaultKinds) -> Harness {
    let fake = FakeElevenLabs::start(Faults {
        fail_ratio: 1.0,
        kinds,
        ..Faults::default()
    })
    .await;
    Harness::with_fake(&clinic(), &[], fake).await
}

#[tokio::test]
async fn rate_limits_wait_at_least_retry_after_and_leave_the_phase_pending() {
    let h = failing(FaultKinds::Only429).await;
    let va = Arc::new(h.kube.current());
    let err = reconcile(va.clone(), h.ctx.clone()).await.unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    for n in 0..5 {
        let wait = requeue_secs(&error_policy(va.clone(), &err, h.ctx.clone()));
        // Never before Retry-After; the backoff grows past it.
        let full = f64::from(1u32 << n).max(1.0);
        assert!(
            wait >= 1.0 && wait <= full + 0.25,
            "attempt {}: {wait}",
            n + 1
        );
    }
    let status = h.kube.current().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(
        (
            status.conditions[0].status.as_str(),
            status.conditions[0].reason.as_str()
        ),
        ("False", "ElevenLabsRateLimited")
    );
    assert!(
        h.kube
            .event_reasons()
            .contains(&"ElevenLabsRateLimited".to_owned())
    );
}

#[tokio::test]
async fn server_errors_back_off_exponentially_with_jitter() {
    let h = failing(FaultKinds::Only500).await;
    let va = Arc::new(h.kube.current());
    let err = reconcile(va.clone(), h.ctx.clone()).await.unwrap_err();
    assert_eq!(err.reason().as_str(), "ElevenLabsServerError");
    let waits: Vec<f64> = (0..6)
        .map(|_| requeue_secs(&error_policy(va.clone(), &err, h.ctx.clone())))
        .collect();
    // Base 1 s, doubling: attempt n waits between 2^(n-1)/2 and 2^(n-1) s.
    for (n, wait) in waits.iter().enumerate() {
        let full = f64::from(1u32 << n);
        assert!(
            *wait >= full / 2.0 && *wait <= full,
            "attempt {}: {wait} of {full}",
            n + 1
        );
    }
    // A success resets the count.
    h.fake.heal();
    reconcile(Arc::new(h.kube.current()), h.ctx.clone())
        .await
        .unwrap();
    let after = requeue_secs(&error_policy(va.clone(), &err, h.ctx.clone()));
    assert!(after <= 1.0, "{after}");
}

// Phone numbers: the clinic's own number, +40312345678.

const NUMBER: &str = "+40312345678";

/// The clinic with its phone number, importable through Twilio when
/// `twilio_secret` names a Secret.
fn clinic_with_phone(twilio_secret: Option<&str>) -> VoiceAgent {
    let mut va = fixtures::clinic();
    assert_eq!(va.spec.phone_number.as_deref(), Some(NUMBER));
    va.spec.telephony = twilio_secret.map(|name| TelephonySpec {
        twilio_secret_ref: Some(SecretRef { name: name.into() }),
        sip_trunk: None,
    });
    va
}

/// The status' phone fields and the PhoneNumber condition's status,
/// reason and message.
fn phone_status(
    h: &Harness,
) -> (
    Option<String>,
    Option<bool>,
    Option<bool>,
    String,
    String,
    String,
) {
    let status = h.kube.current().status.unwrap();
    let cond = status
        .conditions
        .iter()
        .find(|c| c.type_ == "PhoneNumber")
        .expect("a PhoneNumber condition");
    (
        status.phone_number_id,
        status.phone_number_assigned,
        status.phone_number_imported,
        cond.status.clone(),
        cond.reason.clone(),
        cond.message.clone(),
    )
}

/// The agent the fake's number `id` points at.
fn assigned(h: &Harness, id: &str) -> Value {
    h.fake.phone_numbers()[id]["assigned_agent"]["agent_id"].clone()
}

#[tokio::test]
async fn a_number_found_in_the_workspace_is_assigned_then_unassigned_on_disable_and_delete_but_never_deleted()
 {
    let h = Harness::new(&clinic_with_phone(None), &[]).await;
    let number = h.fake.insert_phone_number(NUMBER, None);
    h.reconcile().await;
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "store: get {KEY}",
        // Reconciling True before the first call to ElevenLabs.
        "kube: patch status",
        "elevenlabs: list agents",
        "elevenlabs: create agent",
        "kube: create Event Created",
        "elevenlabs: get agent agent_000001",
        "elevenlabs: list phone numbers",
        &format!("elevenlabs: assign phone number {number} to agent_000001"),
        "kube: create Event PhoneNumberAssigned",
        "store: put {KEY}",
        "kube: create Event ConfigSynced",
        "kube: patch status",
    ]);
    assert_eq!(assigned(&h, &number), "agent_000001");
    let (id, on, imported, cond, reason, _) = phone_status(&h);
    assert_eq!(
        (id.as_deref(), on, imported),
        (Some(number.as_str()), Some(true), Some(false))
    );
    assert_eq!(
        (cond.as_str(), reason.as_str()),
        ("True", "PhoneNumberAssigned")
    );
    assert_eq!(h.kube.current().status.unwrap().phase, Some(Phase::Active));

    // Settled: no phone call at all.
    h.reconcile().await;
    h.assert_calls(&["store: get {KEY}"]);

    h.edit_spec(|spec| spec.enabled = false);
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        "elevenlabs: update agent agent_000001",
        "kube: create Event Updated",
        "elevenlabs: get agent agent_000001",
        "elevenlabs: list phone numbers",
        &format!("elevenlabs: unassign phone number {number}"),
        "kube: create Event PhoneNumberUnassigned",
        "store: set {KEY} enabled=false",
        "kube: create Event Disabled",
        "kube: patch status",
    ]);
    assert_eq!(assigned(&h, &number), Value::Null);
    assert_eq!(phone_status(&h).1, Some(false));

    h.edit_spec(|spec| spec.enabled = true);
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        "elevenlabs: update agent agent_000001",
        "kube: repeat Event Updated",
        "elevenlabs: get agent agent_000001",
        "elevenlabs: list phone numbers",
        &format!("elevenlabs: assign phone number {number} to agent_000001"),
        "kube: repeat Event PhoneNumberAssigned",
        "store: set {KEY} enabled=true",
        "kube: create Event Enabled",
        "kube: patch status",
    ]);
    assert_eq!(assigned(&h, &number), "agent_000001");

    // Deleted with policy Delete: the number is unassigned before the
    // agent goes, and stays in the workspace (the operator found it).
    h.kube
        .set(&deleting(h.kube.current(), DeletionPolicy::Delete));
    h.reconcile().await;
    h.assert_calls(&[
        "elevenlabs: list phone numbers",
        &format!("elevenlabs: unassign phone number {number}"),
        "kube: repeat Event PhoneNumberUnassigned",
        "elevenlabs: delete agent agent_000001",
        "kube: create Event AgentDeleted",
        "store: delete {KEY}",
        "kube: create Event ConfigDeleted",
        "kube: patch finalizers []",
    ]);
    assert!(h.fake.phone_numbers().contains_key(&number));
    assert_eq!(assigned(&h, &number), Value::Null);
}

#[tokio::test]
async fn a_number_imported_from_the_twilio_secret_is_assigned_and_removed_on_delete() {
    let h = Harness::new(&clinic_with_phone(Some("clinic-twilio")), &[]).await;
    h.kube.put_secret(
        "clinic-twilio",
        &[("accountSid", "AC0123"), ("authToken", "tok")],
    );
    h.reconcile().await;
    h.assert_calls(&[
        r#"kube: patch finalizers ["voiceagents.io/cleanup"]"#,
        "store: get {KEY}",
        // Reconciling True before the first call to ElevenLabs.
        "kube: patch status",
        "elevenlabs: list agents",
        "elevenlabs: create agent",
        "kube: create Event Created",
        "elevenlabs: get agent agent_000001",
        "elevenlabs: list phone numbers",
        "kube: get secret clinic-twilio",
        &format!("elevenlabs: import phone number {NUMBER} for agent_000001"),
        "kube: create Event PhoneNumberImported",
        "store: put {KEY}",
        "kube: create Event ConfigSynced",
        "kube: patch status",
    ]);
    let numbers = h.fake.phone_numbers();
    assert_eq!(numbers["phnum_000001"]["provider"], "twilio");
    assert_eq!(numbers["phnum_000001"]["phone_number"], NUMBER);
    assert_eq!(assigned(&h, "phnum_000001"), "agent_000001");
    let (id, on, imported, cond, _, _) = phone_status(&h);
    assert_eq!(
        (id.as_deref(), on, imported),
        (Some("phnum_000001"), Some(true), Some(true))
    );
    assert_eq!(cond, "True");

    h.kube
        .set(&deleting(h.kube.current(), DeletionPolicy::Delete));
    h.reconcile().await;
    h.assert_calls(&[
        "elevenlabs: list phone numbers",
        "elevenlabs: unassign phone number phnum_000001",
        "kube: create Event PhoneNumberUnassigned",
        "elevenlabs: delete phone number phnum_000001",
        "kube: create Event PhoneNumberDeleted",
        "elevenlabs: delete agent agent_000001",
        "kube: create Event AgentDeleted",
        "store: delete {KEY}",
        "kube: create Event ConfigDeleted",
        "kube: patch finalizers []",
    ]);
    assert!(h.fake.phone_numbers().is_empty());
}

#[tokio::test]
async fn changing_the_number_moves_the_assignment() {
    let h = Harness::new(&clinic_with_phone(None), &[]).await;
    let first = h.fake.insert_phone_number(NUMBER, None);
    let second = h.fake.insert_phone_number("+40312345679", None);
    created(&h).await;
    assert_eq!(assigned(&h, &first), "agent_000001");

    h.edit_spec(|spec| spec.phone_number = Some("+40312345679".into()));
    h.reconcile().await;
    h.assert_calls(&[
        "store: get {KEY}",
        "elevenlabs: list phone numbers",
        &format!("elevenlabs: assign phone number {second} to agent_000001"),
        "kube: repeat Event PhoneNumberAssigned",
        &format!("elevenlabs: unassign phone number {first}"),
        "kube: create Event PhoneNumberUnassigned",
        "store: put {KEY}",
        "kube: repeat Event ConfigSynced",
        "kube: patch status",
    ]);
    assert_eq!(assigned(&h, &first), Value::Null);
    assert_eq!(assigned(&h, &second), "agent_000001");
    assert_eq!(phone_status(&h).0.as_deref(), Some(second.as_str()));
}

#[tokio::test]
async fn the_newer_claimant_of_a_number_gets_a_condition_naming_the_holder_and_touches_nothing() {
    let mut older = clinic_with_phone(None);
    older.metadata.name = Some("front-desk".into());
    older.metadata.uid = Some("11111111-aaaa-4bbb-8ccc-000000000002".into());
    older.spec.location_id = "L0100002".into();
    older.metadata.creation_timestamp = Some(Time(Timestamp::from_second(1_600_000_000).unwrap()));
    let h = Harness::new(&clinic_with_phone(None), &[older]).await;
    let number = h.fake.insert_phone_number(NUMBER, None);
    let action = h.reconcile().await;
    let calls = h.journal.take();
    assert!(
        !calls.iter().any(|c| c.contains("phone number")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"kube: create Event PhoneNumberHeld".to_owned()),
        "{calls:?}"
    );
    assert_eq!(assigned(&h, &number), Value::Null);
    let (id, on, _, cond, reason, message) = phone_status(&h);
    assert_eq!((id, on), (None, Some(false)));
    assert_eq!(
        (cond.as_str(), reason.as_str()),
        ("False", "PhoneNumberHeld")
    );
    assert!(
        message.contains("VoiceAgent tenants/front-desk"),
        "{message}"
    );
    // The agent itself is fine; the number is looked at again later.
    assert_eq!(h.kube.current().status.unwrap().phase, Some(Phase::Active));
    assert!(requeue_secs(&action) < 600.0, "{action:?}");
}

#[tokio::test]
async fn a_number_another_agent_answers_is_left_alone_with_a_condition_naming_it() {
    let h = Harness::new(&clinic_with_phone(None), &[]).await;
    let fake_agent = "agent_someone_else";
    h.fake
        .insert(fake_agent, json!({"name": "Another team's agent"}));
    let number = h.fake.insert_phone_number(NUMBER, Some(fake_agent));
    h.reconcile().await;
    let calls = h.journal.take();
    assert!(calls.contains(&"elevenlabs: list phone numbers".to_owned()));
    assert!(!calls.iter().any(|c| c.contains("assign")), "{calls:?}");
    assert_eq!(assigned(&h, &number), fake_agent);
    let (_, _, _, cond, reason, message) = phone_status(&h);
    assert_eq!(
        (cond.as_str(), reason.as_str()),
        ("False", "PhoneNumberHeld")
    );
    assert!(message.contains(fake_agent), "{message}");
}

#[tokio::test]
async fn a_missing_secret_or_key_is_named_in_the_condition_and_waited_out_not_hot_looped() {
    let h = Harness::new(&clinic_with_phone(Some("clinic-twilio")), &[]).await;
    let first = h.reconcile().await;
    let (_, _, _, cond, reason, message) = phone_status(&h);
    assert_eq!(
        (cond.as_str(), reason.as_str()),
        ("False", "TelephonySecretMissing")
    );
    assert!(
        message.contains(
            "Secret tenants/clinic-twilio (spec.telephony.twilioSecretRef) does not exist"
        ),
        "{message}"
    );
    assert!(h.fake.phone_numbers().is_empty());
    assert!(
        h.kube
            .event_reasons()
            .contains(&"TelephonySecretMissing".to_owned())
    );
    let wait = requeue_secs(&first);
    assert!((5.0..600.0).contains(&wait), "{first:?}");

    // Again with the same cause: no second Event, a wait again.
    h.journal.take();
    let again = h.reconcile().await;
    let calls = h.journal.take();
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("Event TelephonySecretMissing")),
        "{calls:?}"
    );
    assert!(requeue_secs(&again) >= 5.0, "{again:?}");

    // A Secret without the token: the key is named.
    h.kube
        .put_secret("clinic-twilio", &[("accountSid", "AC0123")]);
    h.reconcile().await;
    let (_, _, _, _, _, message) = phone_status(&h);
    assert!(message.contains("lacks key authToken"), "{message}");
    assert!(h.fake.phone_numbers().is_empty());

    // With both keys the number is imported and assigned.
    h.kube.put_secret(
        "clinic-twilio",
        &[("accountSid", "AC0123"), ("authToken", "tok")],
    );
    h.reconcile().await;
    let (id, on, imported, cond, _, _) = phone_status(&h);
    assert_eq!(
        (id.as_deref(), on, imported, cond.as_str()),
        (Some("phnum_000001"), Some(true), Some(true), "True")
    );
}

#[tokio::test]
async fn a_number_neither_in_the_workspace_nor_importable_names_the_fix() {
    let h = Harness::new(&clinic_with_phone(None), &[]).await;
    h.reconcile().await;
    let (_, _, _, cond, reason, message) = phone_status(&h);
    assert_eq!(
        (cond.as_str(), reason.as_str()),
        ("False", "PhoneNumberMissing")
    );
    assert!(
        message.contains("spec.telephony.twilioSecretRef"),
        "{message}"
    );
}

#[tokio::test]
async fn a_sip_trunk_number_is_imported_without_any_secret() {
    let mut va = clinic_with_phone(None);
    va.spec.telephony = Some(TelephonySpec {
        twilio_secret_ref: None,
        sip_trunk: Some(SipTrunkSpec {
            address: "sip.clinic.example.ro".into(),
            transport: Some(SipTransport::Tls),
            media_encryption: None,
        }),
    });
    let h = Harness::new(&va, &[]).await;
    h.reconcile().await;
    let calls = h.journal.take();
    assert!(!calls.iter().any(|c| c.contains("secret")), "{calls:?}");
    assert!(
        calls.contains(&format!(
            "elevenlabs: import phone number {NUMBER} for agent_000001"
        )),
        "{calls:?}"
    );
    let number = &h.fake.phone_numbers()["phnum_000001"];
    assert_eq!(number["provider"], "sip_trunk");
    assert_eq!(
        (
            &number["outbound_trunk"]["address"],
            &number["outbound_trunk"]["transport"]
        ),
        (&json!("sip.clinic.example.ro"), &json!("tls"))
    );
    assert_eq!(number["assigned_agent"]["agent_id"], "agent_000001");
    assert_eq!(phone_status(&h).2, Some(true));
}
