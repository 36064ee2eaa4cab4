//! An OpenAI-compatible chat-completions endpoint as the agent runtime, for
//! self-hosted models (vLLM, Ollama, llama.cpp server, ...). The server must
//! support tool calling while streaming (vLLM: `--enable-auto-tool-choice`
//! with a `--tool-call-parser`; llama.cpp: `--jinja`).
//!
//! Each turn POSTs `{base_url}/chat/completions` with `stream: true` and the
//! tool catalog, reads the server-sent events as they arrive (text goes to
//! the caller at once), runs the tool calls the model assembles and asks
//! again with their results. Bounded in model calls and in time; any failure
//! becomes the spoken fallback. When text was already streamed before the
//! failure, the stream sees that text followed by `" "` and the fallback
//! sentence, and the returned [`Answer`] holds the fallback alone.
//!
//! The first message is one system message: the configured system prompt,
//! then the turn's own instructions ([`Turn::system`], the voice agent's
//! prompt and the caller's date), joined, since some chat templates take a
//! single system message and only in first place.
//!
//! The history, by one rule: **the voice platform's transcript is the truth
//! of the conversation.** A turn that carries its history ([`Turn::history`],
//! the messages ElevenLabs sends on the custom-LLM route) is answered with
//! that history alone, the last 40 messages of it. Only a turn without one
//! (the seed webhook sends the latest words alone) is answered with the
//! runtime's own memory of the session: its past exchanges (caller text and
//! final answer, without the tool round trips), at most 40 messages per
//! session and 10 000 sessions, the least recently used forgotten first.
//! That memory belongs to one replica: turns of one call served by
//! different replicas see different histories, and a restart forgets them
//! all. Failed turns are not remembered, so the history keeps alternating
//! user and assistant messages, which some chat templates require.
//!
//! The platform's own tools the turn offers ([`Turn::platform_tools`]:
//! `end_call`, `transfer_to_number`) are offered to the model next to the
//! tool catalog, as the request described them. A reply that asks for one
//! of them alone ends the turn with a [`Handoff`] the voice platform carries
//! out; asked for together with other tools, it is refused with a tool
//! result that says to ask for it alone, once the others have answered.

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

mod chunks;
mod history;
mod sse;

use self::chunks::{PendingCall, Reply, parse_chunk};
use self::history::{Exchange, Histories};
use self::sse::SseDecoder;
use super::tools::{ACTION_GROUP, catalog};
use super::{
    AgentRuntime, Answer, DEFAULT_DEADLINE, DEFAULT_MAX_ROUNDS, END_CALL, Handoff, Role,
    TRANSFER_TO_NUMBER, ToolCall, ToolOutput, ToolRunner, Turn, fall_back,
};

/// Messages of past exchanges sent along with a turn, per session.
const HISTORY_MESSAGES: usize = 40;
/// Sessions remembered per replica.
const HISTORY_SESSIONS: usize = 10_000;
/// An SSE event larger than this ends the turn: no chunk of a chat answer
/// comes near it, and the buffer must not grow without bound.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// Server error messages longer than this are cut in logs.
const MAX_MESSAGE_CHARS: usize = 300;

/// Which endpoint and model answer, and the limits of one turn.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API root, such as `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The `model` of each request.
    pub model: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<SecretString>,
    /// The first message of every request, when set.
    pub system_prompt: Option<String>,
    /// Model calls allowed in one turn, the first included (default 4).
    pub max_rounds: usize,
    /// Longest a whole turn may take, tools included (default 8 s; a caller
    /// is waiting).
    pub deadline: Duration,
    /// Longest one model call may take, body included (default 8 s).
    pub request_timeout: Duration,
}

impl OpenAiConfig {
    /// Defaults for `model` at `base_url`, without key or system prompt.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            system_prompt: None,
            max_rounds: DEFAULT_MAX_ROUNDS as usize,
            deadline: DEFAULT_DEADLINE,
            request_timeout: Duration::from_secs(8),
        }
    }
}

/// Why a turn got the fallback instead of an answer.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    #[error("cannot reach the model server: {0}")]
    Request(String),
    #[error("the model server answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the response stream failed: {0}")]
    Stream(String),
    #[error("malformed reply: {0}")]
    Malformed(String),
    #[error("the model server reported an error: {0}")]
    Model(String),
    #[error("no answer within {0:?}")]
    Deadline(Duration),
    #[error("still calling tools after {0} model calls")]
    TooManyRounds(usize),
    #[error("the model said nothing and called no tool")]
    Empty,
}

