//! A local Bedrock Agent Runtime for the real SDK client: it answers
//! `InvokeAgent` from a script, with AWS event-stream frames written by
//! aws-smithy-eventstream, and keeps the contract AWS documents whatever
//! the script says:
//!
//! - Results must answer the `returnControl` the session is waiting on:
//!   the same `invocationId`, and one result per invocation input, of its
//!   kind (`functionResult` for a function, `apiResult` for an API
//!   operation), with its action group and function or API path
//!   ("Return control to the agent developer": "You must use the same
//!   invocationId and actionGroup"). Otherwise: 400 ValidationException.
//! - A result with `responseState: FAILURE` fails the request with a
//!   `dependencyFailedException` (FunctionResult / ApiResult: "When this
//!   state is FAILURE, the request would fail with dependency failure
//!   exception"); we send it as an exception event of the stream, where
//!   an agent's orchestration failures surface. REPROMPT (or no state)
//!   hands the result to the model, which answers.
//! - With `streamingConfigurations.streamFinalResponse` the final answer
//!   comes in chunks of `applyGuardrailInterval` characters (50 unless
//!   given; at least 1), else in one chunk (StreamingConfigurations).
//! - Trace events are sent only with `enableTrace`.
//! - `endSession` ends the session: an empty stream, nothing pending.
//!
//! The replies come from a script (one reply per request, in order) or
//! from an agent function that decides each reply from the request, for
//! many sessions at once (the `voice_latency` bench). A paced reply
//! ([`Reply::Paced`]) writes its answer as a model does: the first chunk
//! after a delay, then one chunk per interval; unstreamed, the whole answer
//! comes when the last chunk would have.

