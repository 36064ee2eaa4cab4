//! `POST /api/elevenlabs/llm/{businessId}/{locationId}/chat/completions`:
//! ElevenLabs' custom LLM. The request is an OpenAI chat-completions
//! request; the answer streams back as `chat.completion.chunk` server-sent
//! events while the agent runtime produces it, ending with `data: [DONE]`.
//! A disabled tenant's turn is answered the same way with the closing
//! sentence of [`disabled`], without running the agent.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::disabled::{self, TENANT_DISABLED};
use super::error::{ApiError, parse_json};
use super::state::{AppState, unix_now};
use super::webhook::VOICE;
use crate::actionlog::{Outcome, VoiceCall};
use crate::agent::Turn;
use crate::elevenlabs::model::CONVERSATION_ID_HEADER;
use crate::ids::Id;
use crate::tenant::TenantKey;

/// The parts of the chat-completions request the bridge reads.
#[derive(Debug, Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    elevenlabs_extra_body: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

impl ChatMessage {
    /// The text of `content`, a string or a list of `{type: text}` parts.
    fn text(&self) -> String {
        match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    }
}

/// Keys of `elevenlabs_extra_body` that name the call, in order of trust.
const SESSION_KEYS: [&str; 4] = ["conversation_id", "correlation_id", "call_sid", "callSid"];

/// The session id of a custom-LLM request: the conversation id in the
/// [`CONVERSATION_ID_HEADER`] header, else the call named in the extra
/// body, else `None`. Nothing else in the request tells two callers
/// apart: two calls that open with the same words look the same.
fn named_session(headers: &HeaderMap, request: &ChatRequest) -> Result<Option<Id>, ApiError> {
    if let Some(value) = headers.get(CONVERSATION_ID_HEADER) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::field(CONVERSATION_ID_HEADER, "is not text"))?;
        return Ok(Some(Id::parse(CONVERSATION_ID_HEADER, text.trim())?));
    }
    if let Some(extra) = &request.elevenlabs_extra_body {
        for name in SESSION_KEYS {
            if let Some(value) = extra.get(name) {
                let text = value.as_str().ok_or_else(|| {
                    ApiError::field(format!("elevenlabs_extra_body.{name}"), "must be a string")
                })?;
                return Ok(Some(Id::parse(
                    &format!("elevenlabs_extra_body.{name}"),
                    text,
                )?));
            }
        }
    }
    Ok(None)
}

/// The session of a turn: the call's own id when the request names it,
/// otherwise a fresh one for this request alone, so that two callers
/// never share an agent session (the agent then remembers nothing
/// between the turns of that call).
fn session_id(headers: &HeaderMap, request: &ChatRequest) -> Result<Id, ApiError> {
    if let Some(named) = named_session(headers, request)? {
        return Ok(named);
    }
    static REPORTED: std::sync::Once = std::sync::Once::new();
    REPORTED.call_once(|| {
        tracing::debug!(
            header = CONVERSATION_ID_HEADER,
            "a custom-LLM request names no conversation (no header, no elevenlabs_extra_body); \
             each such turn gets a session of its own. Agents the operator manages send the header."
        );
    });
    Ok(Id::parse(
        "session",
        &format!("llm-{}", uuid::Uuid::new_v4().simple()),
    )?)
}