/// Answers turns with an OpenAI-compatible chat-completions server.
pub struct OpenAiRuntime {
    http: reqwest::Client,
    config: OpenAiConfig,
    url: String,
    /// The catalog as OpenAI function tools, built once.
    tools: Value,
    history: Histories,
}

impl OpenAiRuntime {
    /// A runtime that sends its requests with `http`.
    pub fn new(http: reqwest::Client, config: OpenAiConfig) -> OpenAiRuntime {
        let url = format!(
            "{}/chat/completions",
            config.base_url.trim().trim_end_matches('/')
        );
        let tools = catalog()
            .into_iter()
            .map(|spec| {
                json!({"type": "function", "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.parameters,
                }})
            })
            .collect();
        OpenAiRuntime {
            http,
            config,
            url,
            tools,
            history: Histories::new(HISTORY_MESSAGES / 2, HISTORY_SESSIONS),
        }
    }

    async fn run(
        &self,
        turn: &Turn,
        tools: &dyn ToolRunner,
        stream: Option<&mpsc::Sender<String>>,
        text: &mut String,
        called: &mut Vec<ToolCall>,
    ) -> Result<Option<Handoff>, OpenAiError> {
        let mut messages = self.opening(turn);
        let offered = self.offered_tools(turn);
        for round in 1..=self.config.max_rounds {
            let reply = self.complete(&messages, &offered, stream, text).await?;
            let calls = reply.tool_calls(round);
            if calls.is_empty() {
                if reply.finish_reason.as_deref() == Some("tool_calls") {
                    return Err(OpenAiError::Malformed(
                        "finish_reason tool_calls without a tool call".into(),
                    ));
                }
                if text.trim().is_empty() {
                    return Err(OpenAiError::Empty);
                }
                return Ok(None);
            }
            if let [call] = calls.as_slice()
                && turn.platform_tool(&call.name).is_some()
            {
                match handoff(&call.name, &call.arguments) {
                    Ok(handoff) => return Ok(Some(handoff)),
                    Err(problem) => {
                        // The model hears what was wrong and may ask again.
                        messages.push(assistant_message(&reply.text, &calls));
                        messages.push(json!({"role": "tool", "tool_call_id": call.id,
                            "content": format!("error: {problem}; nothing was done")}));
                        continue;
                    }
                }
            }
            if round == self.config.max_rounds {
                // The results could never reach the model: do not act
                // (book, send) on a turn that ends in the fallback anyway.
                break;
            }
            messages.push(assistant_message(&reply.text, &calls));
            for call in calls {
                let content = if turn.platform_tool(&call.name).is_some() {
                    format!(
                        "error: {} was not done: ask for it alone, once the other tools have answered",
                        call.name
                    )
                } else {
                    match parameters(&call.arguments) {
                        Err(problem) => format!("error: {problem}; the tool was not run"),
                        Ok(parameters) => {
                            let call = ToolCall {
                                action_group: ACTION_GROUP.into(),
                                function: call.name.clone(),
                                parameters,
                            };
                            // Recorded before it runs: a tool cut off by the
                            // deadline may already have acted.
                            called.push(call.clone());
                            tool_content(tools.run(turn, &call).await)
                        }
                    }
                };
                messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
            }
        }
        Err(OpenAiError::TooManyRounds(self.config.max_rounds))
    }

    /// The messages before the first model call: the system message, the
    /// history (the turn's own, else this replica's memory of the session)
    /// and the caller's words.
    fn opening(&self, turn: &Turn) -> Vec<Value> {
        let mut messages = Vec::new();
        let system: Vec<&str> = [self.config.system_prompt.as_deref(), turn.system.as_deref()]
            .into_iter()
            .flatten()
            .filter(|text| !text.trim().is_empty())
            .collect();
        if !system.is_empty() {
            messages.push(json!({"role": "system", "content": system.join("\n\n")}));
        }
        if turn.history.is_empty() {
            for past in self.history.recall(&turn.session_id) {
                messages.push(json!({"role": "user", "content": past.user}));
                messages.push(json!({"role": "assistant", "content": past.assistant}));
            }
        } else {
            let skip = turn.history.len().saturating_sub(HISTORY_MESSAGES);
            for past in &turn.history[skip..] {
                let role = match past.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                messages.push(json!({"role": role, "content": past.text}));
            }
        }
        messages.push(json!({"role": "user", "content": turn.text}));
        messages
    }

    /// The tool catalog, and the platform's tools when the turn offers any.
    fn offered_tools(&self, turn: &Turn) -> Value {
        if turn.platform_tools.is_empty() {
            return self.tools.clone();
        }
        let mut tools = self.tools.as_array().cloned().unwrap_or_default();
        tools.extend(turn.platform_tools.iter().map(|tool| {
            json!({"type": "function", "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            }})
        }));
        Value::Array(tools)
    }

    /// One streamed model call: text goes to `text` and `stream` as it
    /// arrives; the tool calls come back assembled.
    async fn complete(
        &self,
        messages: &[Value],
        tools: &Value,
        stream: Option<&mpsc::Sender<String>>,
        text: &mut String,
    ) -> Result<Reply, OpenAiError> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "tools": tools,
            "tool_choice": "auto",
        });
        let mut request = self
            .http
            .post(&self.url)
            .timeout(self.config.request_timeout)
            .json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| OpenAiError::Request(crate::telemetry::error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(OpenAiError::Status {
                status: status.as_u16(),
                message: server_message(&body, self.config.api_key.as_ref()),
            });
        }
        let mut events = SseDecoder::default();
        let mut reply = Reply::default();
        loop {
            let received = response
                .chunk()
                .await
                .map_err(|e| OpenAiError::Stream(crate::telemetry::error_chain(&e)))?;
            let ended = received.is_none();
            let complete = match received {
                Some(bytes) => events.feed(&bytes)?,
                None => events.finish()?,
            };
            for data in complete {
                if data == "[DONE]" {
                    return Ok(reply);
                }
                if let Some(piece) = reply.absorb(parse_chunk(&data)?)? {
                    text.push_str(&piece);
                    if let Some(tx) = stream {
                        let _ = tx.send(piece).await;
                    }
                }
            }
            if ended {
                break;
            }
        }
        // Without [DONE], only a finish_reason tells a complete reply from
        // a connection that was cut.
        match reply.finish_reason {
            Some(_) => Ok(reply),
            None => Err(OpenAiError::Stream(
                "the stream ended before the reply was finished".into(),
            )),
        }
    }
}

