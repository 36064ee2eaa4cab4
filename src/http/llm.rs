//! `POST /api/elevenlabs/llm/{businessId}/{locationId}/chat/completions`:
//! ElevenLabs' custom LLM. The request is an OpenAI chat-completions
//! request; the answer streams back as `chat.completion.chunk` server-sent
//! events while the agent runtime produces it, ending with `data: [DONE]`.
//! A disabled tenant's turn is answered the same way with the closing
//! sentence of [`disabled`] and an `end_call`, without running the agent.
//!
//! What the request carries reaches the agent: the system message (the
//! voice agent's prompt) with the caller's date and time zone appended, the
//! conversation before the caller's latest words, and ElevenLabs' system
//! tools `end_call` and `transfer_to_number` when the agent has them. A
//! turn that ends in a hand-off answers with the `tool_calls` ElevenLabs
//! runs (elevenlabs-docs `customization/custom-llm/overview.mdx`, "System
//! tools integration"). A retried request follows the turn already running
//! ([`super::turns`]); a turn that has said nothing after
//! [`HttpConfig::buffer_words_after`] gets buffer words.
//!
//! [`HttpConfig::buffer_words_after`]: super::state::HttpConfig::buffer_words_after

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::disabled::{self, TENANT_DISABLED};
use super::error::{ApiError, parse_json};
use super::state::{AppState, unix_now};
use super::turns::{Ending, Joined, SharedTurn, TurnKey, Update};
use super::webhook::VOICE;
use crate::actionlog::{Outcome, VoiceCall};
use crate::agent::{
    Answer, END_CALL, FALLBACK, Handoff, Message, PlatformTool, Role, TRANSFER_TO_NUMBER, Turn,
};
use crate::elevenlabs::model::CONVERSATION_ID_HEADER;
use crate::elevenlabs::spoken::{BUFFER_WORDS, TRANSFER_HOLD, TRANSFER_REFUSED, in_language};
use crate::ids::Id;
use crate::messaging::PhoneNumber;
use crate::tenant::TenantKey;

/// The parts of the chat-completions request the bridge reads.
#[derive(Debug, Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    /// Function tools offered to the model; ElevenLabs lists its system
    /// tools here.
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    elevenlabs_extra_body: Option<Map<String, Value>>,
}

/// One message, with whatever else it carries (tool calls, tool call ids)
/// kept for the digest of a retried request.
#[derive(Debug, Deserialize, Serialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
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

    /// Instructions rather than conversation (`developer` is the newer
    /// OpenAI name of `system`).
    fn instructs(&self) -> bool {
        matches!(self.role.as_str(), "system" | "developer")
    }
}

/// What the messages of a request say.
#[derive(Debug, PartialEq, Eq)]
struct Conversation {
    /// The system messages, joined.
    system: Option<String>,
    /// The user and assistant messages with text before `latest`.
    history: Vec<Message>,
    /// The caller's latest words: the last user message with text.
    latest: String,
}

impl Conversation {
    fn read(messages: &[ChatMessage]) -> Result<Conversation, ApiError> {
        let texts: Vec<String> = messages.iter().map(ChatMessage::text).collect();
        let last = messages
            .iter()
            .zip(&texts)
            .rposition(|(m, text)| m.role == "user" && !text.trim().is_empty())
            .ok_or_else(|| ApiError::field("messages", "has no user message with text"))?;
        let system: Vec<&str> = messages
            .iter()
            .zip(&texts)
            .filter(|(m, text)| m.instructs() && !text.trim().is_empty())
            .map(|(_, text)| text.as_str())
            .collect();
        let history = messages[..last]
            .iter()
            .zip(&texts)
            .filter(|(_, text)| !text.trim().is_empty())
            .filter_map(|(m, text)| {
                let role = match m.role.as_str() {
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    _ => return None,
                };
                Some(Message {
                    role,
                    text: text.clone(),
                })
            })
            .collect();
        Ok(Conversation {
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            history,
            latest: texts[last].clone(),
        })
    }
}

