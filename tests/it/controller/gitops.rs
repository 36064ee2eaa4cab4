//! What GitOps tools see of a VoiceAgent, computed by their own code: kstatus
//! (sigs.k8s.io/cli-utils, what Flux and cli-utils' appliers use), `kubectl
//! wait`, and the Argo CD health check the chart ships, run in gopher-lua
//! as Argo CD runs it. Live objects come from the real kube-apiserver with
//! the controller running against the ElevenLabs stand-in; the fixture
//! tests feed both tools every status `controller::status` can write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use voice_operator::controller::Error;
use voice_operator::controller::desired::SpecError;
use voice_operator::controller::reason::Reason;
use voice_operator::controller::status::{self, Cond, PhoneStatus, Synced};
use voice_operator::crd::{Phase, SecretRef, TelephonySpec, VoiceAgent, VoiceAgentStatus};
use voice_operator::elevenlabs::ElevenLabsError;
use voice_operator::ids::Id;
use voice_operator::tenant::TenantKey;

use super::apiserver::{LONG, dynamo_store, running, settled, start};
use crate::support::cluster::{self, until};
use crate::support::fake_elevenlabs::{FakeElevenLabs, Faults};
use crate::support::gitops::{Verdict, argo_health, kstatus, kubectl, try_gitops_status};

fn untyped(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<VoiceAgent>(&()))
}

