//! Where VoiceAgents live for the reconciler: the Kubernetes API in a
//! cluster, the manifests directory in `local` mode. The reconciler only
//! adds or removes its finalizer, writes the status and tells what it did;
//! everything else it decides is the same for both.

use futures::future::BoxFuture;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::crd::{FINALIZER, VoiceAgent, VoiceAgentStatus};

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
    /// Tells what happened to `va`, best effort.
    fn event<'a>(
        &'a self,
        va: &'a VoiceAgent,
        type_: EventType,
        reason: Reason,
        note: String,
    ) -> BoxFuture<'a, ()>;
}

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
