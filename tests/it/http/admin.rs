//! The seed's admin API (activate, deactivate, status) over HTTP, on
//! VoiceAgents in the real kube-apiserver that scripts/test.sh starts.
//! No controller runs here: the test plays its part by writing status.

use std::time::Duration;

use crate::support::bridge::{ADMIN_TOKEN, Options, TestBridge};
use crate::support::cluster::{self, until};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use voice_operator::admin::KubeAdmin;
use voice_operator::crd::{VoiceAgent, VoiceAgentTemplate};

async fn setup() -> (TestBridge, Api<VoiceAgent>, String) {
    let client = cluster::client().await;
    cluster::install_crd(&client).await;
    let ns = cluster::namespace(&client, "admin").await;
    let admin = KubeAdmin::new(client.clone(), &ns);
    let bridge = TestBridge::start(Options {
        configure: Box::new(move |b| b.admin = Some(std::sync::Arc::new(admin))),
        ..Options::default()
    })
    .await;
    (bridge, Api::namespaced(client, &ns), ns)
}

fn activation() -> Value {
    json!({
        "locationId": "L0100001",
        "voiceId": "21m00Tcm4TlvDq8ikWAM",
        "greeting": "Bună ziua! Sunt asistentul clinicii. Cu ce vă pot ajuta?",
        "customPrompt": "You are a helpful dental assistant...",
        "apiKey": "sk_tenant_key_that_must_go_nowhere",
        "businessName": "Clinica Test"
    })
}

