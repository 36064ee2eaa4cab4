//! The seed's admin API (`activate`, `deactivate`, `status`), kept for the
//! clients that use it, on top of VoiceAgent resources: activating applies
//! a VoiceAgent, deactivating sets `enabled: false`, status reads it. The
//! controller does the rest, as for any other VoiceAgent.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::bridge::Bridge;
use super::error::{ApiError, parse_json};
use crate::bridge::BoxFuture;
use crate::crd::{Phase, VoiceAgent};
use crate::tenant::TenantKey;

/// Field manager of what the admin API applies, distinct from the
/// controller's so that server-side apply keeps their fields apart.
pub const ADMIN_FIELD_MANAGER: &str = "voice-operator-admin";

/// Where VoiceAgents live for the admin API: the cluster, or the manifests
/// directory in `local` mode.
pub trait AgentAdmin: Send + Sync {
    /// Creates or updates the VoiceAgent of `key` with the `spec` fields
    /// given (the others are left as they are). `found` is what
    /// [`AgentAdmin::find`] has just answered, so that it need not be
    /// looked up again.
    fn apply<'a>(
        &'a self,
        key: &'a TenantKey,
        found: Option<&'a VoiceAgent>,
        spec: Map<String, Value>,
    ) -> BoxFuture<'a, Result<VoiceAgent, ApiError>>;
    /// The VoiceAgent of `key`, whatever its name, also while it is being
    /// deleted.
    fn find<'a>(
        &'a self,
        key: &'a TenantKey,
    ) -> BoxFuture<'a, Result<Option<VoiceAgent>, ApiError>>;
    /// Sets `spec.enabled` of the VoiceAgent of `key`.
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        enabled: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, ApiError>>;
}

/// The name the admin API gives a new VoiceAgent: a DNS label made of
/// the two ids.
pub fn resource_name(key: &TenantKey) -> String {
    let raw = format!("{}-{}", key.business_id, key.location_id).to_ascii_lowercase();
    raw.replace('_', "-").trim_matches('-').to_owned()
}

/// The admin API over VoiceAgents in one namespace of the cluster.
pub struct KubeAdmin {
    api: Api<VoiceAgent>,
}

impl KubeAdmin {
    pub fn new(client: kube::Client, namespace: &str) -> KubeAdmin {
        KubeAdmin {
            api: Api::namespaced(client, namespace),
        }
    }
}

fn kube_error(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(status) if status.code == 409 => ApiError::Conflict(format!(
            "the VoiceAgent is managed by someone else: {}",
            status.message
        )),
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            ApiError::field("spec", status.message)
        }
        other => ApiError::Unavailable(format!("the Kubernetes API failed: {other}")),
    }
}

