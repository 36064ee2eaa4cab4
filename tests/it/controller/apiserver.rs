//! The controller against a real kube-apiserver and etcd on loopback
//! (started by scripts/test.sh), with ElevenLabs on the wiremock fake and
//! the tenant table in DynamoDB on the local AWS emulator.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::cluster::{self, until};
use crate::support::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use prometheus_client::registry::Registry;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use voice_operator::controller::desired::OperatorSettings;
use voice_operator::controller::runner::{self, Backends, RunConfig, RunError};
use voice_operator::controller::{Metrics, Timing};
use voice_operator::crd::{Phase, SecretRef, TelephonySpec, VoiceAgent};
use voice_operator::elevenlabs::{ClientConfig, ElevenLabsClient};
use voice_operator::tenant::dynamodb::{DynamoStore, create_table};
use voice_operator::tenant::{Read, TenantConfig, TenantKey, TenantStore};

pub(super) const LONG: Duration = Duration::from_secs(60);

pub(super) struct Operator {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), RunError>>,
}

impl Operator {
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the controller stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

pub(super) async fn dynamo_store() -> Arc<DynamoStore> {
    let client = crate::support::dynamodb_client(&crate::support::emulator_endpoint());
    let table = crate::support::unique_name("agents");
    create_table(&client, &table, Duration::from_secs(30))
        .await
        .unwrap();
    Arc::new(DynamoStore::new(client, table))
}

pub(super) fn start(
    client: &Client,
    ns: &str,
    fake: &FakeElevenLabs,
    store: Arc<dyn TenantStore>,
) -> Operator {
    let platform =
        ElevenLabsClient::new(ClientConfig::new(fake.uri(), SecretString::from(API_KEY))).unwrap();
    let backends = Backends {
        client: client.clone(),
        platform: Arc::new(platform),
        store,
        metrics: Arc::new(Metrics::register(&mut Registry::default())),
    };
    let config = RunConfig {
        namespace: Some(ns.to_owned()),
        concurrency: 8,
        settings: OperatorSettings {
            public_url: "https://voice.example.com".into(),
            llm_secret_id: None,
            default_prompt: "You are a helpful assistant.".into(),
            post_call_webhook_id: None,
            cascade_timeout_secs: voice_operator::elevenlabs::model::DEFAULT_CASCADE_TIMEOUT_SECS,
        },
        timing: Timing {
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            ..Timing::default()
        },
        identity: format!("test-{ns}"),
        leader: None,
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(runner::run(backends, config, rx));
    Operator { stop, task }
}

/// A test's own namespace (named from `prefix`) with the operator running
/// in it against a fresh ElevenLabs stand-in and a DynamoDB table of its
/// own: (client, namespace, stand-in, store, operator, the namespace's
/// VoiceAgents).
pub(super) async fn running(
    prefix: &str,
) -> (
    Client,
    String,
    FakeElevenLabs,
    Arc<DynamoStore>,
    Operator,
    Api<VoiceAgent>,
) {
    let (client, ns) = cluster::with_namespace(prefix).await;
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let store = dynamo_store().await;
    let op = start(&client, &ns, &fake, store.clone());
    let api = Api::namespaced(client.clone(), &ns);
    (client, ns, fake, store, op, api)
}

async fn item(store: &dyn TenantStore, va: &VoiceAgent) -> Option<TenantConfig> {
    let key = TenantKey::parse(&va.spec.business_id, &va.spec.location_id).unwrap();
    store.get(&key, Read::Strong).await.unwrap()
}

fn phase(va: &VoiceAgent) -> Option<Phase> {
    va.status.as_ref().and_then(|s| s.phase)
}

/// Waits until the VoiceAgent's status describes its current generation
/// and shows `want`.
pub(super) async fn settled(api: &Api<VoiceAgent>, name: &str, want: Phase) -> VoiceAgent {
    until(
        LONG,
        &format!("{name} in phase {want:?}"),
        || api.get(name),
        |r| {
            r.as_ref().is_ok_and(|va| {
                phase(va) == Some(want)
                    && va.status.as_ref().and_then(|s| s.observed_generation)
                        == va.metadata.generation
            })
        },
    )
    .await
    .unwrap()
}

async fn gone(api: &Api<VoiceAgent>, name: &str) {
    until(
        LONG,
        &format!("{name} to be deleted"),
        || api.get_opt(name),
        |r| matches!(r, Ok(None)),
    )
    .await
    .unwrap();
}

async fn event_reasons(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut list: Vec<Event> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    list.into_iter().filter_map(|e| e.reason).collect()
}

#[tokio::test]
async fn apply_edit_disable_and_delete_a_voiceagent() {
    let (client, ns, fake, store, op, api) = running("lifecycle").await;
    // The clinic's number is already in the workspace.
    let number = fake.insert_phone_number("+40312345678", None);

    // apply -> one agent, the item, status Ready
    let va = cluster::example("voiceagent-clinic.yaml", &ns);
    let name = va.name_any();
    api.create(&PostParams::default(), &va).await.unwrap();
    let active = settled(&api, &name, Phase::Active).await;
    let status = active.status.clone().unwrap();
    let agent_id = status.agent_id.clone().unwrap();
    assert_eq!(fake.agents().keys().collect::<Vec<_>>(), [&agent_id]);
    assert_eq!(fake.counts().0, 1, "created once");
    // The Romanian example passed the contract-enforcing stand-in with a
    // multilingual model.
    assert_eq!(
        fake.agents()[&agent_id]["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2_5"
    );
    // Its call limits and post-call analysis, as the example declares them.
    let settings = &fake.agents()[&agent_id]["platform_settings"];
    assert_eq!(
        settings["call_limits"],
        json!({"agent_concurrency_limit": 4, "daily_limit": 500})
    );
    assert_eq!(
        settings["data_collection"]["new_patient"]["type"],
        "boolean"
    );
    assert_eq!(
        settings["evaluation"]["criteria"][0]["id"],
        "appointment_handled"
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Active")
    );
    assert_eq!(active.finalizers(), ["voiceagents.io/cleanup"]);
    let stored = item(store.as_ref(), &va).await.expect("item written");
    assert_eq!(stored.settings.agent_id.as_str(), agent_id);
    assert_eq!(
        stored.owner.as_ref().map(|o| o.as_str()),
        active.uid().as_deref()
    );
    assert_eq!(
        stored.settings.bedrock.as_ref().unwrap().agent_id,
        "ABCDEFGHIJ"
    );
    fake.take_log();

    // edit spec -> exactly one PATCH, read back
    let edit = json!({"spec": {"greeting": "Bună seara! Cu ce vă ajut?"}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let edited = settled(&api, &name, Phase::Active).await;
    assert_eq!(edited.status.as_ref().unwrap().observed_generation, Some(2));
    let calls = fake.take_log();
    assert_eq!(
        calls,
        [
            format!("PATCH /v1/convai/agents/{agent_id}"),
            format!("GET /v1/convai/agents/{agent_id}")
        ],
        "{calls:?}"
    );
    assert_eq!(
        fake.agents()[&agent_id]["conversation_config"]["agent"]["first_message"],
        "Bună seara! Cu ce vă ajut?"
    );

    // enabled: false -> item disabled, agent kept
    let disable = json!({"spec": {"enabled": false}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&disable))
        .await
        .unwrap();
    let disabled = settled(&api, &name, Phase::Disabled).await;
    assert_eq!(
        disabled.status.as_ref().unwrap().agent_id.as_deref(),
        Some(agent_id.as_str())
    );
    let stored = item(store.as_ref(), &va).await.unwrap();
    assert!(!stored.settings.enabled);
    assert_eq!(stored.settings.agent_id.as_str(), agent_id);
    assert!(fake.agents().contains_key(&agent_id));
    assert_eq!(
        fake.take_log(),
        [
            format!("PATCH /v1/convai/agents/{agent_id}"),
            format!("GET /v1/convai/agents/{agent_id}"),
            "GET /v1/convai/phone-numbers".to_owned(),
            format!("PATCH /v1/convai/phone-numbers/{number}")
        ],
        "disabling gives the agent its closing sentence and takes the number off it"
    );
    assert_eq!(
        fake.phone_numbers()[&number]["assigned_agent"],
        serde_json::Value::Null
    );

    // delete (policy Delete) -> agent deleted, item gone, object gone
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    gone(&api, &name).await;
    assert!(fake.agents().is_empty());
    assert!(item(store.as_ref(), &va).await.is_none());

    let reasons = event_reasons(&client, &ns, &name).await;
    for reason in [
        "Created",
        "ConfigSynced",
        "Updated",
        "Disabled",
        "AgentDeleted",
        "ConfigDeleted",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }
    op.stop().await;
}

/// Waits until the VoiceAgent's current generation is reconciled into
/// `want` with its phone number assigned as `assigned` says.
async fn phone_settled(
    api: &Api<VoiceAgent>,
    name: &str,
    want: Phase,
    assigned: bool,
) -> VoiceAgent {
    until(
        LONG,
        &format!("{name} in phase {want:?}, number assigned {assigned}"),
        || api.get(name),
        |r| {
            r.as_ref().is_ok_and(|va| {
                let status = va.status.clone().unwrap_or_default();
                phase(va) == Some(want)
                    && status.observed_generation == va.metadata.generation
                    && status.phone_number_assigned == Some(assigned)
            })
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_phone_number_is_imported_assigned_released_moved_and_removed_on_a_real_api_server() {
    let (client, ns, fake, _, op, api) = running("phone").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "clinic-twilio"},
        "stringData": {"accountSid": "AC0123456789", "authToken": "twilio-token"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // create -> imported through Twilio with the Secret, assigned
    let mut va = cluster::example("voiceagent-clinic.yaml", &ns);
    va.spec.telephony = Some(TelephonySpec {
        twilio_secret_ref: Some(SecretRef {
            name: "clinic-twilio".into(),
        }),
        sip_trunk: None,
    });
    let name = va.name_any();
    api.create(&PostParams::default(), &va).await.unwrap();
    let active = phone_settled(&api, &name, Phase::Active, true).await;
    let status = active.status.unwrap();
    let agent_id = status.agent_id.unwrap();
    let first = status.phone_number_id.unwrap();
    assert_eq!(status.phone_number_imported, Some(true));
    let numbers = fake.phone_numbers();
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[&first]["phone_number"], "+40312345678");
    assert_eq!(
        numbers[&first]["assigned_agent"]["agent_id"],
        agent_id.as_str()
    );

    // disable -> the number reaches no agent; enable -> it does again
    let switch = |on: bool| json!({"spec": {"enabled": on}});
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&switch(false)),
    )
    .await
    .unwrap();
    phone_settled(&api, &name, Phase::Disabled, false).await;
    assert_eq!(
        fake.phone_numbers()[&first]["assigned_agent"],
        serde_json::Value::Null
    );
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&switch(true)))
        .await
        .unwrap();
    phone_settled(&api, &name, Phase::Active, true).await;
    assert_eq!(
        fake.phone_numbers()[&first]["assigned_agent"]["agent_id"],
        agent_id.as_str()
    );

    // number change -> the new number is imported and takes the agent
    let change = json!({"spec": {"phoneNumber": "+40312345679"}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    let moved = phone_settled(&api, &name, Phase::Active, true).await;
    let second = moved.status.clone().unwrap().phone_number_id.unwrap();
    assert_ne!(second, first);
    let numbers = fake.phone_numbers();
    assert_eq!(numbers[&second]["phone_number"], "+40312345679");
    assert_eq!(
        numbers[&second]["assigned_agent"]["agent_id"],
        agent_id.as_str()
    );
    // The first number was imported for this VoiceAgent (its label says
    // so) and nobody names it now: with deletionPolicy Delete it goes.
    assert!(!numbers.contains_key(&first), "{numbers:?}");
    let uid = moved.metadata.uid.clone().unwrap();
    assert!(
        numbers[&second]["label"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("[voice-operator {uid}]"))),
        "{numbers:?}"
    );

    // delete (policy Delete) -> the imported number goes, then the agent
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    gone(&api, &name).await;
    assert!(fake.agents().is_empty());
    let left = fake.phone_numbers();
    assert!(!left.contains_key(&second), "{left:?}");
    assert!(
        left.values().all(|n| n["assigned_agent"].is_null()),
        "no number reaches a deleted agent: {left:?}"
    );

    let reasons = event_reasons(&client, &ns, &name).await;
    for reason in [
        "PhoneNumberImported",
        "PhoneNumberAssigned",
        "PhoneNumberUnassigned",
        "PhoneNumberDeleted",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }
    op.stop().await;
}

#[tokio::test]
async fn a_field_elevenlabs_does_not_keep_is_named_in_agent_synced_on_a_real_api_server() {
    let (client, ns) = cluster::with_namespace("readback").await;
    let dropped = "platform_settings.privacy.record_voice";
    let fake = FakeElevenLabs::start(Faults {
        drop_fields: vec![dropped.into()],
        ..Faults::default()
    })
    .await;
    let store = dynamo_store().await;
    let op = start(&client, &ns, &fake, store.clone());
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);

    let mut va = cluster::example("voiceagent-clinic.yaml", &ns);
    // No number: this test is about the agent's fields alone.
    va.spec.phone_number = None;
    let name = va.name_any();
    api.create(&PostParams::default(), &va).await.unwrap();
    // Active and Ready: the agent answers calls, only not as specified.
    let active = settled(&api, &name, Phase::Active).await;
    let status = active.status.unwrap();
    let condition = |kind: &str| {
        let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    };
    assert_eq!(condition("Ready").0, "True");
    let (synced, reason, message) = condition("AgentSynced");
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", "FieldsNotKept")
    );
    assert!(message.ends_with(dropped), "{message}");
    let reasons = event_reasons(&client, &ns, &name).await;
    assert!(
        reasons.iter().any(|r| r == "FieldsNotKept"),
        "no FieldsNotKept event in {reasons:?}"
    );
    assert_eq!(fake.counts().0, 1, "created once");
    op.stop().await;
}

#[tokio::test]
async fn delete_with_retain_keeps_the_agent_and_removes_the_item() {
    let (client, ns, fake, store, op, api) = running("retain").await;

    let va = cluster::example("voiceagent-retain.yaml", &ns);
    let name = va.name_any();
    api.create(&PostParams::default(), &va).await.unwrap();
    let active = settled(&api, &name, Phase::Active).await;
    let agent_id = active.status.unwrap().agent_id.unwrap();
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    gone(&api, &name).await;
    assert!(
        fake.agents().contains_key(&agent_id),
        "Retain keeps the agent"
    );
    assert!(
        item(store.as_ref(), &va).await.is_none(),
        "the item goes either way"
    );
    assert!(
        event_reasons(&client, &ns, &name)
            .await
            .contains(&"AgentRetained".to_owned())
    );

    // The disabled example starts disabled and still gets its agent.
    let disabled = cluster::example("voiceagent-disabled.yaml", &ns);
    api.create(&PostParams::default(), &disabled).await.unwrap();
    let settled_disabled = settled(&api, &disabled.name_any(), Phase::Disabled).await;
    let stored = item(store.as_ref(), &disabled).await.unwrap();
    assert!(!stored.settings.enabled);
    assert_eq!(
        Some(stored.settings.agent_id.to_string()),
        settled_disabled.status.unwrap().agent_id
    );
    op.stop().await;
}

#[tokio::test]
async fn a_second_claim_on_a_location_goes_to_conflict_until_the_first_is_deleted() {
    let (_, ns, fake, store, op, api) = running("conflict").await;

    let first = cluster::example("voiceagent-clinic.yaml", &ns);
    api.create(&PostParams::default(), &first).await.unwrap();
    let held = settled(&api, &first.name_any(), Phase::Active).await;
    // Creation timestamps have second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut second = first.clone();
    second.metadata.name = Some("clinica-xyz-copy".into());
    second.spec.business_name = "Someone Else".into();
    api.create(&PostParams::default(), &second).await.unwrap();
    let conflicted = settled(&api, "clinica-xyz-copy", Phase::Conflict).await;
    let ready = &conflicted.status.as_ref().unwrap().conditions[0];
    assert!(
        ready.message.contains(&first.name_any()),
        "{}",
        ready.message
    );
    assert_eq!(fake.agents().len(), 1, "the newer claim created nothing");
    let stored = item(store.as_ref(), &first).await.unwrap();
    assert_eq!(
        stored.owner.as_ref().map(|o| o.as_str()),
        held.uid().as_deref()
    );
    assert_eq!(
        stored.settings.business_name.as_deref(),
        Some("Clinica Dentara XYZ")
    );

    // Once the holder is gone, the waiting claim takes over at once.
    api.delete(&first.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    gone(&api, &first.name_any()).await;
    let now_active = settled(&api, "clinica-xyz-copy", Phase::Active).await;
    let stored = item(store.as_ref(), &first).await.unwrap();
    assert_eq!(
        stored.owner.as_ref().map(|o| o.as_str()),
        now_active.uid().as_deref()
    );
    assert_eq!(fake.agents().len(), 1);
    op.stop().await;
}

#[tokio::test]
async fn fifty_voiceagents_converge_through_failing_elevenlabs_with_no_duplicates() {
    let (client, ns) = cluster::with_namespace("fifty").await;
    let fake = FakeElevenLabs::start(Faults {
        fail_ratio: 0.3,
        seed: 7,
        ..Faults::default()
    })
    .await;
    let store = dynamo_store().await;
    let op = start(&client, &ns, &fake, store.clone());
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);

    let template = cluster::example("voiceagent-clinic.yaml", &ns);
    for i in 0..50 {
        let mut va = template.clone();
        va.metadata.name = Some(format!("location-{i:02}"));
        va.spec.location_id = format!("L{i:07}");
        api.create(&PostParams::default(), &va).await.unwrap();
    }
    let everything = kube::api::ListParams::default();
    let all = until(
        Duration::from_secs(240),
        "50 VoiceAgents Active",
        || api.list(&everything),
        |list| {
            list.as_ref().is_ok_and(|l| {
                l.items.len() == 50 && l.items.iter().all(|va| phase(va) == Some(Phase::Active))
            })
        },
    )
    .await
    .unwrap();
    let agents = fake.agents();
    let (created, failed, _) = fake.counts();
    assert!(failed >= 10, "the fake failed only {failed} calls");
    assert_eq!(agents.len(), 50, "exactly one agent per VoiceAgent");
    // Not one duplicate was ever made, even where a create failed with
    // 500 after the agent existed: that agent was found and adopted.
    assert_eq!(created, 50, "agents created in total");
    let owners: BTreeSet<String> = agents
        .values()
        .map(|a| {
            a["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|t| t.as_str().unwrap().strip_prefix("uid:").map(str::to_owned))
                .unwrap()
        })
        .collect();
    let uids: BTreeSet<String> = all.items.iter().map(|va| va.uid().unwrap()).collect();
    assert_eq!(owners, uids);
    for va in &all.items {
        let stored = item(store.as_ref(), va).await.unwrap();
        assert_eq!(
            Some(stored.settings.agent_id.to_string()),
            va.status.as_ref().unwrap().agent_id
        );
    }
    eprintln!(
        "50 VoiceAgents converged; the fake failed {failed} calls, {} of them creates that made the agent anyway",
        fake.made_anyway()
    );
    op.stop().await;
}

#[tokio::test]
async fn the_api_server_rejects_the_bad_examples_and_id_changes() {
    let (client, ns) = cluster::with_namespace("invalid").await;
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    let untyped: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &ApiResource::erase::<VoiceAgent>(&()));
    for (file, field) in [
        ("bad/voiceagent-bad-phone.yaml", "spec.phoneNumber"),
        ("bad/voiceagent-missing-business.yaml", "spec.businessId"),
        ("bad/voiceagent-bad-voice-model.yaml", "spec.voice.model"),
        (
            "bad/voiceagent-bad-telephony.yaml",
            "spec.telephony.twilioSecretRef.name",
        ),
        ("bad/voiceagent-bad-notify.yaml", "spec.notify.email"),
    ] {
        let manifest: DynamicObject =
            serde_json::from_value(cluster::example_value(file, &ns)).unwrap();
        match untyped.create(&PostParams::default(), &manifest).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{file}: {status:?}");
                assert!(status.message.contains(field), "{file}: {}", status.message);
            }
            other => panic!("{file} was not rejected: {other:?}"),
        }
    }
    let va = cluster::example("voiceagent-clinic.yaml", &ns);
    api.create(&PostParams::default(), &va).await.unwrap();
    let name = va.name_any();
    for field in ["businessId", "locationId"] {
        let change = json!({"spec": {field: "X999"}});
        refused(&api, &name, &change, &format!("{field} is immutable")).await;
    }
    for telephony in [
        json!({"twilioSecretRef": {"name": "twilio"}, "sipTrunk": {"address": "sip.example.com"}}),
        json!({}),
    ] {
        let change = json!({"spec": {"telephony": telephony}});
        let message = "exactly one of twilioSecretRef and sipTrunk";
        refused(&api, &name, &change, message).await;
    }
    let long_local = format!("{}@clinica.example.ro", "a".repeat(65));
    for (notify, message) in [
        // The example has an email; without it, notify is empty.
        (json!({"email": null}), "spec.notify needs email or sms"),
        (json!({"email": "receptie@clinica"}), "spec.notify.email"),
        (
            json!({"email": "receptie@-clinica.ro"}),
            "spec.notify.email",
        ),
        (
            json!({"email": long_local}),
            "more than 64 characters before the @",
        ),
        (json!({"sms": "0722 000 333"}), "spec.notify.sms"),
    ] {
        refused(&api, &name, &json!({"spec": {"notify": notify}}), message).await;
    }
    let good = json!({"spec": {"notify": {"email": "receptie@clinica.example.ro", "sms": "+40722000333"}}});
    let patched = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&good))
        .await
        .unwrap();
    assert_eq!(
        patched.spec.notify.and_then(|n| n.email).as_deref(),
        Some("receptie@clinica.example.ro")
    );
    let no_number = json!({"spec": {"phoneNumber": null, "telephony": {"sipTrunk": {"address": "sip.example.com"}}}});
    refused(
        &api,
        &name,
        &no_number,
        "spec.telephony needs spec.phoneNumber",
    )
    .await;
}