async fn call(method: reqwest::Method, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What the controller would write once it has made the agent.
async fn controller_reports(api: &Api<VoiceAgent>, name: &str, agent: &str) {
    let status = json!({"status": {"phase": "Active", "agentId": agent, "conditions": []}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

#[tokio::test]
async fn activate_status_deactivate_round_trip() {
    let (bridge, api, _ns) = setup().await;
    let base = format!("{}/api/elevenlabs", bridge.url);

    let (code, body) = call(
        reqwest::Method::POST,
        &format!("{base}/activate/B0100001"),
        Some(&activation()),
    )
    .await;
    // No controller is running, so there is no agent id yet.
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["agentId"], Value::Null);
    assert_eq!(body["apiKeyIgnored"], json!(true));
    let name = body["voiceAgent"].as_str().unwrap().to_owned();
    assert_eq!(name, "b0100001-l0100001");

    let va = api.get(&name).await.unwrap();
    assert_eq!(va.spec.business_id, "B0100001");
    assert_eq!(va.spec.location_id, "L0100001");
    assert_eq!(va.spec.business_name, "Clinica Test");
    assert!(va.spec.enabled);
    let stored = serde_json::to_string(&va).unwrap();
    assert!(!stored.contains("sk_tenant_key"), "the API key was stored");
    let managers: Vec<String> = va
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"voice-operator-admin".to_owned()),
        "{managers:?}"
    );

    controller_reports(&api, &name, "agent_xyz123").await;
    let (code, body) = call(
        reqwest::Method::GET,
        &format!("{base}/status/B0100001?locationId=L0100001"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["enabled"], json!(true));
    assert_eq!(body["phase"], json!("Active"));
    assert_eq!(body["config"]["agentId"], json!("agent_xyz123"));
    assert_eq!(body["config"]["voiceId"], json!("21m00Tcm4TlvDq8ikWAM"));
    assert_eq!(
        body["config"]["conversationSettings"]["maxDuration"],
        json!(300)
    );

    // Activating again updates the spec and answers at once with the id.
    let mut again = activation();
    again["greeting"] = json!("Salut!");
    let (code, body) = call(
        reqwest::Method::POST,
        &format!("{base}/activate/B0100001"),
        Some(&again),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["agentId"], json!("agent_xyz123"));
    assert_eq!(
        body["message"],
        json!("Eleven Labs conversational AI activated successfully")
    );
    assert_eq!(api.get(&name).await.unwrap().spec.greeting, "Salut!");

    let (code, body) = call(
        reqwest::Method::DELETE,
        &format!("{base}/deactivate/B0100001?locationId=L0100001"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["agentId"], json!("agent_xyz123"));
    let va = until(
        Duration::from_secs(5),
        "spec.enabled false",
        || api.get(&name),
        |r| r.as_ref().is_ok_and(|va| !va.spec.enabled),
    )
    .await
    .unwrap();
    assert_eq!(va.status.unwrap().agent_id.as_deref(), Some("agent_xyz123"));
}

#[tokio::test]
async fn status_finds_voiceagents_by_tenant_whatever_their_name() {
    let (bridge, api, ns) = setup().await;
    let mut va = cluster::example("voiceagent-clinic.yaml", &ns);
    va.metadata.name = Some("from-git".into());
    let key = (va.spec.business_id.clone(), va.spec.location_id.clone());
    api.create(&Default::default(), &va).await.unwrap();
    let base = format!("{}/api/elevenlabs", bridge.url);
    let (code, body) = call(
        reqwest::Method::GET,
        &format!("{base}/status/{}?locationId={}", key.0, key.1),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["voiceAgent"]["name"], json!("from-git"));

    let (code, body) = call(
        reqwest::Method::GET,
        &format!("{base}/status/{}?locationId=L9999999", key.0),
        None,
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = call(
        reqwest::Method::GET,
        &format!("{base}/status/{}", key.0),
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["field"], json!("locationId"));
    let (code, body) = call(
        reqwest::Method::POST,
        &format!("{base}/activate/B0100001"),
        Some(&json!({"locationId": "L1", "voiceId": "v"})),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["field"], json!("greeting"));

    // While the VoiceAgent is being deleted (held here by a finalizer, as
    // the controller's cleanup holds it), status says so and activate
    // refuses rather than write into an object that is going away.
    let hold = json!({"metadata": {"finalizers": ["test.voiceagents.io/hold"]}});
    api.patch("from-git", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    api.delete("from-git", &Default::default()).await.unwrap();
    let status_url = format!("{base}/status/{}?locationId={}", key.0, key.1);
    let (code, body) = call(reqwest::Method::GET, &status_url, None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["deleting"], json!(true));
    assert!(
        body["message"].as_str().unwrap().contains("being deleted"),
        "{body}"
    );
    let mut again = activation();
    again["locationId"] = json!(key.1);
    let (code, body) = call(
        reqwest::Method::POST,
        &format!("{base}/activate/{}", key.0),
        Some(&again),
    )
    .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("from-git"),
        "names the VoiceAgent: {body}"
    );
    let release = json!({"metadata": {"finalizers": null}});
    api.patch("from-git", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    let gone = until(
        Duration::from_secs(10),
        "the VoiceAgent is gone",
        || api.get_opt("from-git"),
        |got| matches!(got, Ok(None)),
    )
    .await;
    assert!(gone.unwrap().is_none());
    let (code, body) = call(reqwest::Method::GET, &status_url, None).await;
    assert_eq!(code, 404, "{body}");
}

#[tokio::test]
async fn activation_does_not_take_fields_another_manager_owns() {
    let (bridge, api, ns) = setup().await;
    // GitOps applied this VoiceAgent with its own field manager.
    let va = cluster::example_value("voiceagent-clinic.yaml", &ns);
    let name = va["metadata"]["name"].as_str().unwrap().to_owned();
    let business = va["spec"]["businessId"].as_str().unwrap().to_owned();
    let location = va["spec"]["locationId"].as_str().unwrap().to_owned();
    api.patch(&name, &PatchParams::apply("argocd"), &Patch::Apply(&va))
        .await
        .unwrap();
    let mut body = activation();
    body["locationId"] = json!(location);
    body["greeting"] = json!("A different greeting");
    let (code, answer) = call(
        reqwest::Method::POST,
        &format!("{}/api/elevenlabs/activate/{business}", bridge.url),
        Some(&body),
    )
    .await;
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("managed by someone else")
    );
    assert_ne!(
        api.get(&name).await.unwrap().spec.greeting,
        "A different greeting"
    );
}

#[tokio::test]
async fn status_shows_the_template_merged_under_the_voiceagent_s_own_fields() {
    let (bridge, api, ns) = setup().await;
    let client = cluster::client().await;
    let templates: Api<VoiceAgentTemplate> = Api::namespaced(client, &ns);
    let template: VoiceAgentTemplate = serde_json::from_value(json!({
        "apiVersion": "voiceagents.io/v1alpha1",
        "kind": "VoiceAgentTemplate",
        "metadata": {"name": "chain"},
        "spec": {
            "businessName": "Dental Chain",
            "voiceId": "21m00Tcm4TlvDq8ikWAM",
            "greeting": "Bună ziua, Dental Chain!",
            "conversation": {"maxDurationSeconds": 420}
        }
    }))
    .unwrap();
    templates
        .create(&Default::default(), &template)
        .await
        .unwrap();
    let va: VoiceAgent = serde_json::from_value(json!({
        "apiVersion": "voiceagents.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": "chain-cluj"},
        "spec": {
            "businessId": "B0900009",
            "locationId": "L0900002",
            "templateRef": {"name": "chain"},
            "voiceId": "pNInz6obpgDQGcFmaJgB"
        }
    }))
    .unwrap();
    api.create(&Default::default(), &va).await.unwrap();

    let url = format!(
        "{}/api/elevenlabs/status/B0900009?locationId=L0900002",
        bridge.url
    );
    let (code, body) = call(reqwest::Method::GET, &url, None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["templateRef"], json!("chain"));
    let config = &body["config"];
    assert_eq!(config["businessName"], json!("Dental Chain"), "{body}");
    assert_eq!(config["greeting"], json!("Bună ziua, Dental Chain!"));
    assert_eq!(config["voiceId"], json!("pNInz6obpgDQGcFmaJgB"), "its own");
    assert_eq!(config["conversationSettings"]["maxDuration"], json!(420));

    // Without its template, the status shows the VoiceAgent's own fields.
    templates
        .delete("chain", &Default::default())
        .await
        .unwrap();
    let (code, body) = call(reqwest::Method::GET, &url, None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["config"]["businessName"], json!(""), "{body}");
    assert_eq!(body["config"]["voiceId"], json!("pNInz6obpgDQGcFmaJgB"));
}