/// The object as the API server has it now, as JSON.
async fn live(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

fn verdicts(object: &Value) -> (Verdict, Verdict) {
    (kstatus(object), argo_health(object))
}

/// `kubectl wait --for=condition=Ready voiceagent/<name>`, run in a blocking
/// task so it can wait while the test goes on; its exit status and output.
fn wait_ready(ns: &str, name: &str, timeout: &str) -> tokio::task::JoinHandle<(bool, String)> {
    let args: Vec<String> = [
        "wait",
        "--for=condition=Ready",
        &format!("voiceagent/{name}"),
        "-n",
        ns,
        &format!("--timeout={timeout}"),
    ]
    .map(str::to_owned)
    .into();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kubectl(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
}

/// Every version of the VoiceAgents in `api`'s namespace that the API
/// server sends from now on, in order.
struct Versions {
    seen: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Versions {
    async fn watch(api: &Api<DynamicObject>) -> Versions {
        let from = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let stream = api
            .watch(&WatchParams::default(), &from)
            .await
            .unwrap()
            .boxed();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = stream;
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(o) | WatchEvent::Modified(o) = event {
                    into.lock().unwrap().push(serde_json::to_value(o).unwrap());
                }
            }
        });
        Versions { seen, task }
    }

    fn stop(self) -> Vec<Value> {
        self.task.abort();
        self.seen.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn kstatus_kubectl_wait_and_argo_cd_follow_a_voiceagent_through_create_edit_disable_and_conflict()
 {
    let (client, ns) = cluster::with_namespace("gitops").await;
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let store = dynamo_store().await;
    fake.insert_phone_number("+40312345678", None);
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    let raw = untyped(&client, &ns);
    let versions = Versions::watch(&raw).await;
    let op = start(&client, &ns, &fake, store.clone());

    // Create: kubectl wait returns once the agent is Ready.
    let va = cluster::example("voiceagent-clinic.yaml", &ns);
    let name = va.name_any();
    api.create(&PostParams::default(), &va).await.unwrap();
    let waiter = wait_ready(&ns, &name, "90s");
    settled(&api, &name, Phase::Active).await;
    let (ok, out) = waiter.await.unwrap();
    assert!(ok, "kubectl wait: {out}");
    assert!(out.contains("condition met"), "{out}");

    // Every version the API server held on the way, through kstatus: the
    // object as created (no status yet: kstatus cannot tell it apart from
    // a resource without conditions and says Current, which is why the
    // operator writes Reconciling before anything else), then InProgress
    // while the agent is made, then Current.
    let seen = versions.stop();
    let first_status = seen
        .iter()
        .find(|o| o["status"]["conditions"].is_array())
        .expect("the operator wrote a status");
    assert_eq!(
        kstatus(first_status),
        Verdict {
            status: "InProgress".into(),
            message: "creating the ElevenLabs agent".into()
        },
        "the first status the operator writes"
    );
    assert_eq!(argo_health(first_status).status, "Progressing");
    let mut steps: Vec<String> = Vec::new();
    for object in &seen {
        let verdict = kstatus(object);
        if object.get("status").is_none() {
            assert_eq!(argo_health(object).status, "Progressing", "{object:#}");
        }
        if steps.last() != Some(&verdict.status) {
            steps.push(verdict.status);
        }
    }
    assert_eq!(steps, ["Current", "InProgress", "Current"], "{seen:#?}");

    let (k, argo) = verdicts(&live(&raw, &name).await);
    assert_eq!(k.status, "Current", "{k:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    assert!(argo.message.contains("answers calls"), "{argo:?}");

    // A spec edit the operator has not seen yet (it is stopped): kstatus
    // and Argo CD say in progress, and kubectl wait does not take the Ready
    // of the older generation.
    op.stop().await;
    let edit = json!({"spec": {"greeting": "Bună seara! Cu ce vă ajut?"}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let (k, argo) = verdicts(&live(&raw, &name).await);
    assert_eq!(
        k,
        Verdict {
            status: "InProgress".into(),
            message: "VoiceAgent generation is 2, but latest observed generation is 1".into()
        }
    );
    assert_eq!(argo.status, "Progressing", "{argo:?}");
    let (ok, out) = wait_ready(&ns, &name, "2s").await.unwrap();
    assert!(!ok, "kubectl wait took the Ready of generation 1: {out}");
    assert!(out.contains("timed out"), "{out}");
    // Observed once the operator runs again.
    let op = start(&client, &ns, &fake, store.clone());
    let (ok, out) = wait_ready(&ns, &name, "90s").await.unwrap();
    assert!(ok, "kubectl wait: {out}");
    settled(&api, &name, Phase::Active).await;
    let (k, argo) = verdicts(&live(&raw, &name).await);
    assert_eq!(
        (k.status.as_str(), argo.status.as_str()),
        ("Current", "Healthy")
    );

    // Disabled as asked: current, healthy, ready.
    let disable = json!({"spec": {"enabled": false}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&disable))
        .await
        .unwrap();
    settled(&api, &name, Phase::Disabled).await;
    let (k, argo) = verdicts(&live(&raw, &name).await);
    assert_eq!(k.status, "Current", "{k:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    assert!(argo.message.contains("is disabled"), "{argo:?}");
    let (ok, out) = wait_ready(&ns, &name, "30s").await.unwrap();
    assert!(ok, "kubectl wait on a disabled agent: {out}");

    // A second claim on the same location: Failed, Degraded, never Ready.
    tokio::time::sleep(Duration::from_millis(1100)).await; // creation timestamps have second resolution
    let mut second = va.clone();
    second.metadata.name = Some("clinica-xyz-copy".into());
    api.create(&PostParams::default(), &second).await.unwrap();
    settled(&api, "clinica-xyz-copy", Phase::Conflict).await;
    let (k, argo) = verdicts(&live(&raw, "clinica-xyz-copy").await);
    assert_eq!(k.status, "Failed", "{k:?}");
    assert!(k.message.contains(&name), "{k:?}");
    assert_eq!(argo.status, "Degraded", "{argo:?}");
    assert_eq!(argo.message, k.message);
    let (ok, out) = wait_ready(&ns, "clinica-xyz-copy", "2s").await.unwrap();
    assert!(!ok, "kubectl wait on a Conflict: {out}");
    op.stop().await;
}

#[tokio::test]
async fn a_voiceagent_stalled_on_a_missing_secret_is_failed_until_the_secret_exists() {
    let (client, ns, fake, _, op, api) = running("stalled").await;
    let raw = untyped(&client, &ns);

    // The number must be imported through Twilio, with a Secret not there.
    let mut va = cluster::example("voiceagent-clinic.yaml", &ns);
    va.spec.telephony = Some(TelephonySpec {
        twilio_secret_ref: Some(SecretRef {
            name: "clinic-twilio".into(),
        }),
        sip_trunk: None,
    });
    let name = va.name_any();
    api.create(&PostParams::default(), &va).await.unwrap();
    let stalled = until(
        LONG,
        &format!("{name} Stalled"),
        || live(&raw, &name),
        |o| {
            o["status"]["observedGeneration"] == o["metadata"]["generation"]
                && o["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Stalled" && c["status"] == "True")
                })
        },
    )
    .await;
    let (k, argo) = verdicts(&stalled);
    assert_eq!(k.status, "Failed", "{k:?}");
    assert!(k.message.contains("clinic-twilio"), "{k:?}");
    assert_eq!(
        argo,
        Verdict {
            status: "Degraded".into(),
            message: k.message.clone()
        }
    );
    let (ok, out) = wait_ready(&ns, &name, "3s").await.unwrap();
    assert!(!ok, "kubectl wait on a Stalled VoiceAgent: {out}");
    assert!(out.contains("timed out"), "{out}");

    // A person adds the Secret: the next look imports the number, and
    // everything reports ready.
    let waiter = wait_ready(&ns, &name, "120s");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "clinic-twilio"},
        "stringData": {"accountSid": "AC0123456789", "authToken": "twilio-token"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let (ok, out) = waiter.await.unwrap();
    assert!(ok, "kubectl wait after the Secret was created: {out}");
    let (k, argo) = verdicts(&live(&raw, &name).await);
    assert_eq!(k.status, "Current", "{k:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    assert_eq!(fake.phone_numbers().len(), 1, "the number was imported");
    op.stop().await;
}

/// A VoiceAgent at `generation` with `status`, as the API server serves it.
fn fixture(generation: i64, status: Option<VoiceAgentStatus>) -> Value {
    let mut va = cluster::example("voiceagent-clinic.yaml", "tenants");
    va.metadata.generation = Some(generation);
    va.metadata.uid = Some("5b0c1d2e-0000-4000-8000-000000000001".into());
    va.status = status;
    serde_json::to_value(&va).unwrap()
}

/// Every kind of status the controller writes, read by kstatus and by the
/// chart's Argo CD health check.
#[test]
fn kstatus_and_the_argo_cd_health_check_read_every_status_the_controller_writes() {
    let now = Timestamp::now();
    let none = VoiceAgentStatus::default();
    let key = TenantKey::parse("B0100001", "L0100001").unwrap();
    let id = Id::parse("agent_id", "agent_000001").unwrap();
    let synced = |old: &VoiceAgentStatus,
                  enabled: bool,
                  phone: Option<&PhoneStatus>,
                  not_kept: &[String]| {
        status::synced(Synced {
            old,
            generation: Some(2),
            now,
            enabled,
            agent_id: &id,
            config_hash: "h1",
            key: &key,
            item_version: 1,
            synced_now: true,
            not_kept,
            phone,
        })
    };
    let active = synced(&none, true, None, &[]);
    let blocked = PhoneStatus {
        number: Some("+40312345678".into()),
        id: None,
        assigned: false,
        imported: false,
        cond: Cond::not(
            Reason::TelephonySecretMissing,
            "Secret tenants/clinic-twilio does not exist".into(),
        ),
    };
    let rate_limited = Error::ElevenLabs(ElevenLabsError::RateLimited {
        operation: "PATCH /v1/convai/agents/agent_000001".into(),
        retry_after: None,
    });
    let refused = Error::ElevenLabs(ElevenLabsError::Validation {
        operation: "PATCH /v1/convai/agents/agent_000001".into(),
        status: 422,
        message: "voice_id: Voice 'nope' does not exist".into(),
    });
    let not_kept = synced(
        &none,
        true,
        None,
        &["platform_settings.privacy.record_voice".to_owned()],
    );
    let cases = [
        // (what, object, kstatus, Argo CD)
        (
            "created, no status yet",
            fixture(1, None),
            "Current",
            "Progressing",
        ),
        (
            "creating",
            fixture(2, Some(status::creating(&none, Some(2), now))),
            "InProgress",
            "Progressing",
        ),
        (
            "active",
            fixture(2, Some(active.clone())),
            "Current",
            "Healthy",
        ),
        (
            "active, a field not kept",
            fixture(2, Some(not_kept)),
            "Current",
            "Healthy",
        ),
        (
            "disabled",
            fixture(2, Some(synced(&none, false, None, &[]))),
            "Current",
            "Healthy",
        ),
        (
            "spec edited, not yet observed",
            fixture(3, Some(active.clone())),
            "InProgress",
            "Progressing",
        ),
        (
            "retrying after a 429",
            fixture(
                2,
                Some(status::failed(&active, Some(2), now, &rate_limited)),
            ),
            "InProgress",
            "Progressing",
        ),
        (
            "refused by ElevenLabs",
            fixture(2, Some(status::failed(&active, Some(2), now, &refused))),
            "Failed",
            "Degraded",
        ),
        (
            "bad spec",
            fixture(
                2,
                Some(status::failed(
                    &none,
                    Some(2),
                    now,
                    &Error::Spec(SpecError::NoUid),
                )),
            ),
            "Failed",
            "Degraded",
        ),
        (
            "conflict",
            fixture(
                2,
                Some(status::conflict(
                    &none,
                    Some(2),
                    now,
                    "held by tenants/first",
                )),
            ),
            "Failed",
            "Degraded",
        ),
        (
            "phone number blocked",
            fixture(2, Some(synced(&active, true, Some(&blocked), &[]))),
            "Failed",
            "Degraded",
        ),
    ];
    for (what, object, want_kstatus, want_argo) in cases {
        let (k, argo) = verdicts(&object);
        assert_eq!(k.status, want_kstatus, "{what}: kstatus {k:?}");
        assert_eq!(argo.status, want_argo, "{what}: Argo CD {argo:?}");
        assert!(!argo.message.is_empty(), "{what}: Argo CD gives no message");
        // Where kstatus reads a condition, both show the same message.
        if want_kstatus == "Failed" {
            assert_eq!(argo.message, k.message, "{what}");
        }
    }
    let blocked_phone = fixture(2, Some(synced(&active, true, Some(&blocked), &[])));
    assert!(
        argo_health(&blocked_phone)
            .message
            .contains("clinic-twilio")
    );
    let disabled = fixture(2, Some(synced(&none, false, None, &[])));
    assert!(argo_health(&disabled).message.contains("is disabled"));
}

/// The harness refuses what Argo CD refuses, so a script that passes here
/// runs in Argo CD too: no string library (useOpenLibs is off for
/// argocd-cm scripts), a table must come back, a status outside Argo CD's
/// six is Unknown, and a script gets one second.
#[test]
fn the_argo_cd_harness_runs_scripts_as_argo_cd_does() {
    let object = fixture(1, None);
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, script: &str| {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, script).unwrap();
        try_gitops_status(&["argo-health", path.to_str().unwrap()], &object)
    };
    let reads_obj = run(
        "reads-obj.lua",
        "return {status = 'Suspended', message = obj.metadata.name .. ' ' .. obj.metadata.generation}",
    );
    assert_eq!(
        reads_obj,
        Ok(Verdict {
            status: "Suspended".into(),
            message: "clinica-xyz-l0100001 1".into()
        })
    );
    let no_string = run("string.lua", "return {status = string.upper('healthy')}").unwrap_err();
    assert!(
        no_string.contains("non-table object(nil) with key 'upper'"),
        "{no_string}"
    );
    let no_table = run("nil.lua", "hs = {status = 'Healthy'}").unwrap_err();
    assert!(
        no_table.contains("expect table output from Lua script, not nil"),
        "{no_table}"
    );
    assert_eq!(
        run("bad-status.lua", "return {status = 'Fine'}"),
        Ok(Verdict {
            status: "Unknown".into(),
            message: "Lua returned an invalid health status".into()
        })
    );
    let endless = run("endless.lua", "while true do end").unwrap_err();
    assert!(endless.contains("context deadline exceeded"), "{endless}");
    let bad_object = try_gitops_status(&["kstatus"], &json!({"metadata": {}})).unwrap_err();
    assert!(bad_object.contains("Kind"), "{bad_object}");
}

/// The argocd-cm snippet in docs/gitops.md is the script the chart ships,
/// under the key Argo CD looks up for voiceagents.io VoiceAgents.
#[test]
fn the_documented_argocd_cm_snippet_is_the_shipped_health_check() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/gitops.md")).unwrap();
    let key = "resource.customizations.health.voiceagents.io_VoiceAgent";
    let snippet = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(yaml, _)| yaml))
        .find(|yaml| yaml.contains(key))
        .expect("docs/gitops.md has the argocd-cm snippet");
    let parsed: Value = serde_saphyr::from_str(snippet).unwrap();
    let shipped = std::fs::read_to_string(crate::support::gitops::argo_health_script()).unwrap();
    assert_eq!(parsed["data"][key].as_str(), Some(shipped.as_str()));
}