use futures::stream;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_bedrockagentruntime::config::retry::RetryConfig;
use aws_sdk_bedrockagentruntime::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// What the stand-in agent does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The final answer, streamed or not as the request asks.
    Answer(String),
    /// The final answer of a model that read the tool results the request
    /// carries: `prefix` and then each result's body, in order.
    Reads(&'static str),
    /// Control handed back: a `ReturnControlPayload`
    /// (`invocationId`, `invocationInputs`).
    ReturnControl(Value),
    /// These frames as they are (trace frames only with `enableTrace`).
    Frames(Vec<Frame>),
    /// An HTTP error before any event: status and error type.
    Error(u16, &'static str),
    /// The final answer as a model writes it: its first chunk `first`
    /// after the request came, each next one `every` later; unstreamed,
    /// all of it at the time of the last chunk.
    Paced {
        text: String,
        first: Duration,
        every: Duration,
    },
}

/// One event of a scripted stream.
#[derive(Debug, Clone)]
pub enum Frame {
    Chunk(String),
    /// An exception event: its type and message.
    Exception(&'static str, &'static str),
    /// A trace event with this `trace` union (for example
    /// `{"failureTrace": {...}}`).
    Trace(Value),
    /// The first half of a chunk frame, then the connection ends.
    Cut,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub body: Value,
}

impl Seen {
    /// The session id in the path.
    pub fn session(&self) -> &str {
        self.path.split('/').nth(6).unwrap_or_default()
    }
}

/// Decides the reply to a request from what it carries.
pub type Agent = dyn Fn(&Seen) -> Reply + Send + Sync;

/// Where the replies come from.
enum Source {
    /// One reply per request, in order.
    Script(Mutex<VecDeque<Reply>>),
    /// Each reply decided from its request.
    Agent(Box<Agent>),
}

struct Inner {
    source: Source,
    seen: Mutex<Vec<Seen>>,
    /// The `returnControl` each session waits on results for.
    pending: Mutex<HashMap<String, Value>>,
    /// When each chunk of a final answer was handed to the connection.
    chunks: Mutex<Vec<Instant>>,
    /// Held before the last chunk of the next streamed answer.
    hold: Mutex<Option<oneshot::Receiver<()>>>,
}

/// A running stand-in.
#[derive(Clone)]
pub struct FakeBedrock {
    pub url: String,
    inner: Arc<Inner>,
}

/// How long a held last chunk waits at most for its release: a runtime
/// that does not stream would otherwise hang the test.
const HOLD_LIMIT: Duration = Duration::from_secs(2);

impl FakeBedrock {
    /// Serves `script` on 127.0.0.1:0; past its end every request gets 500.
    pub async fn start(script: Vec<Reply>) -> FakeBedrock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        FakeBedrock::serve(listener, Source::Script(Mutex::new(script.into())))
    }

    /// Serves on `listener` an agent that decides each reply from its
    /// request.
    pub fn agent(
        listener: tokio::net::TcpListener,
        agent: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> FakeBedrock {
        FakeBedrock::serve(listener, Source::Agent(Box::new(agent)))
    }

    fn serve(listener: tokio::net::TcpListener, source: Source) -> FakeBedrock {
        let inner = Arc::new(Inner {
            source,
            seen: Mutex::default(),
            pending: Mutex::default(),
            chunks: Mutex::default(),
            hold: Mutex::default(),
        });
        let app = Router::new().fallback(invoke).with_state(inner.clone());
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Each event frame goes out when written, as from AWS's endpoint:
        // with Nagle's algorithm a small frame after another waits for the
        // client's delayed ACK (40 ms on Linux).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeBedrock { url, inner }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// When each chunk of a final answer was produced, in order.
    pub fn chunk_times(&self) -> Vec<Instant> {
        self.inner.chunks.lock().unwrap().clone()
    }

    /// Holds back the last chunk of the next streamed answer until the
    /// returned sender fires (or [`HOLD_LIMIT`] passes).
    pub fn hold_last_chunk(&self) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        *self.inner.hold.lock().unwrap() = Some(rx);
        tx
    }

    /// An SDK client for this stand-in, with retries off.
    pub fn client(&self) -> aws_sdk_bedrockagentruntime::Client {
        let config = aws_sdk_bedrockagentruntime::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_bedrockagentruntime::Client::from_conf(config)
    }
}

/// Whether `request` asks for the final answer in chunks.
fn streamed(request: &Value) -> bool {
    request["streamingConfigurations"]["streamFinalResponse"] == json!(true)
}

/// The chunks a final answer is sent in, as `request` asks.
pub fn chunks_of(text: &str, request: &Value) -> Vec<String> {
    if !streamed(request) {
        return vec![text.to_owned()];
    }
    guardrail_chunks(text, request)
}

/// `text` cut every `applyGuardrailInterval` characters (50 unless given).
fn guardrail_chunks(text: &str, request: &Value) -> Vec<String> {
    let size = request["streamingConfigurations"]["applyGuardrailInterval"]
        .as_u64()
        .unwrap_or(50) as usize;
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

fn event(kind: &str, payload: &Value) -> Vec<u8> {
    let message = Message::new(serde_json::to_vec(payload).unwrap())
        .add_header(header(":message-type", "event"))
        .add_header(header(":event-type", kind))
        .add_header(header(":content-type", "application/json"));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    out
}

fn chunk(text: &str) -> Vec<u8> {
    event(
        "chunk",
        &json!({"bytes": base64::engine::general_purpose::STANDARD.encode(text)}),
    )
}

fn exception(kind: &str, text: &str) -> Vec<u8> {
    let message = Message::new(serde_json::to_vec(&json!({"message": text})).unwrap())
        .add_header(header(":message-type", "exception"))
        .add_header(header(":exception-type", kind))
        .add_header(header(":content-type", "application/json"));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    out
}

fn error(status: u16, kind: &'static str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        json!({"message": message}).to_string(),
    )
        .into_response()
}

fn validation(message: String) -> Response {
    error(400, "ValidationException", &message)
}

/// What goes on the connection: raw bytes, or a chunk of the final answer
/// (timed, possibly due at a set time, and the last one possibly held).
enum Out {
    Bytes(Vec<u8>),
    Answer {
        text: String,
        last: bool,
        due: Option<Instant>,
    },
}

async fn invoke(State(inner): State<Arc<Inner>>, uri: Uri, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seen = Seen {
        path: uri.path().to_owned(),
        body: request.clone(),
    };
    let session = seen.session().to_owned();
    let came = Instant::now();
    inner.seen.lock().unwrap().push(seen.clone());
    if request["endSession"] == json!(true) {
        inner.pending.lock().unwrap().remove(&session);
        return stream_of(inner, Vec::new());
    }
    if let Some(interval) = request["streamingConfigurations"]["applyGuardrailInterval"].as_i64()
        && interval < 1
    {
        return validation(format!(
            "applyGuardrailInterval must be at least 1, not {interval}"
        ));
    }
    let state = &request["sessionState"];
    let results = state["returnControlInvocationResults"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !results.is_empty() {
        let pending = inner.pending.lock().unwrap().remove(&session);
        if let Err(message) = answers(pending.as_ref(), state, &results) {
            if let Some(p) = pending {
                inner.pending.lock().unwrap().insert(session, p);
            }
            return validation(message);
        }
        if results.iter().any(|r| state_of(r) == Some("FAILURE")) {
            let failed = exception(
                "dependencyFailedException",
                "The action group returned a failure.",
            );
            return stream_of(inner, vec![Out::Bytes(failed)]);
        }
    }
    let reply = match &inner.source {
        Source::Script(script) => script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Error(500, "InternalServerException")),
        Source::Agent(agent) => agent(&seen),
    };
    // The chunks of a final answer. A paced model writes a piece of
    // `applyGuardrailInterval` characters `first` after the request came
    // and one every `every` after that; unstreamed, the whole answer is
    // due when its last piece is written.
    let answer = |text: String, pace: Option<(Duration, Duration)>| {
        let written = guardrail_chunks(&text, &request).len().max(1);
        let parts = chunks_of(&text, &request);
        let count = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, text)| Out::Answer {
                text,
                last: i + 1 == count,
                due: pace.map(|(first, every)| {
                    let piece = if streamed(&request) { i } else { written - 1 };
                    came + first + every * piece as u32
                }),
            })
            .collect()
    };
    let out = match reply {
        Reply::Error(status, kind) => return error(status, kind, "scripted failure"),
        Reply::Answer(text) => answer(text, None),
        Reply::Paced { text, first, every } => answer(text, Some((first, every))),
        Reply::Reads(prefix) => {
            let bodies: Vec<&str> = results.iter().filter_map(body_of).collect();
            answer(format!("{prefix}{}", bodies.join(" ")), None)
        }
        Reply::ReturnControl(payload) => {
            inner
                .pending
                .lock()
                .unwrap()
                .insert(session, payload.clone());
            vec![Out::Bytes(event("returnControl", &payload))]
        }
        Reply::Frames(frames) => frames
            .into_iter()
            .filter_map(|f| match f {
                Frame::Chunk(text) => Some(Out::Bytes(chunk(&text))),
                Frame::Exception(kind, text) => Some(Out::Bytes(exception(kind, text))),
                Frame::Trace(trace) => (request["enableTrace"] == json!(true)).then(|| {
                    let part =
                        json!({"sessionId": session, "agentId": "AGENT12345", "trace": trace});
                    Out::Bytes(event("trace", &part))
                }),
                Frame::Cut => {
                    let whole = chunk("this chunk never arrives whole");
                    Some(Out::Bytes(whole[..whole.len() / 2].to_vec()))
                }
            })
            .collect(),
    };
    stream_of(inner, out)
}