/// The digest of a request's conversation, the system messages left out:
/// ElevenLabs writes the current time into the prompt of an agent with a
/// `timezone` (`PromptAgentAPIModel.timezone` in its OpenAPI document), so
/// a retry a minute later may differ there and nowhere else.
fn conversation_digest(messages: &[ChatMessage]) -> [u8; 32] {
    let spoken: Vec<&ChatMessage> = messages.iter().filter(|m| !m.instructs()).collect();
    Sha256::digest(serde_json::to_vec(&spoken).unwrap_or_default()).into()
}

/// ElevenLabs' system tools this bridge can hand a call over to, as the
/// request describes them; other tools are not the agent's to call.
fn platform_tools(tools: &[Value]) -> Vec<PlatformTool> {
    tools
        .iter()
        .filter(|tool| {
            tool.get("type")
                .and_then(Value::as_str)
                .unwrap_or("function")
                == "function"
        })
        .filter_map(|tool| {
            let function = tool.get("function")?;
            let name = function.get("name")?.as_str()?;
            [END_CALL, TRANSFER_TO_NUMBER]
                .contains(&name)
                .then(|| PlatformTool {
                    name: name.to_owned(),
                    description: function
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    parameters: function
                        .get("parameters")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                })
        })
        .collect()
}

/// Keys of `elevenlabs_extra_body` that may name the caller's IANA time
/// zone, in order of trust. ElevenLabs documents no system variable for
/// it (only `system__time_utc`, elevenlabs-docs
/// `customization/dynamic-variables.mdx`) and the tenant item has none, so
/// it comes from whoever fills the extra body, else UTC.
const TIME_ZONE_KEYS: [&str; 3] = ["time_zone", "timezone", "system__timezone"];

/// The caller's time zone named in the extra body, if any names one that
/// exists; a bad one is logged and UTC used, the call goes on.
fn time_zone(extra: Option<&Map<String, Value>>) -> jiff::tz::TimeZone {
    let named = extra.and_then(|extra| {
        TIME_ZONE_KEYS
            .iter()
            .find_map(|key| extra.get(*key).map(|value| (*key, value)))
    });
    let Some((key, value)) = named else {
        return jiff::tz::TimeZone::UTC;
    };
    let zone = value
        .as_str()
        .ok_or_else(|| "is not a string".to_owned())
        .and_then(|name| {
            jiff::tz::TimeZone::get(name.trim())
                .map_err(|e| format!("is not an IANA time zone ({e})"))
        });
    zone.unwrap_or_else(|reason| {
        tracing::warn!(
            field = %format!("elevenlabs_extra_body.{key}"),
            %reason,
            "the caller's time zone is not known; the model gets the date in UTC"
        );
        jiff::tz::TimeZone::UTC
    })
}

/// The line that tells the model the caller's date, so that it can write
/// the `YYYY-MM-DD` dates the tools take.
fn today(now: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let local = now.to_zoned(zone.clone());
    let name = zone.iana_name().unwrap_or("UTC");
    format!(
        "Today is {} for the caller, time zone {name}. Dates for tools are written YYYY-MM-DD.",
        local.strftime("%Y-%m-%d (%A), %H:%M"),
    )
}

