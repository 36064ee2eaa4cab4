//! Where VoiceAgents live for the reconciler: the Kubernetes API in a
//! cluster, the manifests directory in `local` mode. The reconciler only
//! adds or removes its finalizer, writes the status and tells what it did;
//! everything else it decides is the same for both.

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;

use crate::crd::{FINALIZER, VoiceAgent, VoiceAgentStatus, VoiceAgentTemplate};

use super::error::Error;
use super::reason::Reason;
use super::reconcile::FIELD_MANAGER;

/// The writes the reconciler makes to a VoiceAgent.
pub trait Objects: Send + Sync {
    /// Adds or removes the cleanup finalizer; returns the object as it is
    /// now.
    fn set_finalizer<'a>(
        &'a self,
        va: &'a VoiceAgent,
        present: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, Error>>;
    /// Replaces the status.
    fn write_status<'a>(
        &'a self,
        va: &'a VoiceAgent,
        status: &'a VoiceAgentStatus,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// The data of Secret `name` in `va`'s namespace, as text; `None` when
    /// there is no such Secret.
    fn secret<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, Error>>;
    /// VoiceAgentTemplate `name` in `va`'s namespace; `None` when there is
    /// no such template.
    fn template<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<VoiceAgentTemplate>, Error>>;
    /// Tells what happened to `va`, best effort.
    fn event<'a>(
        &'a self,
        va: &'a VoiceAgent,
        type_: EventType,
        reason: Reason,
        note: String,
    ) -> BoxFuture<'a, ()>;
}

/// A Secret's keys and values. Values that are not UTF-8 are left out.
pub type SecretData = BTreeMap<String, SecretString>;

/// The finalizers of `va` with ours added or removed.
pub fn finalizers(va: &VoiceAgent, present: bool) -> Vec<String> {
    let mut finalizers: Vec<String> = va
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.into());
    }
    finalizers
}

/// VoiceAgents in the cluster: patches through the API server and
/// Kubernetes Events.
pub struct KubeObjects {
    client: Client,
    recorder: Recorder,
}

impl KubeObjects {
    /// `instance` names this replica in the Events it publishes.
    pub fn new(client: Client, instance: Option<String>) -> KubeObjects {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        };
        KubeObjects {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    fn api(&self, va: &VoiceAgent) -> Api<VoiceAgent> {
        Api::namespaced(self.client.clone(), &va.namespace().unwrap_or_default())
    }
}

impl Objects for KubeObjects {
    /// The resourceVersion makes the patch fail with 409 (and retry)
    /// instead of overwriting a concurrent change.
    fn set_finalizer<'a>(
        &'a self,
        va: &'a VoiceAgent,
        present: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, Error>> {
        Box::pin(async move {
            let patch = json!({
                "metadata": {
                    "finalizers": finalizers(va, present),
                    "resourceVersion": va.resource_version(),
                }
            });
            Ok(self
                .api(va)
                .patch(
                    &va.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?)
        })
    }

    /// Server-side apply, so that fields the operator no longer sets are
    /// dropped.
    fn write_status<'a>(
        &'a self,
        va: &'a VoiceAgent,
        status: &'a VoiceAgentStatus,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let patch = json!({
                "apiVersion": VoiceAgent::api_version(&()),
                "kind": VoiceAgent::kind(&()),
                "status": status,
            });
            self.api(va)
                .patch_status(
                    &va.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
            Ok(())
        })
    }

    /// Only `get` on one named Secret, the one RBAC grants.
    fn secret<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, Error>> {
        Box::pin(async move {
            let api: Api<Secret> =
                Api::namespaced(self.client.clone(), &va.namespace().unwrap_or_default());
            let Some(secret) = api.get_opt(name).await? else {
                return Ok(None);
            };
            let mut data = SecretData::new();
            for (key, value) in secret.data.unwrap_or_default() {
                if let Ok(text) = String::from_utf8(value.0) {
                    data.insert(key, SecretString::from(text));
                }
            }
            for (key, text) in secret.string_data.unwrap_or_default() {
                data.insert(key, SecretString::from(text));
            }
            Ok(Some(data))
        })
    }

    /// `get` on one named template in the VoiceAgent's namespace.
    fn template<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<VoiceAgentTemplate>, Error>> {
        Box::pin(async move {
            let api: Api<VoiceAgentTemplate> =
                Api::namespaced(self.client.clone(), &va.namespace().unwrap_or_default());
            Ok(api.get_opt(name).await?)
        })
    }

    fn event<'a>(
        &'a self,
        va: &'a VoiceAgent,
        type_: EventType,
        reason: Reason,
        note: String,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let event = Event {
                type_,
                reason: reason.as_str().into(),
                note: Some(note),
                action: reason.as_str().into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &va.object_ref(&())).await {
                tracing::warn!(error = %e, %reason, "cannot publish a Kubernetes Event");
            }
        })
    }
}