/// Checks that `results` answer the `returnControl` the session waits on.
fn answers(pending: Option<&Value>, state: &Value, results: &[Value]) -> Result<(), String> {
    let pending = pending.ok_or("no action of this session is waiting for results")?;
    if state["invocationId"] != pending["invocationId"] {
        return Err(format!(
            "invocationId {} does not match the pending invocation {}",
            state["invocationId"], pending["invocationId"]
        ));
    }
    let inputs = pending["invocationInputs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if inputs.len() != results.len() {
        return Err(format!(
            "{} results for {} invocation inputs",
            results.len(),
            inputs.len()
        ));
    }
    for input in &inputs {
        let answered = if let Some(f) = input.get("functionInvocationInput") {
            results.iter().any(|r| {
                let r = &r["functionResult"];
                r["actionGroup"] == f["actionGroup"] && r["function"] == f["function"]
            })
        } else if let Some(a) = input.get("apiInvocationInput") {
            results.iter().any(|r| {
                let r = &r["apiResult"];
                r["actionGroup"] == a["actionGroup"] && r["apiPath"] == a["apiPath"]
            })
        } else {
            false
        };
        if !answered {
            return Err(format!("no result of its kind answers {input}"));
        }
    }
    Ok(())
}

fn result_of(result: &Value) -> &Value {
    result
        .get("functionResult")
        .or_else(|| result.get("apiResult"))
        .unwrap_or(&Value::Null)
}

