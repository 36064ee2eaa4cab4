//! The real kube-apiserver + etcd that `scripts/test.sh` starts (through
//! `scripts/kube-tools.sh --start`): a client from its kubeconfig, the CRD,
//! a namespace per test, and VoiceAgents read from the example manifests.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt};
use serde_json::json;

use crate::crd::{VoiceAgent, VoiceAgentTemplate};

/// A client for the cluster that the kubeconfig at `path` names.
pub async fn client_from(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("the test kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the test kubeconfig is usable");
    Client::try_from(config).expect("a client for the test cluster")
}

/// Applies the checked-in CRDs (VoiceAgent, VoiceAgentTemplate) and waits
/// until they are served.
pub async fn install_crd(client: &Client) {
    for (file, name) in [
        ("voiceagents.io_voiceagents.yaml", VoiceAgent::crd_name()),
        (
            "voiceagents.io_voiceagenttemplates.yaml",
            VoiceAgentTemplate::crd_name(),
        ),
    ] {
        apply_crd(client, file, name).await;
    }
    // Discovery can lag behind Established for a moment.
    let probe: Api<VoiceAgent> = Api::namespaced(client.clone(), "default");
    let templates: Api<VoiceAgentTemplate> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.list(&Default::default()).await.is_err()
        || templates.list(&Default::default()).await.is_err()
    {
        assert!(
            Instant::now() < deadline,
            "VoiceAgents not served 30 s after the CRD"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Applies `crds/<file>` and waits until CRD `name` is Established.
async fn apply_crd(client: &Client, file: &str, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crds")
            .join(file),
    )
    .unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
    crds.patch(
        name,
        &PatchParams::apply("voice-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("the CRD applies");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = crds.get(name).await.unwrap();
        let established = current
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CRD {name} not Established after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh namespace, so that tests running together do not see each
/// other's VoiceAgents.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    name
}

/// The VoiceAgents in an example manifest, moved into `namespace`.
pub fn example(file: &str, namespace: &str) -> VoiceAgent {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(file),
    )
    .unwrap();
    let mut va: VoiceAgent = serde_saphyr::from_str(&text).unwrap();
    va.metadata.namespace = Some(namespace.to_owned());
    va
}

/// An example manifest as plain JSON (for the bad ones, which do not
/// deserialize into a VoiceAgent), moved into `namespace`.
pub fn example_value(file: &str, namespace: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(file),
    )
    .unwrap();
    let mut value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    value["metadata"]["namespace"] = json!(namespace);
    value
}

/// Polls `get` until `done` holds, for up to `limit`; on timeout the
/// panic shows the last value seen.
pub async fn until<T: std::fmt::Debug, F, Fut>(
    limit: Duration,
    what: &str,
    mut get: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + limit;
    loop {
        let value = get().await;
        if done(&value) {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}; last seen: {value:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