/// The turn's instructions: the system messages, then the date line.
fn instructions(system: Option<String>, date: String) -> String {
    match system {
        Some(system) => format!("{system}\n\n{date}"),
        None => date,
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

/// The session of a request that names no call: a fresh one for this
/// request alone, so that two callers never share an agent session (the
/// agent then remembers nothing between the turns of that call, and a
/// retry of the request cannot be told from a new turn).
fn fresh_session() -> Result<Id, ApiError> {
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
    let conversation = Conversation::read(&request.messages)?;
    let named = named_session(&headers, &request)?;
    let session = match &named {
        Some(session) => session.clone(),
        None => fresh_session()?,
    };
    let span = tracing::info_span!(
        "custom_llm",
        business_id = %key.business_id,
        location_id = %key.location_id,
        conversation = %session,
    );
    let tenant = state.tenant(&key).instrument(span.clone()).await?;
    state.claim_conversation(session.as_str(), &tenant.key)?;
    let reply = Reply::new(request.model.clone());
    let received = |disabled: bool| {
        let mut extra = Map::new();
        extra.insert("event".into(), json!("custom_llm_turn"));
        extra.insert(
            "messageLength".into(),
            json!(conversation.latest.chars().count()),
        );
        if disabled {
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
    };
    if !tenant.settings.enabled {
        received(true);
        // No agent runtime and no tool: the call is told, and that is all.
        let sentence = disabled::closing_sentence(&state, &tenant)
            .instrument(span.clone())
            .await;
        let turn = SharedTurn::new();
        turn.say(sentence.to_owned());
        // Then the call ends (`end_call` is configured on every agent),
        // rather than wait for words no agent will answer.
        let end = Handoff::EndCall {
            reason: disabled::END_REASON.to_owned(),
            message: None,
        };
        let ending = hand_off(
            &state,
            &key,
            &tenant.settings.agent_id,
            session.as_str(),
            end,
            &turn,
        )
        .instrument(span)
        .await;
        turn.finish(ending);
        return Ok(respond(turn, request.stream, reply, None).await);
    }
    let joined = match &named {
        Some(session) => state.turns.join(TurnKey {
            session: session.to_string(),
            conversation: conversation_digest(&request.messages),
        }),
        None => Joined::First(SharedTurn::new()),
    };
    let shared = match joined {
        Joined::Again(shared) => {
            state.metrics.custom_llm_retry_followed();
            span.in_scope(|| {
                tracing::info!("a retried request follows the turn already under way")
            });
            shared
        }
        Joined::First(shared) => {
            received(false);
            let date = today(
                jiff::Timestamp::now(),
                &time_zone(request.elevenlabs_extra_body.as_ref()),
            );
            let turn = Turn {
                session_id: session.to_string(),
                business_id: key.business_id.to_string(),
                location_id: key.location_id.to_string(),
                source: VOICE.into(),
                text: conversation.latest,
                bedrock: tenant.settings.bedrock.clone(),
                system: Some(instructions(conversation.system, date)),
                history: conversation.history,
                platform_tools: platform_tools(request.tools.as_deref().unwrap_or_default()),
            };
            // In a task of its own: the turn runs to its end even if every
            // request that follows it goes away, so that the tools it
            // started finish and are logged.
            tokio::spawn(
                run_turn(
                    state.clone(),
                    key.clone(),
                    tenant.settings.agent_id.clone(),
                    turn,
                    shared.clone(),
                )
                .instrument(span.clone()),
            );
            shared
        }
    };
    let buffer = state.config.buffer_words_after.map(|after| {
        let metrics = state.metrics.clone();
        let state = state.clone();
        let agent = tenant.settings.agent_id.clone();
        Buffer {
            after,
            metrics,
            language: Box::pin(async move { state.agent_language(&agent).await }),
        }
    });
    Ok(respond(shared, request.stream, reply, buffer)
        .instrument(span)
        .await)
}

/// Runs one turn to its end and writes what it says into `shared`.
async fn run_turn(
    state: Arc<AppState>,
    key: TenantKey,
    agent: Id,
    turn: Turn,
    shared: Arc<SharedTurn>,
) {
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let listen = async {
        while let Some(piece) = rx.recv().await {
            shared.say(piece);
        }
    };
    let answering = AssertUnwindSafe(state.runtime.answer(&turn, state.tools.as_ref(), Some(tx)))
        .catch_unwind();
    let (answer, ()) = tokio::join!(answering, listen);
    let answer = answer.unwrap_or_else(|_| {
        // Followers must hear an end, whatever happened to the runtime.
        tracing::error!("the agent runtime panicked; speaking the fallback");
        shared.say(format!(" {FALLBACK}"));
        Answer::default()
    });
    let ending = match answer.handoff {
        None => Ending::Stop,
        Some(handoff) => hand_off(&state, &key, &agent, &turn.session_id, handoff, &shared).await,
    };
    shared.finish(ending);
}

/// The ending of a turn whose agent hands the call over, logged as a
/// `voice_call` record. A transfer to a number that is not E.164 is not
/// made: the caller hears a sentence instead and the record says why.
async fn hand_off(
    state: &AppState,
    key: &TenantKey,
    agent: &Id,
    session: &str,
    handoff: Handoff,
    shared: &SharedTurn,
) -> Ending {
    let id = format!("call_{}", uuid::Uuid::new_v4().simple());
    let language = state.agent_language(agent).await;
    let language = language.as_deref();
    let mut extra = Map::new();
    extra.insert("event".into(), json!("handoff"));
    let log = |outcome: Outcome, extra: Map<String, Value>, number: Option<&str>| {
        let call = VoiceCall {
            conversation_id: session.to_owned(),
            call_duration_secs: None,
            extra,
        };
        state.log_call(key, outcome, call, number, None);
    };
    let sent = Outcome::Sent {
        external_id: Some(id.clone()),
    };
    // Argument names of elevenlabs-docs `snippets/end_call_custom_llm.mdx`
    // and `snippets/human_transfer_custom_llm.mdx`.
    match handoff {
        Handoff::EndCall { reason, message } => {
            let reason = if reason.trim().is_empty() {
                "the conversation is over".to_owned()
            } else {
                reason
            };
            extra.insert("handoff".into(), json!(END_CALL));
            extra.insert("reason".into(), json!(reason));
            log(sent, extra, None);
            let mut arguments = json!({"reason": reason});
            if let Some(message) = message {
                arguments["message"] = json!(message);
            }
            Ending::PlatformTool {
                id,
                name: END_CALL.into(),
                arguments: arguments.to_string(),
            }
        }
        Handoff::Transfer {
            number,
            reason,
            client_message,
            agent_message,
        } => {
            extra.insert("handoff".into(), json!(TRANSFER_TO_NUMBER));
            extra.insert("reason".into(), json!(reason));
            match PhoneNumber::parse("transfer_number", number.trim()) {
                Err(e) => {
                    tracing::warn!(error = %e, "the agent asked for a transfer that cannot be dialled");
                    extra.insert("transferNumber".into(), json!(clip(&number)));
                    log(Outcome::failed(e.to_string()), extra, None);
                    shared.say(format!(" {}", in_language(TRANSFER_REFUSED, language)));
                    Ending::Stop
                }
                Ok(number) => {
                    extra.insert("transferNumber".into(), json!(number.as_str()));
                    log(sent, extra, Some(number.as_str()));
                    let agent_message = agent_message.unwrap_or_else(|| {
                        if reason.trim().is_empty() {
                            "A caller asks to speak with someone.".to_owned()
                        } else {
                            format!("A caller is transferred: {reason}.")
                        }
                    });
                    let arguments = json!({
                        "reason": reason,
                        "transfer_number": number.as_str(),
                        "client_message": client_message
                            .unwrap_or_else(|| in_language(TRANSFER_HOLD, language).to_owned()),
                        "agent_message": agent_message,
                    });
                    Ending::PlatformTool {
                        id,
                        name: TRANSFER_TO_NUMBER.into(),
                        arguments: arguments.to_string(),
                    }
                }
            }
        }
    }
}

/// At most 40 characters of what a model wrote where a phone number
/// belongs, for the record.
fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Buffer words for one response: said after `after` if the turn has said
/// nothing by then, in the agent's language when `language` has answered.
struct Buffer {
    after: Duration,
    language: BoxFuture<'static, Option<String>>,
    metrics: super::metrics::HttpMetrics,
}

/// The answer to one request: the turn's words as server-sent events (or
/// one `chat.completion` when the request asks for no stream).
async fn respond(
    turn: Arc<SharedTurn>,
    stream: Option<bool>,
    reply: Reply,
    buffer: Option<Buffer>,
) -> Response {
    if stream == Some(false) {
        let (text, ending) = turn.finished().await;
        return reply.completion(text, ending);
    }
    let (events, rx) = mpsc::channel::<Event>(16);
    // The events are written by a task of the response's own; it stops
    // when the client goes away (the receiver is dropped with the body).
    tokio::spawn(speak(turn, reply, buffer, events).in_current_span());
    let events = stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok::<_, Infallible>(event), rx))
    });
    Sse::new(events).into_response()
}

