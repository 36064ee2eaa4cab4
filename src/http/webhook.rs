//! `POST /api/elevenlabs/webhook`: the seed's agent-to-agent events
//! (`message`, `conversation_start`, `conversation_end`). For a disabled
//! tenant, `message` and `conversation_start` get the closing sentence with
//! `continueConversation: false`; the end of the call is logged as usual.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::disabled::{self, TENANT_DISABLED};
use super::error::{ApiError, parse_json};
use super::state::AppState;
use crate::actionlog::{Outcome, VoiceCall};
use crate::agent::{Answer, Turn};
use crate::ids::Id;
use crate::tenant::{TenantConfig, TenantKey};

/// The seed's webhook body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedEvent {
    event: String,
    conversation_id: String,
    #[serde(default)]
    message: Option<SeedMessage>,
    metadata: SeedMetadata,
    /// Seconds into the call (or the call's length, on `conversation_end`).
    #[serde(default)]
    duration: Option<f64>,
    /// The ElevenLabs agent, when the sender names it.
    #[serde(default, alias = "agent_id")]
    agent_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SeedMessage {
    content: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedMetadata {
    business_id: String,
    location_id: String,
    /// The caller's number, when known.
    #[serde(default)]
    caller_phone: Option<String>,
}

/// The source the agent sees for phone turns.
pub const VOICE: &str = "voice";

/// Handles one seed webhook event.
pub async fn webhook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    state.verify_signature(&headers, &body)?;
    let event: SeedEvent = parse_json(&body)?;
    let key = TenantKey::parse(&event.metadata.business_id, &event.metadata.location_id)
        .map_err(|e| ApiError::field(format!("metadata.{}", e.field), e.reason))?;
    let conversation = Id::parse("conversationId", &event.conversation_id)?;
    if let Some(d) = event.duration
        && !(d.is_finite() && d >= 0.0)
    {
        return Err(ApiError::field(
            "duration",
            "must be a number of seconds, at least 0",
        ));
    }
    let span = tracing::info_span!(
        "webhook",
        event = %event.event,
        business_id = %key.business_id,
        location_id = %key.location_id,
        conversation = %conversation,
    );
    async move {
        let tenant = state.tenant(&key).await?;
        state.check_agent(&tenant, event.agent_id.as_deref())?;
        let seen = state.claim_conversation(conversation.as_str(), &key)?;
        let enabled = tenant.settings.enabled;
        let caller = event.metadata.caller_phone.as_deref();
        let call = |duration: Option<f64>, what: &str, extra: Option<(&str, Value)>| {
            let mut metadata = Map::new();
            metadata.insert("event".into(), json!(what));
            if let Some((k, v)) = extra {
                metadata.insert(k.into(), v);
            }
            if !enabled {
                metadata.insert(TENANT_DISABLED.into(), json!(true));
            }
            VoiceCall {
                conversation_id: conversation.to_string(),
                call_duration_secs: duration,
                extra: metadata,
            }
        };
        let received = || Outcome::Received {
            external_id: Some(conversation.to_string()),
        };
        match event.event.as_str() {
            "message" => {
                let content = event
                    .message
                    .map(|m| m.content)
                    .ok_or_else(|| ApiError::field("message", "is required for event message"))?;
                if content.trim().is_empty() {
                    return Err(ApiError::field("message.content", "must not be empty"));
                }
                state.log_call(
                    &key,
                    received(),
                    call(
                        event.duration,
                        "message",
                        Some(("messageLength", json!(content.chars().count()))),
                    ),
                    caller,
                    None,
                );
                if !enabled {
                    return Ok(Json(closing(&state, &tenant).await));
                }
                let turn = Turn {
                    session_id: conversation.to_string(),
                    business_id: key.business_id.to_string(),
                    location_id: key.location_id.to_string(),
                    source: VOICE.into(),
                    text: content,
                    bedrock: tenant.settings.bedrock.clone(),
                    ..Turn::default()
                };
                let answer = state
                    .runtime
                    .answer(&turn, state.tools.as_ref(), None)
                    .await;
                Ok(Json(reply(&answer)))
            }
            "conversation_start" => {
                state.log_call(
                    &key,
                    received(),
                    call(None, "conversation_start", None),
                    caller,
                    None,
                );
                if !enabled {
                    return Ok(Json(closing(&state, &tenant).await));
                }
                Ok(Json(
                    json!({"status": "ok", "conversationId": conversation.as_str()}),
                ))
            }
            "conversation_end" => {
                let duration = event
                    .duration
                    .unwrap_or_else(|| seen.started.elapsed().as_secs_f64().round());
                state.log_call(
                    &key,
                    received(),
                    call(Some(duration), "conversation_end", None),
                    caller,
                    None,
                );
                Ok(Json(json!({
                    "status": "ok",
                    "conversationId": conversation.as_str(),
                    "callDuration": duration,
                })))
            }
            other => Err(ApiError::field(
                "event",
                format!("{other:?} is not one of message, conversation_start, conversation_end"),
            )),
        }
    }
    .instrument(span)
    .await
}

/// The seed's response that ends the conversation of a disabled tenant:
/// the closing sentence, nothing run.
async fn closing(state: &AppState, tenant: &TenantConfig) -> Value {
    json!({
        "response": disabled::closing_sentence(state, tenant).await,
        "continueConversation": false,
        "actions": [],
    })
}

/// The seed's response to a `message`.
fn reply(answer: &Answer) -> Value {
    let actions: Vec<Value> = answer
        .tools
        .iter()
        .map(|t| json!({"type": "tool_call", "name": t.function, "parameters": t.parameters}))
        .collect();
    json!({
        "response": answer.text,
        "continueConversation": true,
        "actions": actions,
    })
}