/// Asserts the API server refuses `change` to VoiceAgent `name` (422)
/// with a message containing `message`.
async fn refused(api: &Api<VoiceAgent>, name: &str, change: &Value, message: &str) {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(change))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{change}: {status:?}");
            assert!(
                status.message.contains(message),
                "{change}: {}",
                status.message
            );
        }
        other => panic!("{change} was not rejected: {other:?}"),
    }
}

/// The API server's refusal of `change` to VoiceAgent `name`: its message.
async fn refusal(api: &Api<VoiceAgent>, name: &str, change: &serde_json::Value) -> String {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(change))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{change}: {status:?}");
            status.message
        }
        other => panic!("{change} was not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn the_api_server_refuses_limits_out_of_range_and_unknown_analysis_items() {
    let (client, ns) = cluster::with_namespace("limits").await;
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    let va = cluster::example("voiceagent-clinic.yaml", &ns);
    api.create(&PostParams::default(), &va).await.unwrap();
    let name = va.name_any();
    let item = |id: &str, kind: &str| json!({"id": id, "type": kind, "description": "d"});
    for (spec, field) in [
        (
            json!({"limits": {"concurrentCalls": 0}}),
            "spec.limits.concurrentCalls",
        ),
        (
            json!({"limits": {"dailyCalls": -5}}),
            "spec.limits.dailyCalls",
        ),
        (
            json!({"analysis": {"dataCollection": [item("visit", "date")]}}),
            "spec.analysis.dataCollection[0].type",
        ),
        (
            json!({"analysis": {"dataCollection": [item("a", "string"), item("a", "boolean")]}}),
            "spec.analysis.dataCollection[1]",
        ),
        (
            json!({"analysis": {"evaluationCriteria": [{"id": "c", "goal": "x".repeat(2001)}]}}),
            "spec.analysis.evaluationCriteria[0].goal",
        ),
    ] {
        let message = refusal(&api, &name, &json!({ "spec": spec })).await;
        assert!(message.contains(field), "{spec}: {message}");
    }
}