fn state_of(result: &Value) -> Option<&str> {
    result_of(result)["responseState"].as_str()
}

/// The body of a result, whatever its content type.
fn body_of(result: &Value) -> Option<&str> {
    result_of(result)["responseBody"]
        .as_object()?
        .values()
        .find_map(|content| content["body"].as_str())
}

/// An event-stream response whose frames are written one at a time, so
/// the client can read the first before the last is produced.
fn stream_of(inner: Arc<Inner>, out: Vec<Out>) -> Response {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1);
    tokio::spawn(async move {
        for piece in out {
            let bytes = match piece {
                Out::Bytes(bytes) => bytes,
                Out::Answer { text, last, due } => {
                    if let Some(due) = due {
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let held = if last {
                        inner.hold.lock().unwrap().take()
                    } else {
                        None
                    };
                    if let Some(release) = held {
                        let _ = tokio::time::timeout(HOLD_LIMIT, release).await;
                    }
                    inner.chunks.lock().unwrap().push(Instant::now());
                    chunk(&text)
                }
            };
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
    });
    let body = stream::unfold(rx, |mut rx| async move {
        let bytes = rx.recv().await?;
        Some((Ok::<_, Infallible>(Bytes::from(bytes)), rx))
    });
    (
        StatusCode::OK,
        [
            ("content-type", "application/vnd.amazon.eventstream"),
            ("x-amzn-bedrock-agent-content-type", "application/json"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// A `returnControl` payload asking, under invocation `id`, for each
/// function of action group `voice-tools` with its parameters.
pub fn function_calls(id: &str, calls: &[(&str, &[(&str, &str)])]) -> Value {
    let inputs: Vec<Value> = calls
        .iter()
        .map(|(function, params)| {
            let params: Vec<Value> = params
                .iter()
                .map(|(n, v)| json!({"name": n, "type": "string", "value": v}))
                .collect();
            json!({"functionInvocationInput": {
                "actionGroup": "voice-tools", "function": function, "parameters": params,
                "actionInvocationType": "RESULT"
            }})
        })
        .collect();
    json!({"invocationId": id, "invocationInputs": inputs})
}

/// An `apiInvocationInput` of action group `voice-api`: `method` on
/// `path`, with query parameters and JSON body properties.
pub fn api_call(method: &str, path: &str, query: &[(&str, &str)], body: &[(&str, &str)]) -> Value {
    let strings = |pairs: &[(&str, &str)]| -> Vec<Value> {
        pairs
            .iter()
            .map(|(n, v)| json!({"name": n, "type": "string", "value": v}))
            .collect()
    };
    json!({"apiInvocationInput": {
        "actionGroup": "voice-api", "httpMethod": method, "apiPath": path,
        "parameters": strings(query),
        "requestBody": {"content": {"application/json": {"properties": strings(body)}}},
        "actionInvocationType": "RESULT"
    }})
}
