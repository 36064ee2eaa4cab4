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
//! The model is stateless, so the runtime keeps each session's past
//! exchanges (caller text and final answer, without the tool round trips)
//! in memory: at most 40 messages per session and 10 000 sessions, the least
//! recently used forgotten first. That memory belongs to one replica: turns
//! of one call served by different replicas see different histories, and a
//! restart forgets them all. Failed turns are not remembered, so the history
//! keeps alternating user and assistant messages, which some chat templates
//! require.

use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::tools::{ACTION_GROUP, catalog};
use super::{AgentRuntime, Answer, ToolCall, ToolOutput, ToolRunner, Turn, fall_back};

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
            max_rounds: 4,
            deadline: Duration::from_secs(8),
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
    ) -> Result<(), OpenAiError> {
        let mut messages = Vec::new();
        if let Some(prompt) = &self.config.system_prompt {
            messages.push(json!({"role": "system", "content": prompt}));
        }
        for past in self.history.recall(&turn.session_id) {
            messages.push(json!({"role": "user", "content": past.user}));
            messages.push(json!({"role": "assistant", "content": past.assistant}));
        }
        messages.push(json!({"role": "user", "content": turn.text}));
        for round in 1..=self.config.max_rounds {
            let reply = self.complete(&messages, stream, text).await?;
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
                return Ok(());
            }
            if round == self.config.max_rounds {
                // The results could never reach the model: do not act
                // (book, send) on a turn that ends in the fallback anyway.
                break;
            }
            messages.push(assistant_message(&reply.text, &calls));
            for call in calls {
                let content = match parameters(&call.arguments) {
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
                };
                messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
            }
        }
        Err(OpenAiError::TooManyRounds(self.config.max_rounds))
    }

    /// One streamed model call: text goes to `text` and `stream` as it
    /// arrives; the tool calls come back assembled.
    async fn complete(
        &self,
        messages: &[Value],
        stream: Option<&mpsc::Sender<String>>,
        text: &mut String,
    ) -> Result<Reply, OpenAiError> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "tools": self.tools,
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
                Ok(()) => {
                    self.history.record(
                        &turn.session_id,
                        Exchange {
                            user: turn.text.clone(),
                            assistant: text.clone(),
                        },
                    );
                    Answer {
                        text,
                        tools: called,
                        fallback: false,
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

/// Splits a `text/event-stream` body, fed in arbitrary pieces, into the
/// data of its events. Lines end in LF, CRLF or CR; lines starting with `:`
/// are comments; fields other than `data` are ignored.
#[derive(Debug, Default)]
struct SseDecoder {
    /// The line read so far, not yet ended.
    line: Vec<u8>,
    /// The `data` lines of the event being read, joined by LF.
    data: Option<String>,
    /// The last piece ended in CR: an LF starting the next one belongs to it.
    after_cr: bool,
}

impl SseDecoder {
    /// The data of each event that `bytes` completes.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, OpenAiError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if let Some(&first) = rest.first()
            && std::mem::take(&mut self.after_cr)
            && first == b'\n'
        {
            rest = &rest[1..];
        }
        while let Some(end) = rest.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            self.line.extend_from_slice(&rest[..end]);
            let line = std::mem::take(&mut self.line);
            events.extend(self.line_ended(&line));
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            rest = &rest[next..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() + self.data.as_ref().map_or(0, String::len) > MAX_EVENT_BYTES {
            return Err(OpenAiError::Stream(format!(
                "an event longer than {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(events)
    }

    /// The events the end of the body completes: the last one counts even
    /// without its blank line (some servers stop right after
    /// `data: [DONE]`).
    fn finish(&mut self) -> Result<Vec<String>, OpenAiError> {
        self.feed(b"\n\n")
    }

    fn line_ended(&mut self, line: &[u8]) -> Option<String> {
        if line.is_empty() {
            return self.data.take().filter(|data| !data.is_empty());
        }
        // A line is whole here, so no character is split; JSON must be
        // UTF-8 anyway, and a bad byte fails its parse or is spoken as U+FFFD.
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        None
    }
}

/// One `chat.completion.chunk`, the parts this runtime reads.
#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    /// OpenAI and most servers report a failure mid-stream as `error`.
    error: Option<Value>,
    /// vLLM sends `{"object": "error", "message": ...}`.
    object: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    /// Reasoning fields (`reasoning_content`) are not read: they must not
    /// be spoken.
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

fn parse_chunk(data: &str) -> Result<Chunk, OpenAiError> {
    serde_json::from_str(data).map_err(|e| OpenAiError::Malformed(format!("{e} in {}", cut(data))))
}

/// A tool call being assembled from its deltas.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

/// One streamed reply, assembled from its chunks.
#[derive(Debug, Default)]
struct Reply {
    text: String,
    /// By the `index` the deltas carry.
    calls: BTreeMap<usize, PendingCall>,
    finish_reason: Option<String>,
}

impl Reply {
    /// Takes in one chunk; returns the text it adds, to be streamed.
    fn absorb(&mut self, chunk: Chunk) -> Result<Option<String>, OpenAiError> {
        if let Some(error) = chunk.error {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(OpenAiError::Model(cut(&message)));
        }
        if chunk.object.as_deref() == Some("error") {
            return Err(OpenAiError::Model(cut(chunk
                .message
                .as_deref()
                .unwrap_or("(no message)"))));
        }
        let mut piece = None;
        // Only one choice is asked for; others would be alternatives.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(content) = choice.delta.content.filter(|c| !c.is_empty()) {
                self.text.push_str(&content);
                piece = Some(content);
            }
            for delta in choice.delta.tool_calls.unwrap_or_default() {
                self.add(delta);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(piece)
    }

    /// The id and name come once, in the first delta of a call (a repeat
    /// does not change them); the arguments come in pieces. A delta without
    /// `index` (older Ollama) starts a new call when it carries an id and
    /// continues the last one otherwise.
    fn add(&mut self, delta: ToolCallDelta) {
        let last = self.calls.last_key_value().map(|(index, _)| *index);
        let index = match (delta.index, &delta.id, last) {
            (Some(index), _, _) => index,
            (None, Some(_), Some(last)) => last + 1,
            (None, None, Some(last)) => last,
            (None, _, None) => 0,
        };
        let call = self.calls.entry(index).or_default();
        if let Some(id) = delta.id.filter(|id| !id.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        let function = delta.function.unwrap_or_default();
        if let Some(name) = function.name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name;
        }
        if let Some(arguments) = function.arguments {
            call.arguments.push_str(&arguments);
        }
    }

    /// The calls in index order; a server that sent no id gets one made
    /// up, unique in the turn, since each result must name its call.
    fn tool_calls(&self, round: usize) -> Vec<PendingCall> {
        self.calls
            .iter()
            .map(|(index, call)| {
                let mut call = call.clone();
                if call.id.is_empty() {
                    call.id = format!("call_{round}_{index}");
                }
                call
            })
            .collect()
    }
}

/// One answered turn, as the next turns of the session see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exchange {
    user: String,
    assistant: String,
}

/// Past exchanges per session, bounded per session and in sessions, the
/// least recently used session forgotten first.
struct Histories {
    max_exchanges: usize,
    max_sessions: usize,
    state: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Session>,
    /// Session ids by the tick of their last use, oldest first.
    by_use: BTreeMap<u64, String>,
    clock: u64,
}

struct Session {
    used: u64,
    exchanges: VecDeque<Exchange>,
}

impl Sessions {
    /// Marks `id` as just used.
    fn touch(&mut self, id: &str) -> Option<&mut Session> {
        let session = self.by_id.get_mut(id)?;
        self.clock += 1;
        self.by_use.remove(&session.used);
        self.by_use.insert(self.clock, id.to_owned());
        session.used = self.clock;
        Some(session)
    }
}

impl Histories {
    fn new(max_exchanges: usize, max_sessions: usize) -> Histories {
        Histories {
            max_exchanges,
            max_sessions,
            state: Mutex::new(Sessions::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // The maps stay consistent even if a holder panicked: every
        // mutation is a single insert or remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recall(&self, id: &str) -> Vec<Exchange> {
        self.lock()
            .touch(id)
            .map(|session| session.exchanges.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, id: &str, exchange: Exchange) {
        let mut sessions = self.lock();
        if sessions.touch(id).is_none() {
            if sessions.by_id.len() >= self.max_sessions
                && let Some((_, oldest)) = sessions.by_use.pop_first()
            {
                sessions.by_id.remove(&oldest);
            }
            sessions.clock += 1;
            let used = sessions.clock;
            sessions.by_use.insert(used, id.to_owned());
            sessions.by_id.insert(
                id.to_owned(),
                Session {
                    used,
                    exchanges: VecDeque::new(),
                },
            );
        }
        if let Some(session) = sessions.by_id.get_mut(id) {
            session.exchanges.push_back(exchange);
            while session.exchanges.len() > self.max_exchanges {
                session.exchanges.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(pieces: &[&[u8]]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(decoder.feed(piece).unwrap());
        }
        events.extend(decoder.finish().unwrap());
        events
    }

    #[test]
    fn sse_events_are_split_on_blank_lines_whatever_the_line_ends() {
        let body = b"data: {\"a\":1}\n\ndata: two\r\n\r\ndata: three\r\rdata: [DONE]\n\n";
        assert_eq!(decode(&[body]), ["{\"a\":1}", "two", "three", "[DONE]"]);
    }

    #[test]
    fn comments_other_fields_and_empty_events_are_skipped() {
        let body = b": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\ndata:\n\n";
        assert_eq!(decode(&[body]), ["x"]);
    }

    #[test]
    fn data_lines_of_one_event_are_joined_and_the_space_after_the_colon_is_optional() {
        assert_eq!(decode(&[b"data:a\ndata:  b\n\n"]), ["a\n b"]);
    }

    #[test]
    fn lines_split_across_pieces_are_joined_including_a_split_crlf() {
        assert_eq!(
            decode(&[
                b"da",
                b"ta: {\"x\":",
                b"\"y\"}\r",
                b"\n\r",
                b"\ndata: z\r",
                b"\r"
            ]),
            ["{\"x\":\"y\"}", "z"]
        );
    }

    #[test]
    fn the_last_event_counts_without_its_blank_line() {
        assert_eq!(decode(&[b"data: a\n\ndata: [DONE]"]), ["a", "[DONE]"]);
        assert_eq!(decode(&[b"data: [DONE]\n"]), ["[DONE]"]);
    }

    #[test]
    fn an_endless_line_is_an_error_not_an_ever_growing_buffer() {
        let mut decoder = SseDecoder::default();
        let piece = vec![b'x'; 64 * 1024];
        let failed = (0..32).any(|_| decoder.feed(&piece).is_err());
        assert!(failed);
    }

    proptest! {
        #[test]
        fn any_split_of_a_body_gives_the_same_events(
            events in prop::collection::vec("[a-z{}\":, \n]{1,20}", 1..8),
            ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            // Repeated cuts make empty pieces, which must change nothing.
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let body: String = events
                .iter()
                .map(|data| {
                    let lines: String =
                        data.split('\n').map(|line| format!("data: {line}{ending}")).collect();
                    format!("{lines}{ending}")
                })
                .collect();
            let bytes = body.as_bytes();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for end in at {
                pieces.push(&bytes[start..end]);
                start = end;
            }
            pieces.push(&bytes[start..]);
            prop_assert_eq!(decode(&pieces), events);
        }
    }

    fn assemble(chunks: &[Value]) -> Reply {
        let mut reply = Reply::default();
        for chunk in chunks {
            reply
                .absorb(parse_chunk(&chunk.to_string()).unwrap())
                .unwrap();
        }
        reply
    }

    fn delta(delta: Value) -> Value {
        json!({"object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    }

    #[test]
    fn tool_calls_are_assembled_by_index_from_interleaved_deltas() {
        let reply = assemble(&[
            delta(json!({"role": "assistant", "content": null})),
            delta(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "query_app_server", "arguments": ""}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "send_external_message", "arguments": "{\"chan"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"date\": \"2026-"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "nel\": \"sms\"}"}}]}),
            ),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "11-25\"}"}}]})),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ]);
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            reply.tool_calls(1),
            [
                PendingCall {
                    id: "call_a".into(),
                    name: "query_app_server".into(),
                    arguments: "{\"date\": \"2026-11-25\"}".into()
                },
                PendingCall {
                    id: "call_b".into(),
                    name: "send_external_message".into(),
                    arguments: "{\"channel\": \"sms\"}".into()
                },
            ]
        );
    }

    #[test]
    fn a_repeated_id_or_name_is_not_doubled_and_a_missing_id_is_made_up() {
        let reply = assemble(&[
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"name": "create_appointment", "arguments": "{}"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"name": "create_appointment"}}]}),
            ),
            delta(json!({"tool_calls": [{"index": 2, "id": "x", "function": {"name": "n"}}]})),
            delta(json!({"tool_calls": [{"index": 2, "id": "x"}]})),
        ]);
        let calls = reply.tool_calls(3);
        assert_eq!(calls[0].id, "call_3_0");
        assert_eq!(calls[0].name, "create_appointment");
        assert_eq!((calls[1].id.as_str(), calls[1].name.as_str()), ("x", "n"));
    }

    #[test]
    fn deltas_without_index_start_a_call_with_each_new_id() {
        let reply = assemble(&[
            delta(
                json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"k\":"}}]}),
            ),
            delta(json!({"tool_calls": [{"function": {"arguments": "\"v\"}"}}]})),
            delta(
                json!({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            ),
        ]);
        let calls = reply.tool_calls(1);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, "{\"k\":\"v\"}");
        assert_eq!(calls[1].name, "g");
    }

    #[test]
    fn text_pieces_are_returned_for_streaming_and_other_choices_ignored() {
        let mut reply = Reply::default();
        let piece = |reply: &mut Reply, chunk: Value| {
            reply
                .absorb(serde_json::from_value(chunk).unwrap())
                .unwrap()
        };
        assert_eq!(
            piece(&mut reply, delta(json!({"content": "Bună "}))),
            Some("Bună ".into())
        );
        assert_eq!(piece(&mut reply, delta(json!({"content": ""}))), None);
        assert_eq!(
            piece(&mut reply, delta(json!({"reasoning_content": "hmm"}))),
            None
        );
        assert_eq!(
            piece(
                &mut reply,
                json!({"choices": [{"index": 1, "delta": {"content": "alt"}}]})
            ),
            None
        );
        assert_eq!(
            piece(
                &mut reply,
                json!({"choices": [], "usage": {"total_tokens": 9}})
            ),
            None
        );
        assert_eq!(reply.text, "Bună ");
    }

    #[test]
    fn errors_inside_the_stream_are_reported() {
        for chunk in [
            json!({"error": {"message": "model overloaded", "type": "server_error"}}),
            json!({"object": "error", "message": "model overloaded", "code": 500}),
        ] {
            let err = Reply::default()
                .absorb(serde_json::from_value(chunk).unwrap())
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "the model server reported an error: model overloaded"
            );
        }
        assert!(matches!(
            parse_chunk("{not json"),
            Err(OpenAiError::Malformed(_))
        ));
    }

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

    fn exchange(n: usize) -> Exchange {
        Exchange {
            user: format!("q{n}"),
            assistant: format!("a{n}"),
        }
    }

    #[test]
    fn a_session_keeps_only_its_latest_exchanges() {
        let history = Histories::new(2, 10);
        for n in 0..5 {
            history.record("s", exchange(n));
        }
        assert_eq!(history.recall("s"), [exchange(3), exchange(4)]);
        assert_eq!(history.recall("other"), []);
    }

    #[test]
    fn the_least_recently_used_session_is_forgotten_first() {
        let history = Histories::new(2, 2);
        history.record("a", exchange(1));
        history.record("b", exchange(2));
        // Reading "a" makes "b" the oldest.
        assert_eq!(history.recall("a"), [exchange(1)]);
        history.record("c", exchange(3));
        assert_eq!(history.recall("b"), []);
        assert_eq!(history.recall("a"), [exchange(1)]);
        assert_eq!(history.recall("c"), [exchange(3)]);
        let sessions = history.lock();
        assert_eq!(sessions.by_id.len(), 2);
        assert_eq!(sessions.by_use.len(), 2);
    }
}