/// Handles one custom-LLM turn.
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Path((business_id, location_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(secret) = &state.config.llm_secret {
        AppState::check_bearer(&headers, secret, "the custom-LLM route")?;
    }
    let key = TenantKey::parse(&business_id, &location_id)?;
    let request: ChatRequest = parse_json(&body)?;
    let text = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(ChatMessage::text)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::field("messages", "has no user message with text"))?;
    let session = session_id(&headers, &request)?;
    let span = tracing::info_span!(
        "custom_llm",
        business_id = %key.business_id,
        location_id = %key.location_id,
        conversation = %session,
    );
    let tenant = state.tenant(&key).instrument(span.clone()).await?;
    state.claim_conversation(session.as_str(), &tenant.key)?;
    let enabled = tenant.settings.enabled;
    let mut extra = Map::new();
    extra.insert("event".into(), json!("custom_llm_turn"));
    extra.insert("messageLength".into(), json!(text.chars().count()));
    if !enabled {
        extra.insert(TENANT_DISABLED.into(), json!(true));
    }
    state.log_call(
        &key,
        Outcome::Received {
            external_id: Some(session.to_string()),
        },
        VoiceCall {
            conversation_id: session.to_string(),
            call_duration_secs: None,
            extra,
        },
        None,
        None,
    );
    let model = request.model.unwrap_or_else(|| "voice-operator".into());
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    if !enabled {
        // No agent runtime and no tool: the call is told, and that is all.
        let sentence = disabled::closing_sentence(&state, &tenant)
            .instrument(span)
            .await;
        return Ok(answer_now(request.stream, id, model, sentence.to_owned()));
    }
    let turn = Turn {
        session_id: session.to_string(),
        business_id: key.business_id.to_string(),
        location_id: key.location_id.to_string(),
        source: VOICE.into(),
        text,
        bedrock: tenant.settings.bedrock.clone(),
        ..Turn::default()
    };
    let (tx, rx) = mpsc::channel::<String>(64);
    // The turn runs to its end even if ElevenLabs hangs up mid-stream, so
    // that tools it started finish and are logged.
    let task = tokio::spawn(
        async move {
            state
                .runtime
                .answer(&turn, state.tools.as_ref(), Some(tx))
                .await
        }
        .instrument(span),
    );
    if request.stream == Some(false) {
        let answer = task
            .await
            .map_err(|e| ApiError::Internal(format!("the agent turn failed: {e}")))?;
        return Ok(completion(id, model, answer.text));
    }
    Ok(Sse::new(chunks(id, model, rx)).into_response())
}

/// An answer known in full before it is sent: one `chat.completion` when
/// the request asks for no stream, else the same chunks a turn streams.
fn answer_now(stream: Option<bool>, id: String, model: String, text: String) -> Response {
    if stream == Some(false) {
        return completion(id, model, text);
    }
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(text)
        .expect("a new channel has room for one piece");
    Sse::new(chunks(id, model, rx)).into_response()
}

/// The non-streaming answer: one `chat.completion`.
fn completion(id: String, model: String, text: String) -> Response {
    Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }],
    }))
    .into_response()
}

/// The SSE events of one answer: the role, each piece of text as it
/// arrives, the finish reason, and `[DONE]`.
fn chunks(
    id: String,
    model: String,
    rx: mpsc::Receiver<String>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let created = unix_now();
    let chunk = move |delta: Value, finish: Option<&str>| {
        let data = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Ok(Event::default().data(data.to_string()))
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    let last = chunk(json!({}), Some("stop"));
    let pieces = stream::unfold((rx, chunk), |(mut rx, chunk)| async move {
        let piece = rx.recv().await?;
        let event = chunk(json!({"content": piece}), None);
        Some((event, (rx, chunk)))
    });
    stream::once(async { first })
        .chain(pieces)
        .chain(stream::iter([last, Ok(Event::default().data("[DONE]"))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn with_header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONVERSATION_ID_HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_session_is_the_header_then_the_extra_body() {
        let r = request(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "elevenlabs_extra_body": {"call_sid": "CA1", "conversation_id": "conv_9"},
        }));
        assert_eq!(
            session_id(&with_header("conv_h1"), &r).unwrap().as_str(),
            "conv_h1"
        );
        assert_eq!(
            session_id(&HeaderMap::new(), &r).unwrap().as_str(),
            "conv_9"
        );
        let bad = request(json!({
            "messages": [], "elevenlabs_extra_body": {"conversation_id": "a/b"},
        }));
        assert!(matches!(
            session_id(&HeaderMap::new(), &bad),
            Err(ApiError::BadField { field, .. }) if field == "elevenlabs_extra_body.conversation_id"
        ));
        assert!(matches!(
            session_id(&with_header("../x"), &r),
            Err(ApiError::BadField { field, .. }) if field == CONVERSATION_ID_HEADER
        ));
    }

    #[test]
    fn a_request_that_names_no_call_gets_a_session_of_its_own() {
        let first = request(json!({"messages": [
            {"role": "system", "content": "be kind"},
            {"role": "user", "content": [{"type": "text", "text": "I want a booking"}]},
        ], "user_id": "u1"}));
        let a = session_id(&HeaderMap::new(), &first).unwrap();
        let b = session_id(&HeaderMap::new(), &first).unwrap();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("llm-"), "{a}");
        assert_eq!(first.messages[1].text(), "I want a booking");
    }
}