/// Writes the events of one streamed answer: the role, the turn's words
/// (buffer words first when the turn is slow to start), the ending, and
/// `[DONE]`.
async fn speak(
    turn: Arc<SharedTurn>,
    reply: Reply,
    buffer: Option<Buffer>,
    events: mpsc::Sender<Event>,
) {
    if events
        .send(reply.chunk(json!({"role": "assistant", "content": ""}), None))
        .await
        .is_err()
    {
        return;
    }
    let (after, mut language, metrics) = match buffer {
        Some(buffer) => (Some(buffer.after), buffer.language, Some(buffer.metrics)),
        None => (None, std::future::pending().boxed(), None),
    };
    let mut armed = after.is_some();
    let mut known: Option<String> = None;
    let mut asked = false;
    let sleep = tokio::time::sleep(after.unwrap_or_default());
    tokio::pin!(sleep);
    let updates = turn.follow();
    tokio::pin!(updates);
    loop {
        let (out, last) = tokio::select! {
            update = updates.next() => match update {
                Some(Update::Text(piece)) => {
                    armed = false;
                    (vec![reply.words(&piece)], false)
                }
                Some(Update::Done(ending)) => (reply.ending(ending), true),
                None => return,
            },
            // The client went away while the turn was thinking.
            () = events.closed() => return,
            answer = &mut language, if !asked => {
                asked = true;
                known = answer;
                continue;
            }
            () = &mut sleep, if armed => {
                armed = false;
                if let Some(metrics) = &metrics {
                    metrics.buffer_words_said();
                }
                let words = in_language(BUFFER_WORDS, known.as_deref());
                (vec![reply.words(words)], false)
            }
        };
        for event in out {
            if events.send(event).await.is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// The frame of every chunk of one response.
struct Reply {
    id: String,
    model: String,
    created: i64,
    /// A chunk's JSON up to its `delta`, written once per response: every
    /// piece of the answer is then one escaped string between `head` and
    /// the finish reason, not a JSON tree built and written per piece.
    head: String,
}

impl Reply {
    fn new(model: Option<String>) -> Reply {
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let model = model.unwrap_or_else(|| "voice-operator".into());
        let created = unix_now();
        let head = format!(
            r#"{{"id":{},"object":"chat.completion.chunk","created":{created},"model":{},"choices":[{{"index":0,"delta":"#,
            quoted(&id),
            quoted(&model),
        );
        Reply {
            id,
            model,
            created,
            head,
        }
    }

    /// One `chat.completion.chunk` carrying `delta`.
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        self.framed(&delta.to_string(), finish)
    }

    /// A chunk with a piece of the answer.
    fn words(&self, piece: &str) -> Event {
        self.framed(&format!(r#"{{"content":{}}}"#, quoted(piece)), None)
    }

    fn framed(&self, delta: &str, finish: Option<&str>) -> Event {
        let finish = finish.map_or_else(|| "null".to_owned(), quoted);
        Event::default().data(format!(
            r#"{}{delta},"finish_reason":{finish}}}]}}"#,
            self.head
        ))
    }

    /// The last events: the finish reason (after the tool call in OpenAI's
    /// streaming shape when the turn hands the call over), then `[DONE]`.
    fn ending(&self, ending: Ending) -> Vec<Event> {
        let done = Event::default().data("[DONE]");
        match ending {
            Ending::Stop => vec![self.chunk(json!({}), Some("stop")), done],
            Ending::PlatformTool {
                id,
                name,
                arguments,
            } => {
                let call = json!({"index": 0, "id": id, "type": "function",
                                  "function": {"name": name, "arguments": arguments}});
                vec![
                    self.chunk(json!({"tool_calls": [call]}), None),
                    self.chunk(json!({}), Some("tool_calls")),
                    done,
                ]
            }
        }
    }

    /// The non-streaming answer: one `chat.completion`.
    fn completion(self, text: String, ending: Ending) -> Response {
        let (message, finish) = match ending {
            Ending::Stop => (json!({"role": "assistant", "content": text}), "stop"),
            Ending::PlatformTool {
                id,
                name,
                arguments,
            } => {
                let content = if text.is_empty() {
                    Value::Null
                } else {
                    Value::from(text)
                };
                let call = json!({"id": id, "type": "function",
                                  "function": {"name": name, "arguments": arguments}});
                (
                    json!({"role": "assistant", "content": content, "tool_calls": [call]}),
                    "tool_calls",
                )
            }
        };
        Json(json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }))
        .into_response()
    }
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

    fn named(headers: &HeaderMap, r: &ChatRequest) -> String {
        named_session(headers, r).unwrap().unwrap().to_string()
    }

    #[test]
    fn the_session_is_the_header_then_the_extra_body() {
        let r = request(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "elevenlabs_extra_body": {"call_sid": "CA1", "conversation_id": "conv_9"},
        }));
        assert_eq!(named(&with_header("conv_h1"), &r), "conv_h1");
        assert_eq!(named(&HeaderMap::new(), &r), "conv_9");
        let bad = request(json!({
            "messages": [], "elevenlabs_extra_body": {"conversation_id": "a/b"},
        }));
        assert!(matches!(
            named_session(&HeaderMap::new(), &bad),
            Err(ApiError::BadField { field, .. }) if field == "elevenlabs_extra_body.conversation_id"
        ));
        assert!(matches!(
            named_session(&with_header("../x"), &r),
            Err(ApiError::BadField { field, .. }) if field == CONVERSATION_ID_HEADER
        ));
    }

    #[test]
    fn a_request_that_names_no_call_gets_a_session_of_its_own() {
        let first = request(json!({"messages": [
            {"role": "system", "content": "be kind"},
            {"role": "user", "content": [{"type": "text", "text": "I want a booking"}]},
        ], "user_id": "u1"}));
        assert!(named_session(&HeaderMap::new(), &first).unwrap().is_none());
        let a = fresh_session().unwrap();
        let b = fresh_session().unwrap();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("llm-"), "{a}");
        assert_eq!(first.messages[1].text(), "I want a booking");
    }

    #[test]
    fn the_conversation_splits_into_instructions_history_and_the_latest_words() {
        let r = request(json!({"messages": [
            {"role": "system", "content": "You are the clinic's assistant."},
            {"role": "assistant", "content": "Hello, how can I help?"},
            {"role": "user", "content": "I want a booking"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "skip_turn", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "ok"},
            {"role": "assistant", "content": "For which day?"},
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Tomorrow at ten"}]},
            {"role": "user", "content": "  "},
        ]}));
        let said = Conversation::read(&r.messages).unwrap();
        assert_eq!(
            said.system.as_deref(),
            Some("You are the clinic's assistant.\n\nBe brief.")
        );
        assert_eq!(said.latest, "Tomorrow at ten");
        let history: Vec<(Role, &str)> = said
            .history
            .iter()
            .map(|m| (m.role, m.text.as_str()))
            .collect();
        assert_eq!(
            history,
            [
                (Role::Assistant, "Hello, how can I help?"),
                (Role::User, "I want a booking"),
                (Role::Assistant, "For which day?"),
            ]
        );
        let none = request(json!({"messages": [{"role": "system", "content": "x"}]}));
        assert!(matches!(
            Conversation::read(&none.messages),
            Err(ApiError::BadField { field, .. }) if field == "messages"
        ));
    }

    #[test]
    fn the_digest_ignores_the_system_message_and_nothing_else() {
        let digest = |system: &str, user: &str, extra: Value| {
            let mut messages = vec![
                json!({"role": "system", "content": system}),
                json!({"role": "user", "content": user}),
            ];
            messages[1]
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            conversation_digest(&request(json!({"messages": messages})).messages)
        };
        let base = digest("It is 10:00.", "Book me in", json!({}));
        assert_eq!(base, digest("It is 10:01.", "Book me in", json!({})));
        assert_ne!(base, digest("It is 10:00.", "Book me out", json!({})));
        assert_ne!(
            base,
            digest("It is 10:00.", "Book me in", json!({"name": "x"}))
        );
    }

    /// The `data:` of `events` as a client reads them from the stream.
    async fn sse_data(events: Vec<Event>) -> Vec<Value> {
        let events = stream::iter(events.into_iter().map(Ok::<_, Infallible>));
        let body = Sse::new(events).into_response().into_body();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn chunks_written_from_the_frame_are_openai_chunks() {
        let reply = Reply::new(Some("model \"x\"".into()));
        let piece = "He said \"ten\",\nthen: ünïcode \\ {}";
        let read = sse_data(vec![
            reply.chunk(json!({"role": "assistant", "content": ""}), None),
            reply.words(piece),
            reply.chunk(json!({}), Some("stop")),
        ])
        .await;
        let expected = |delta: Value, finish: Option<&str>| {
            json!({"id": reply.id, "object": "chat.completion.chunk", "created": reply.created,
                   "model": "model \"x\"",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        assert_eq!(
            read,
            [
                expected(json!({"role": "assistant", "content": ""}), None),
                expected(json!({"content": piece}), None),
                expected(json!({}), Some("stop")),
            ]
        );
    }

    #[test]
    fn only_end_call_and_transfer_to_number_are_taken_from_the_tools() {
        let tools = vec![
            json!({"type": "function", "function": {"name": "end_call", "description": "End it",
                "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}}),
            json!({"type": "function", "function": {"name": "skip_turn"}}),
            json!({"type": "function", "function": {"name": "transfer_to_number"}}),
            json!({"type": "retrieval", "function": {"name": "end_call"}}),
            json!("not a tool"),
            json!({"function": {"name": 7}}),
        ];
        let offered = platform_tools(&tools);
        let names: Vec<&str> = offered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, [END_CALL, TRANSFER_TO_NUMBER]);
        assert_eq!(offered[0].description, "End it");
        assert_eq!(offered[1].parameters["type"], json!("object"));
    }

    #[test]
    fn the_date_line_is_in_the_callers_time_zone_and_falls_back_to_utc() {
        let now: jiff::Timestamp = "2026-11-29T22:30:00Z".parse().unwrap();
        let extra = |value: Value| {
            let mut map = Map::new();
            map.insert("time_zone".into(), value);
            Some(map)
        };
        let bucharest = time_zone(extra(json!("Europe/Bucharest")).as_ref());
        assert_eq!(
            today(now, &bucharest),
            "Today is 2026-11-30 (Monday), 00:30 for the caller, time zone Europe/Bucharest. \
             Dates for tools are written YYYY-MM-DD."
        );
        for bad in [json!("Mars/Olympus"), json!(3), json!("")] {
            let zone = time_zone(extra(bad).as_ref());
            assert!(today(now, &zone).starts_with("Today is 2026-11-29 (Sunday), 22:30"));
            assert!(today(now, &zone).contains("time zone UTC"));
        }
        assert!(today(now, &time_zone(None)).contains("time zone UTC"));
        assert_eq!(instructions(None, "D.".into()), "D.");
        assert_eq!(instructions(Some("P.".into()), "D.".into()), "P.\n\nD.");
    }
}