/// `voice-operator controller` as a child process.
struct Replica {
    child: Child,
    port: u16,
    identity: String,
}

impl Replica {
    fn start(ns: &str, fake: &FakeElevenLabs, table: &str, identity: &str) -> Replica {
        let port = crate::support::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_voice-operator"))
            .arg("controller")
            .env("KUBECONFIG", cluster::kubeconfig_path())
            .env("ELEVENLABS_API_KEY", API_KEY)
            .env("ELEVENLABS_BASE_URL", fake.uri())
            .env("VOICE_OPERATOR_PUBLIC_URL", "https://voice.example.com")
            .env("VOICE_OPERATOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("VOICE_OPERATOR_WATCH_NAMESPACE", ns)
            .env("VOICE_OPERATOR_LEASE_NAMESPACE", ns)
            .env("VOICE_OPERATOR_LEASE_DURATION_SECS", "6")
            .env("VOICE_OPERATOR_IDENTITY", identity)
            .env("VOICE_OPERATOR_TENANT_STORE", "dynamodb")
            .env("DYNAMODB_ELEVENLABS_AGENTS_TABLE", table)
            .env("AWS_ENDPOINT_URL", crate::support::emulator_endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        Replica {
            child,
            port,
            identity: identity.to_owned(),
        }
    }

    /// The value of `voice_operator_leader`, or None while not serving.
    async fn leader(&self) -> Option<bool> {
        let body = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let line = body
            .lines()
            .find(|l| l.starts_with("voice_operator_leader "))?;
        Some(line.ends_with(" 1"))
    }

    async fn ready(&self) -> bool {
        reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port))
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// SIGTERM, as Kubernetes stops a pod; waits for the exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("{} did not stop within 30 s of SIGTERM", self.identity);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_replicas_elect_exactly_one_leader_and_hand_over_on_shutdown() {
    let (client, ns) = cluster::with_namespace("leader").await;
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let store = dynamo_store().await;
    let table = store_table(&store);
    let mut replicas = [
        Replica::start(&ns, &fake, &table, "replica-a"),
        Replica::start(&ns, &fake, &table, "replica-b"),
    ];
    let leaders = until(
        LONG,
        "one leader among two replicas",
        || async {
            let mut seen = Vec::new();
            for r in &replicas {
                seen.push(r.leader().await);
            }
            seen
        },
        |seen| {
            seen.iter().all(Option::is_some)
                && seen.iter().filter(|l| **l == Some(true)).count() == 1
        },
    )
    .await;
    for r in &replicas {
        assert!(r.ready().await, "{} not ready", r.identity);
    }
    let leader = leaders.iter().position(|l| *l == Some(true)).unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases.get("voice-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(replicas[leader].identity.as_str())
    );
    // Still exactly one after a few renewals.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut count = 0;
    for r in &replicas {
        count += usize::from(r.leader().await == Some(true));
    }
    assert_eq!(count, 1);

    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    let first = cluster::example("voiceagent-clinic.yaml", &ns);
    api.create(&PostParams::default(), &first).await.unwrap();
    settled(&api, &first.name_any(), Phase::Active).await;

    // The leader stops; the other takes over and reconciles.
    let status = replicas[leader].terminate();
    assert!(status.success(), "{status:?}");
    let other = 1 - leader;
    until(
        LONG,
        "the other replica to lead",
        || replicas[other].leader(),
        |l| *l == Some(true),
    )
    .await;
    let second = cluster::example("voiceagent-disabled.yaml", &ns);
    api.create(&PostParams::default(), &second).await.unwrap();
    settled(&api, &second.name_any(), Phase::Disabled).await;
    assert_eq!(fake.agents().len(), 2);
    let lease = leases.get("voice-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(replicas[other].identity.as_str())
    );
    replicas[other].terminate();
}

fn store_table(store: &DynamoStore) -> String {
    store.table().to_owned()
}
