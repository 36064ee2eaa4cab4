//! The admin API over VoiceAgents in one namespace of the cluster:
//! server-side apply for activation, a merge patch for `enabled`.

use futures::future::BoxFuture;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::{ADMIN_FIELD_MANAGER, AdminError, AgentAdmin, owns, resource_name};
use crate::crd::{VoiceAgent, VoiceAgentTemplate};
use crate::tenant::TenantKey;

/// The admin API over VoiceAgents in one namespace of the cluster.
pub struct KubeAdmin {
    api: Api<VoiceAgent>,
    templates: Api<VoiceAgentTemplate>,
}

impl KubeAdmin {
    pub fn new(client: kube::Client, namespace: &str) -> KubeAdmin {
        KubeAdmin {
            api: Api::namespaced(client.clone(), namespace),
            templates: Api::namespaced(client, namespace),
        }
    }
}

fn kube_error(e: kube::Error) -> AdminError {
    match e {
        kube::Error::Api(status) if status.code == 409 => AdminError::Conflict(format!(
            "the VoiceAgent is managed by someone else: {}",
            status.message
        )),
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            AdminError::Invalid {
                field: "spec".into(),
                reason: status.message,
            }
        }
        other => AdminError::Unavailable(format!("the Kubernetes API failed: {other}")),
    }
}

impl AgentAdmin for KubeAdmin {
    fn apply<'a>(
        &'a self,
        key: &'a TenantKey,
        found: Option<&'a VoiceAgent>,
        spec: Map<String, Value>,
    ) -> BoxFuture<'a, Result<VoiceAgent, AdminError>> {
        Box::pin(async move {
            let name = found
                .and_then(|existing| existing.metadata.name.clone())
                .unwrap_or_else(|| resource_name(key));
            let object = json!({
                "apiVersion": "voiceagents.io/v1alpha1",
                "kind": "VoiceAgent",
                "metadata": {"name": name},
                "spec": spec,
            });
            self.api
                .patch(
                    &name,
                    &PatchParams::apply(ADMIN_FIELD_MANAGER),
                    &Patch::Apply(&object),
                )
                .await
                .map_err(kube_error)
        })
    }

    fn find<'a>(
        &'a self,
        key: &'a TenantKey,
    ) -> BoxFuture<'a, Result<Option<VoiceAgent>, AdminError>> {
        Box::pin(async move {
            if let Some(va) = self
                .api
                .get_opt(&resource_name(key))
                .await
                .map_err(kube_error)?
                && owns(&va, key)
            {
                return Ok(Some(va));
            }
            let params = ListParams::default();
            let list = self.api.list(&params).await.map_err(kube_error)?;
            Ok(list.items.into_iter().find(|va| owns(va, key)))
        })
    }

    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        enabled: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, AdminError>> {
        Box::pin(async move {
            let va = self
                .find(key)
                .await?
                .ok_or_else(|| AdminError::no_agent(key))?;
            let name = va.metadata.name.unwrap_or_default();
            self.api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"enabled": enabled}})),
                )
                .await
                .map_err(kube_error)
        })
    }

    /// `get` on the template, in the namespace the admin API works in
    /// (the VoiceAgents it finds are all there).
    fn template<'a>(
        &'a self,
        _va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<VoiceAgentTemplate>, AdminError>> {
        Box::pin(async move { self.templates.get_opt(name).await.map_err(kube_error) })
    }
}