impl AgentRuntime for OpenAiRuntime {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        tools: &'a dyn ToolRunner,
        stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let deadline = Instant::now() + self.config.deadline;
            let mut text = String::new();
            let mut called = Vec::new();
            // One deadline over everything, stream sends and tools included,
            // so that no single await can hold the caller.
            let outcome = timeout_at(
                deadline,
                self.run(turn, tools, stream.as_ref(), &mut text, &mut called),
            )
            .await
            .unwrap_or(Err(OpenAiError::Deadline(self.config.deadline)));
            match outcome {
                Ok(handoff) => {
                    if !text.trim().is_empty() {
                        self.history.record(
                            &turn.session_id,
                            Exchange {
                                user: turn.text.clone(),
                                assistant: text.clone(),
                            },
                        );
                    }
                    Answer {
                        text,
                        tools: called,
                        fallback: false,
                        handoff,
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        model = %self.config.model,
                        session = %turn.session_id,
                        business_id = %turn.business_id,
                        location_id = %turn.location_id,
                        "OpenAI-compatible model gave no answer; speaking the fallback"
                    );
                    fall_back(stream.as_ref(), &text, called).await
                }
            }
        })
    }
}

/// The assistant turn that asked for `calls`, as the next request must
/// repeat it.
fn assistant_message(text: &str, calls: &[PendingCall]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|call| {
            // vLLM parses the arguments of earlier calls into objects for
            // the chat template; anything else would turn the next request
            // into a 400. The tool result says what was wrong instead.
            let arguments = match parameters(&call.arguments) {
                Ok(_) if !call.arguments.trim().is_empty() => call.arguments.clone(),
                _ => "{}".to_owned(),
            };
            json!({"id": call.id, "type": "function",
                   "function": {"name": call.name, "arguments": arguments}})
        })
        .collect();
    let content = if text.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    };
    json!({"role": "assistant", "content": content, "tool_calls": calls})
}

/// What the model reads of a tool's output. Chat completions have no
/// failure flag for tool results, so a failure is said in words.
fn tool_content(output: ToolOutput) -> String {
    if output.ok {
        output.body
    } else {
        format!("error: the tool failed: {}", output.body)
    }
}

/// A tool call's JSON arguments as the string parameters tools take:
/// strings as they are, other values as their JSON text. A `null` is a
/// parameter the model left out; empty arguments are no parameters.
fn parameters(arguments: &str) -> Result<BTreeMap<String, String>, String> {
    let arguments = arguments.trim();
    if arguments.is_empty() {
        return Ok(BTreeMap::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(fields)) => Ok(fields
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, value)| match value {
                Value::String(s) => (name, s),
                other => (name, other.to_string()),
            })
            .collect()),
        Ok(other) => Err(format!(
            "the arguments must be a JSON object, not {}",
            cut(&other.to_string())
        )),
        Err(e) => Err(format!("the arguments are not valid JSON ({e})")),
    }
}

