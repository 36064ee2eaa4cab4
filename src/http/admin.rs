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
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{ApiError, parse_json};
use super::state::AppState;
use crate::admin::{AdminError, AgentAdmin};
use crate::crd::{Phase, VoiceAgent};
use crate::tenant::TenantKey;

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

fn admin(state: &AppState, headers: &HeaderMap) -> Result<Arc<dyn AgentAdmin>, ApiError> {
    let token = state.config.admin_token.as_ref().ok_or_else(|| {
        ApiError::Unauthorized("the admin API is off: VOICE_OPERATOR_ADMIN_TOKEN is not set".into())
    })?;
    AppState::check_bearer(headers, token, "the admin API")?;
    state
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
    State(state): State<Arc<AppState>>,
    Path(business_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let backend = admin(&state, &headers)?;
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
    State(state): State<Arc<AppState>>,
    Path(business_id): Path<String>,
    Query(query): Query<LocationQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let backend = admin(&state, &headers)?;
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
    State(state): State<Arc<AppState>>,
    Path(business_id): Path<String>,
    Query(query): Query<LocationQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let backend = admin(&state, &headers)?;
    let key = key_of(&business_id, query.location_id.as_deref(), "locationId")?;
    let va = backend
        .find(&key)
        .await?
        .ok_or_else(|| AdminError::no_agent(&key))?;
    let status = va.status.clone().unwrap_or_default();
    // A VoiceAgent that names a template shows what its agent gets: the
    // template with the VoiceAgent's own fields over it, by the rule the
    // controller applies. A missing template shows the VoiceAgent's own
    // fields (its message says the template is missing).
    let template = match &va.spec.template_ref {
        Some(r) => backend.template(&va, &r.name).await?,
        None => None,
    };
    let merged = template
        .as_ref()
        .and_then(|t| crate::controller::template::effective(&va, t).ok());
    let spec = merged.as_ref().map_or(&va.spec, |m| &m.spec);
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
        "templateRef": va.spec.template_ref.as_ref().map(|r| &r.name),
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