impl AgentAdmin for KubeAdmin {
    fn apply<'a>(
        &'a self,
        key: &'a TenantKey,
        found: Option<&'a VoiceAgent>,
        spec: Map<String, Value>,
    ) -> BoxFuture<'a, Result<VoiceAgent, ApiError>> {
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
    ) -> BoxFuture<'a, Result<Option<VoiceAgent>, ApiError>> {
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
    ) -> BoxFuture<'a, Result<VoiceAgent, ApiError>> {
        Box::pin(async move {
            let va = self.find(key).await?.ok_or_else(|| no_agent(key))?;
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
}

fn owns(va: &VoiceAgent, key: &TenantKey) -> bool {
    va.spec.business_id == key.business_id.as_str()
        && va.spec.location_id == key.location_id.as_str()
}

fn no_agent(key: &TenantKey) -> ApiError {
    ApiError::NotFound(format!("no VoiceAgent exists for {key}"))
}

/// The seed's activation body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activation {
    location_id: String,
    voice_id: String,
    greeting: String,
    business_name: String,
    #[serde(default)]
    custom_prompt: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    /// The seed took a per-tenant key; there is one global key now, so it
    /// is read only to say that it was ignored.
    #[serde(default)]
    api_key: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationQuery {
    location_id: Option<String>,
}

/// How long `activate` waits for the controller to report the agent id.
const ACTIVATE_WAIT: Duration = Duration::from_secs(10);

fn admin(bridge: &Bridge, headers: &HeaderMap) -> Result<Arc<dyn AgentAdmin>, ApiError> {
    let token = bridge.config.admin_token.as_ref().ok_or_else(|| {
        ApiError::Unauthorized("the admin API is off: VOICE_OPERATOR_ADMIN_TOKEN is not set".into())
    })?;
    Bridge::check_bearer(headers, token, "the admin API")?;
    bridge
        .admin
        .clone()
        .ok_or_else(|| ApiError::NotFound("the admin API has no VoiceAgent backend here".into()))
}

fn key_of(business_id: &str, location: Option<&str>, field: &str) -> Result<TenantKey, ApiError> {
    let location = location.ok_or_else(|| ApiError::field(field, "is required"))?;
    TenantKey::parse(business_id, location).map_err(|e| {
        let name = if e.field == "businessId" {
            "businessId"
        } else {
            field
        };
        ApiError::field(name, e.reason)
    })
}

/// `POST /api/elevenlabs/activate/{businessId}`.
pub async fn activate(
    State(bridge): State<Arc<Bridge>>,
    Path(business_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let backend = admin(&bridge, &headers)?;
    let request: Activation = parse_json(&body)?;
    let key = key_of(&business_id, Some(&request.location_id), "locationId")?;
    let mut spec = Map::new();
    spec.insert("businessId".into(), json!(key.business_id.as_str()));
    spec.insert("locationId".into(), json!(key.location_id.as_str()));
    spec.insert("businessName".into(), json!(request.business_name));
    spec.insert("voiceId".into(), json!(request.voice_id));
    spec.insert("greeting".into(), json!(request.greeting));
    spec.insert("enabled".into(), json!(true));
    for (name, value) in [
        ("customPrompt", request.custom_prompt),
        ("language", request.language),
        ("phoneNumber", request.phone_number),
    ] {
        if let Some(value) = value {
            spec.insert(name.into(), json!(value));
        }
    }
    let found = backend.find(&key).await?;
    if let Some(va) = &found
        && va.metadata.deletion_timestamp.is_some()
    {
        return Err(ApiError::Conflict(format!(
            "VoiceAgent {} of {key} is being deleted; activate again once it is gone",
            va.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    let applied = backend.apply(&key, found.as_ref(), spec).await?;
    tracing::info!(business_id = %key.business_id, location_id = %key.location_id, "activated through the admin API");
    let deadline = tokio::time::Instant::now() + ACTIVATE_WAIT;
    let mut latest = applied;
    loop {
        let status = latest.status.clone().unwrap_or_default();
        let settled = status.agent_id.is_some()
            || matches!(status.phase, Some(Phase::Error | Phase::Conflict));
        if settled || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(va) = backend.find(&key).await? {
            latest = va;
        }
    }
    let status = latest.status.clone().unwrap_or_default();
    let mut body = json!({
        "success": status.agent_id.is_some(),
        "agentId": status.agent_id,
        "phase": status.phase,
        "voiceAgent": latest.metadata.name,
    });
    if request.api_key.is_some() {
        body["apiKeyIgnored"] = json!(true);
    }
    let code = match (status.agent_id.is_some(), status.phase) {
        (true, _) => {
            body["message"] = json!("Eleven Labs conversational AI activated successfully");
            StatusCode::OK
        }
        (false, Some(Phase::Error | Phase::Conflict)) => {
            body["message"] = json!(
                ready_message(&latest)
                    .unwrap_or_else(|| "the controller could not create the agent".into())
            );
            StatusCode::CONFLICT
        }
        (false, _) => {
            body["success"] = json!(true);
            body["message"] = json!("accepted; the agent is being created, ask status for its id");
            StatusCode::ACCEPTED
        }
    };
    Ok((code, Json(body)).into_response())
}

/// `DELETE /api/elevenlabs/deactivate/{businessId}?locationId=`.
pub async fn deactivate(
    State(bridge): State<Arc<Bridge>>,
    Path(business_id): Path<String>,
    Query(query): Query<LocationQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let backend = admin(&bridge, &headers)?;
    let key = key_of(&business_id, query.location_id.as_deref(), "locationId")?;
    let va = backend.set_enabled(&key, false).await?;
    tracing::info!(business_id = %key.business_id, location_id = %key.location_id, "deactivated through the admin API");
    Ok(Json(json!({
        "success": true,
        "message": "Eleven Labs conversational AI deactivated; the agent is kept for reactivation",
        "agentId": va.status.and_then(|s| s.agent_id),
    })))
}

/// `GET /api/elevenlabs/status/{businessId}?locationId=`.
pub async fn status(
    State(bridge): State<Arc<Bridge>>,
    Path(business_id): Path<String>,
    Query(query): Query<LocationQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let backend = admin(&bridge, &headers)?;
    let key = key_of(&business_id, query.location_id.as_deref(), "locationId")?;
    let va = backend.find(&key).await?.ok_or_else(|| no_agent(&key))?;
    let status = va.status.clone().unwrap_or_default();
    let spec = &va.spec;
    let deleting = va.metadata.deletion_timestamp.is_some();
    let message = if deleting {
        Some("being deleted: its ElevenLabs agent and tenant item are being cleaned up".to_owned())
    } else {
        ready_message(&va)
    };
    Ok(Json(json!({
        "enabled": spec.enabled,
        "phase": status.phase,
        "deleting": deleting,
        "config": {
            "agentId": status.agent_id,
            "voiceId": spec.voice_id,
            "greeting": spec.greeting,
            "customPrompt": spec.custom_prompt,
            "businessName": spec.business_name,
            "phoneNumber": spec.phone_number,
            "language": spec.language,
            "conversationSettings": {
                "maxDuration": spec.conversation.max_duration_seconds,
                "recordCalls": spec.conversation.record_calls,
                "sendTranscripts": spec.conversation.send_transcripts,
            },
        },
        "voiceAgent": {"namespace": va.metadata.namespace, "name": va.metadata.name},
        "message": message,
    })))
}

/// The message of the Ready condition, which says what went wrong.
fn ready_message(va: &VoiceAgent) -> Option<String> {
    va.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == crate::controller::status::READY)
        .map(|c| c.message.clone())
}