/// The hand-off a call of platform tool `name` asks for, from its JSON
/// arguments (field names of elevenlabs-docs
/// `snippets/end_call_custom_llm.mdx` and `human_transfer_custom_llm.mdx`).
fn handoff(name: &str, arguments: &str) -> Result<Handoff, String> {
    let fields = parameters(arguments)?;
    let field = |key: &str| {
        fields
            .get(key)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    match name {
        END_CALL => Ok(Handoff::EndCall {
            reason: field("reason").unwrap_or_default(),
            message: field("message"),
        }),
        TRANSFER_TO_NUMBER => Ok(Handoff::Transfer {
            number: field("transfer_number")
                .ok_or("transfer_to_number needs transfer_number, one of the numbers its description names")?,
            reason: field("reason").unwrap_or_default(),
            client_message: field("client_message"),
            agent_message: field("agent_message"),
        }),
        other => Err(format!("{other} is not a tool this runtime can hand over")),
    }
}

/// The message of an error reply, cut short, without the API key should a
/// server echo it.
fn server_message(body: &[u8], key: Option<&SecretString>) -> String {
    let text = String::from_utf8_lossy(body);
    let message = match serde_json::from_slice::<Value>(body) {
        // OpenAI: {"error": {"message"}}; vLLM: {"message"}; some: {"error": "..."}.
        Ok(value) => value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .or_else(|| value.get("error"))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
            .unwrap_or_else(|| text.trim().to_owned()),
        Err(_) => text.trim().to_owned(),
    };
    let message = match key.map(ExposeSecret::expose_secret) {
        Some(key) if !key.is_empty() => message.replace(key, "[REDACTED]"),
        _ => message,
    };
    if message.is_empty() {
        "(empty body)".into()
    } else {
        cut(&message)
    }
}

fn cut(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn arguments_flatten_to_strings_and_non_objects_are_refused() {
        let flat = parameters(
            r#"{"date": "2026-11-25", "count": 2, "ok": true, "x": {"a": [1]}, "gone": null}"#,
        )
        .unwrap();
        assert_eq!(
            flat,
            BTreeMap::from([
                ("count".into(), "2".into()),
                ("date".into(), "2026-11-25".into()),
                ("ok".into(), "true".into()),
                ("x".into(), "{\"a\":[1]}".into()),
            ])
        );
        assert_eq!(parameters("  "), Ok(BTreeMap::new()));
        assert!(
            parameters("[1, 2]")
                .unwrap_err()
                .contains("must be a JSON object")
        );
        assert!(
            parameters("{\"date\": ")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn the_assistant_message_repeats_only_arguments_that_are_objects() {
        let call = |arguments: &str| PendingCall {
            id: "c".into(),
            name: "f".into(),
            arguments: arguments.into(),
        };
        let message = assistant_message("", &[call("{\"a\":\"b\"}"), call("nope"), call("")]);
        assert_eq!(message["content"], Value::Null);
        let arguments: Vec<&str> = message["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(arguments, ["{\"a\":\"b\"}", "{}", "{}"]);
    }

    #[test]
    fn failed_tools_are_reported_as_errors() {
        let failed = ToolOutput {
            body: "app server down".into(),
            ok: false,
        };
        assert_eq!(
            tool_content(failed),
            "error: the tool failed: app server down"
        );
        let fine = ToolOutput {
            body: "{}".into(),
            ok: true,
        };
        assert_eq!(tool_content(fine), "{}");
    }

    #[test]
    fn server_messages_are_found_cut_and_never_show_the_key() {
        let key = SecretString::from("sk-local-secret");
        assert_eq!(
            server_message(
                br#"{"error": {"message": "Incorrect API key sk-local-secret"}}"#,
                Some(&key)
            ),
            "Incorrect API key [REDACTED]"
        );
        assert_eq!(
            server_message(br#"{"object":"error","message":"too long"}"#, None),
            "too long"
        );
        assert_eq!(
            server_message(br#"{"error":"Unauthorized"}"#, None),
            "Unauthorized"
        );
        assert_eq!(server_message(b"", None), "(empty body)");
        assert_eq!(
            server_message("x".repeat(1000).as_bytes(), None)
                .chars()
                .count(),
            MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let mut config = OpenAiConfig::new("http://127.0.0.1:8000/v1", "m");
        config.api_key = Some(SecretString::from("sk-local-secret"));
        assert!(!format!("{config:?}").contains("sk-local-secret"));
    }
}
