//! Bedrock Agents (`InvokeAgent`) as the agent runtime. Action groups are
//! configured with RETURN_CONTROL: Bedrock hands the tool calls back to
//! us, we run them and send their results with the same `invocationId`,
//! until the agent answers in text. Bounded in rounds and in time; any
//! failure becomes the spoken fallback.
//!
//! As AWS documents it (InvokeAgent API reference,
//! https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_InvokeAgent.html,
//! and "Return control to the agent developer",
//! https://docs.aws.amazon.com/bedrock/latest/userguide/agents-returncontrol.html):
//!
//! - A failed tool goes back with `responseState: REPROMPT`, which sends
//!   the result to the model, never `FAILURE`, which makes the request
//!   fail with a dependency-failure exception (FunctionResult, ApiResult).
//!   So "that slot is taken" reaches the model, which can say so.
//! - `streamingConfigurations.streamFinalResponse` makes Bedrock send the
//!   final answer in chunks (of at least `applyGuardrailInterval`
//!   characters) instead of one chunk at the end (StreamingConfigurations;
//!   the agent's role then needs `bedrock:InvokeModelWithResponseStream`,
//!   "Invoke an agent from your application",
//!   https://docs.aws.amazon.com/bedrock/latest/userguide/agents-invoke-agent.html).
//!   Each chunk goes to the caller as it comes.
//! - A `returnControl` event lists up to five invocation inputs, each a
//!   function (`functionInvocationInput`) or an API operation of an
//!   OpenAPI action group (`apiInvocationInput`); they run concurrently
//!   and every one gets its result (`FunctionResult` or `ApiResult`), all
//!   in the next request's `sessionState.returnControlInvocationResults`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_bedrockagentruntime::Client;
use aws_sdk_bedrockagentruntime::error::{DisplayErrorContext, SdkError};
use aws_sdk_bedrockagentruntime::operation::invoke_agent::InvokeAgentError;
use aws_sdk_bedrockagentruntime::operation::invoke_agent::builders::InvokeAgentFluentBuilder;
use aws_sdk_bedrockagentruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockagentruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockagentruntime::types::{
    ApiInvocationInput, ApiResult, ContentBody, FunctionInvocationInput, FunctionResult,
    InvocationInputMember, InvocationResultMember, ResponseState, ResponseStream,
    ReturnControlPayload, SessionState, StreamingConfigurations, Trace, TracePart,
};
use futures::future::{BoxFuture, join_all};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::metrics::{AgentMetrics, BEDROCK_EXCEPTIONS};
use super::{
    AgentRuntime, Answer, DEFAULT_DEADLINE, DEFAULT_MAX_ROUNDS, Session, ToolCall, ToolOutput,
    ToolRunner, Turn, fall_back,
};
use crate::tenant::BedrockAgentRef;

/// Characters between two guardrail checks of a streamed answer, unless
/// configured: AWS's own default for `applyGuardrailInterval`.
pub const DEFAULT_GUARDRAIL_INTERVAL: u32 = 50;

/// What `InvokeAgent` is sent to end a session. The API does not require
/// input text with `endSession`, but gives no example without it either;
/// a short sentence is safe both ways, and whatever the agent answers to
/// it is dropped.
const END_OF_CALL: &str = "The call has ended.";

/// The content type of an `ApiResult` body, as the return-of-control
/// examples and OpenAPI action groups use it.
const API_BODY_TYPE: &str = "application/json";

/// The prompt session attribute carrying the turn's instructions
/// ([`Turn::system`]: the voice agent's prompt and the caller's date), set
/// on every `InvokeAgent` of the turn. Prompt session attributes last one
/// `InvokeAgent` call and fill the `$prompt_session_attributes$`
/// placeholder of the orchestration template (AWS, "Control agent session
/// context", agents-session-state.html), so they reach the model only where
/// the agent's template has that placeholder. The conversation history
/// ([`Turn::history`]) is not resent: Bedrock keeps the session's history
/// itself under `sessionId`. The trade-off: the two memories of the call
/// can differ (an answer the caller interrupted is whole in Bedrock's and
/// cut short in ElevenLabs'; a session idle past the agent's
/// `idleSessionTTLInSeconds` starts blank in Bedrock), and the ElevenLabs
/// prompt ranks below the Bedrock agent's own instruction.
pub const INSTRUCTIONS_ATTRIBUTE: &str = "voiceAgentInstructions";

/// Which Bedrock Agent answers, and the limits of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockConfig {
    pub agent_id: String,
    pub alias_id: String,
    /// Tool round trips allowed in one turn.
    pub max_rounds: u32,
    /// Longest a whole turn may take, tools included (a caller is waiting).
    pub deadline: Duration,
    /// Ask for the final answer in chunks (`streamFinalResponse`), so the
    /// caller hears the first words while the model still writes.
    pub stream: bool,
    /// Characters between two guardrail checks of a streamed answer
    /// (`applyGuardrailInterval`): larger means fewer, larger chunks.
    pub guardrail_interval: u32,
    /// Ask for the agent's trace (`enableTrace`) and log it: failure
    /// reasons at warn, the rest at debug. For debugging; it adds events
    /// to every answer.
    pub trace: bool,
}

impl BedrockConfig {
    /// `agent_id` at `alias_id`, with the default limits, streaming on and
    /// the trace off.
    pub fn new(agent_id: impl Into<String>, alias_id: impl Into<String>) -> BedrockConfig {
        BedrockConfig {
            agent_id: agent_id.into(),
            alias_id: alias_id.into(),
            max_rounds: DEFAULT_MAX_ROUNDS,
            deadline: DEFAULT_DEADLINE,
            stream: true,
            guardrail_interval: DEFAULT_GUARDRAIL_INTERVAL,
            trace: false,
        }
    }
}

/// Why a turn got the fallback instead of an answer.
#[derive(Debug, thiserror::Error)]
pub enum BedrockError {
    #[error("InvokeAgent failed: {0}")]
    Invoke(String),
    #[error("the response stream failed: {0}")]
    Stream(String),
    #[error("no answer within {0:?}")]
    Deadline(Duration),
    #[error("still calling tools after {0} rounds")]
    TooManyRounds(u32),
    #[error("cannot build the tool result: {0}")]
    Build(String),
    #[error("Bedrock asked for an action of a kind this bridge does not know")]
    UnknownInvocation,
}

pub struct BedrockRuntime {
    client: Client,
    config: BedrockConfig,
    metrics: AgentMetrics,
}

/// A tool call refused before it ran: the HTTP status an API operation
/// answers with, and the sentence the model reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: u16,
    reason: String,
}

/// One invocation input of a `returnControl` event, as answered: the tool
/// call it made (none when refused) and its result.
type Answered = (Option<ToolCall>, InvocationResultMember);

impl BedrockRuntime {
    pub fn new(client: Client, config: BedrockConfig) -> BedrockRuntime {
        BedrockRuntime {
            client,
            config,
            metrics: AgentMetrics::default(),
        }
    }

    /// Counts Bedrock's exceptions into `metrics`.
    pub fn with_metrics(mut self, metrics: AgentMetrics) -> BedrockRuntime {
        self.metrics = metrics;
        self
    }

    /// An `InvokeAgent` request in `session_id` to the tenant's own agent
    /// when it has one, else the configured one.
    fn request(&self, own: Option<&BedrockAgentRef>, session_id: &str) -> InvokeAgentFluentBuilder {
        let (agent, alias) = match own {
            Some(own) => (&own.agent_id, &own.alias_id),
            None => (&self.config.agent_id, &self.config.alias_id),
        };
        self.client
            .invoke_agent()
            .agent_id(agent)
            .agent_alias_id(alias)
            .session_id(session_id)
    }

    /// Sends `request` and gives its event stream; an exception Bedrock
    /// answered with is counted by class.
    async fn send(
        &self,
        request: InvokeAgentFluentBuilder,
        deadline: Instant,
    ) -> Result<EventReceiver<ResponseStream, ResponseStreamError>, BedrockError> {
        match timeout_at(deadline, request.send()).await {
            Err(_) => Err(BedrockError::Deadline(self.config.deadline)),
            Ok(Err(e)) => {
                if let Some(class) = e.as_service_error().map(invoke_exception) {
                    self.metrics.bedrock_exception(class);
                }
                Err(BedrockError::Invoke(DisplayErrorContext(&e).to_string()))
            }
            Ok(Ok(output)) => Ok(output.completion),
        }
    }

    /// The next event of `events`; an exception in the stream is counted
    /// by class.
    async fn next_event(
        &self,
        events: &mut EventReceiver<ResponseStream, ResponseStreamError>,
        deadline: Instant,
    ) -> Result<Option<ResponseStream>, BedrockError> {
        match timeout_at(deadline, events.recv()).await {
            Err(_) => Err(BedrockError::Deadline(self.config.deadline)),
            Ok(Err(e)) => {
                if let SdkError::ServiceError(service) = &e {
                    self.metrics
                        .bedrock_exception(stream_exception(service.err()));
                }
                Err(BedrockError::Stream(DisplayErrorContext(&e).to_string()))
            }
            Ok(Ok(event)) => Ok(event),
        }
    }

    async fn run(
        &self,
        turn: &Turn,
        tools: &dyn ToolRunner,
        stream: Option<&mpsc::Sender<String>>,
        text: &mut String,
        called: &mut Vec<ToolCall>,
    ) -> Result<(), BedrockError> {
        let deadline = Instant::now() + self.config.deadline;
        let mut results: Option<(String, Vec<InvocationResultMember>)> = None;
        for _ in 0..self.config.max_rounds {
            let mut state = SessionState::builder()
                .session_attributes("businessId", &turn.business_id)
                .session_attributes("locationId", &turn.location_id)
                .session_attributes("source", &turn.source);
            if let Some(system) = &turn.system {
                state = state.prompt_session_attributes(INSTRUCTIONS_ATTRIBUTE, system);
            }
            let mut request = self
                .request(turn.bedrock.as_ref(), &turn.session_id)
                .enable_trace(self.config.trace);
            if self.config.stream {
                request = request.streaming_configurations(
                    StreamingConfigurations::builder()
                        .stream_final_response(true)
                        .apply_guardrail_interval(
                            i32::try_from(self.config.guardrail_interval).unwrap_or(i32::MAX),
                        )
                        .build(),
                );
            }
            match results.take() {
                None => request = request.input_text(&turn.text),
                Some((invocation_id, answers)) => {
                    state = state
                        .invocation_id(invocation_id)
                        .set_return_control_invocation_results(Some(answers));
                }
            }
            let mut events = self
                .send(request.session_state(state.build()), deadline)
                .await?;
            let mut control = None;
            while let Some(event) = self.next_event(&mut events, deadline).await? {
                match event {
                    ResponseStream::Chunk(part) => {
                        let Some(bytes) = part.bytes() else { continue };
                        let piece = String::from_utf8_lossy(bytes.as_ref()).into_owned();
                        text.push_str(&piece);
                        if let Some(tx) = stream {
                            // A caller that hung up does not stop the turn:
                            // its tools still finish and are logged.
                            let _ = timeout_at(deadline, tx.send(piece)).await;
                        }
                    }
                    ResponseStream::ReturnControl(payload) => control = Some(payload),
                    ResponseStream::Trace(part) => log_trace(turn, &part),
                    _ => {}
                }
            }
            let Some(payload) = control else {
                return Ok(());
            };
            let answered = self.run_tools(turn, tools, &payload, deadline).await?;
            let mut answers = Vec::with_capacity(answered.len());
            for (call, result) in answered {
                called.extend(call);
                answers.push(result);
            }
            results = Some((
                payload.invocation_id().unwrap_or_default().to_owned(),
                answers,
            ));
        }
        Err(BedrockError::TooManyRounds(self.config.max_rounds))
    }

    /// Runs the invocation inputs of `payload` concurrently; their results
    /// in the order of the inputs. An input of a kind this bridge cannot
    /// answer fails the turn before any tool runs.
    async fn run_tools(
        &self,
        turn: &Turn,
        tools: &dyn ToolRunner,
        payload: &ReturnControlPayload,
        deadline: Instant,
    ) -> Result<Vec<Answered>, BedrockError> {
        let inputs = payload.invocation_inputs();
        if !inputs
            .iter()
            .all(|i| i.is_function_invocation_input() || i.is_api_invocation_input())
        {
            return Err(BedrockError::UnknownInvocation);
        }
        let runs = inputs
            .iter()
            .map(|input| answer_input(turn, tools, input, deadline));
        join_all(runs).await.into_iter().collect()
    }
}

/// Runs the tool `input` asks for, unless the call is refused, and builds
/// the result Bedrock expects for its kind.
async fn answer_input(
    turn: &Turn,
    tools: &dyn ToolRunner,
    input: &InvocationInputMember,
    deadline: Instant,
) -> Result<Answered, BedrockError> {
    match input {
        InvocationInputMember::FunctionInvocationInput(f) => {
            let (call, output, _) = run_call(turn, tools, function_call(f), deadline).await;
            Ok((call, function_result(f, &output)?))
        }
        InvocationInputMember::ApiInvocationInput(a) => {
            let (call, output, status) = run_call(turn, tools, api_call(a), deadline).await;
            Ok((call, api_result(a, &output, status)?))
        }
        _ => Err(BedrockError::UnknownInvocation),
    }
}

/// Runs `call` unless it was refused: the call that ran, what the model
/// reads, and the HTTP status an API operation answers with.
async fn run_call(
    turn: &Turn,
    tools: &dyn ToolRunner,
    call: Result<ToolCall, Refusal>,
    deadline: Instant,
) -> (Option<ToolCall>, ToolOutput, u16) {
    match call {
        Err(refusal) => {
            tracing::info!(
                session = %turn.session_id,
                reason = %refusal.reason,
                "tool call refused; the model is told why"
            );
            let output = ToolOutput {
                body: refusal.reason,
                ok: false,
            };
            (None, output, refusal.status)
        }
        Ok(call) => {
            let output = timeout_at(deadline, tools.run(turn, &call))
                .await
                .unwrap_or_else(|_| ToolOutput {
                    body: "the tool did not answer in time".into(),
                    ok: false,
                });
            // 400: the operation could not be carried out; the body says why.
            let status = if output.ok { 200 } else { 400 };
            (Some(call), output, status)
        }
    }
}

/// The state of a result: REPROMPT for a failure, so that the model reads
/// it and answers; never FAILURE, which fails the whole request with
/// `dependencyFailedException` and leaves the caller with the fallback
/// (FunctionResult and ApiResult, `responseState`).
fn response_state(output: &ToolOutput) -> Option<ResponseState> {
    (!output.ok).then_some(ResponseState::Reprompt)
}

fn function_result(
    input: &FunctionInvocationInput,
    output: &ToolOutput,
) -> Result<InvocationResultMember, BedrockError> {
    FunctionResult::builder()
        .action_group(input.action_group())
        .set_function(input.function().map(str::to_owned))
        .response_body("TEXT", ContentBody::builder().body(&output.body).build())
        .set_response_state(response_state(output))
        .build()
        .map(InvocationResultMember::FunctionResult)
        .map_err(|e| BedrockError::Build(e.to_string()))
}

fn api_result(
    input: &ApiInvocationInput,
    output: &ToolOutput,
    status: u16,
) -> Result<InvocationResultMember, BedrockError> {
    ApiResult::builder()
        .action_group(input.action_group())
        .set_api_path(input.api_path().map(str::to_owned))
        .set_http_method(input.http_method().map(str::to_owned))
        .http_status_code(i32::from(status))
        .response_body(
            API_BODY_TYPE,
            ContentBody::builder().body(api_body(output)).build(),
        )
        .set_response_state(response_state(output))
        .build()
        .map(InvocationResultMember::ApiResult)
        .map_err(|e| BedrockError::Build(e.to_string()))
}

/// The JSON body of an API operation's result: the tool's answer when it
/// is JSON, else wrapped as `{"result": ...}`; a failure as
/// `{"error": ...}`.
fn api_body(output: &ToolOutput) -> String {
    if !output.ok {
        return json!({"error": output.body}).to_string();
    }
    match serde_json::from_str::<Value>(&output.body) {
        Ok(_) => output.body.clone(),
        Err(_) => json!({"result": output.body}).to_string(),
    }
}

/// The names of the tools Bedrock's action group may call, read from the
/// catalog once rather than on every tool call (the catalog builds each
/// tool's JSON Schema).
fn served() -> &'static [&'static str] {
    static SERVED: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(|| super::tools::catalog().iter().map(|t| t.name).collect());
    &SERVED
}

/// The tool call a function invocation asks for, or why it is refused.
fn function_call(input: &FunctionInvocationInput) -> Result<ToolCall, Refusal> {
    let function = input.function().unwrap_or_default().trim();
    let served = served();
    if !served.contains(&function) {
        return Err(Refusal {
            status: 404,
            reason: format!(
                "there is no function named {function:?}; the functions are {}",
                served.join(", ")
            ),
        });
    }
    let parameters = parameters(
        input
            .parameters()
            .iter()
            .map(|p| (p.name(), p.value().unwrap_or_default())),
    )?;
    Ok(ToolCall {
        action_group: input.action_group().to_owned(),
        function: function.to_owned(),
        parameters,
    })
}

/// The tool call an API operation asks for, or why it is refused. The
/// operation is the last segment of its path, `-` read as `_`
/// (`/create_appointment`, `/tools/create-appointment`); its parameters
/// are those of the path and query and the properties of the request
/// body.
fn api_call(input: &ApiInvocationInput) -> Result<ToolCall, Refusal> {
    let path = input.api_path().unwrap_or_default();
    let operation = path
        .rsplit('/')
        .find(|s| !s.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .replace('-', "_");
    let served = served();
    let Some(function) = served.iter().find(|s| **s == operation) else {
        let paths: Vec<String> = served.iter().map(|s| format!("/{s}")).collect();
        return Err(Refusal {
            status: 404,
            reason: format!(
                "no operation is served at {path:?}; the operations are {}",
                paths.join(", ")
            ),
        });
    };
    let body = input
        .request_body()
        .and_then(|b| b.content())
        .into_iter()
        .flat_map(|content| content.values())
        .flat_map(|properties| properties.properties())
        .map(|p| (p.name(), p.value().unwrap_or_default()));
    let path_and_query = input
        .parameters()
        .iter()
        .map(|p| (p.name(), p.value().unwrap_or_default()));
    Ok(ToolCall {
        action_group: input.action_group().to_owned(),
        function: (*function).to_owned(),
        parameters: parameters(path_and_query.chain(body))?,
    })
}

/// Named string parameters; a parameter without a name, or one given
/// twice with two values, is refused naming it.
fn parameters<'a>(
    given: impl Iterator<Item = (Option<&'a str>, &'a str)>,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut out = BTreeMap::new();
    for (name, value) in given {
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Refusal {
                status: 400,
                reason: format!("a parameter has no name (its value is {value:?})"),
            })?;
        match out.insert(name.to_owned(), value.to_owned()) {
            Some(earlier) if earlier != value => {
                return Err(Refusal {
                    status: 400,
                    reason: format!(
                        "parameter {name} is given twice, as {earlier:?} and as {value:?}"
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Logs one trace event of a turn: a failure reason at warn (it says why
/// the agent could not answer), the rest at debug.
fn log_trace(turn: &Turn, part: &TracePart) {
    match part.trace() {
        Some(Trace::FailureTrace(failure)) => tracing::warn!(
            session = %turn.session_id,
            business_id = %turn.business_id,
            location_id = %turn.location_id,
            reason = failure.failure_reason().unwrap_or("none given"),
            code = failure.failure_code(),
            "Bedrock trace: the agent failed"
        ),
        Some(trace) => tracing::debug!(session = %turn.session_id, trace = ?trace, "Bedrock trace"),
        None => {}
    }
}

/// The class of an exception `InvokeAgent` answered with.
fn invoke_exception(e: &InvokeAgentError) -> &'static str {
    let index = match e {
        InvokeAgentError::AccessDeniedException(_) => 0,
        InvokeAgentError::BadGatewayException(_) => 1,
        InvokeAgentError::ConflictException(_) => 2,
        InvokeAgentError::DependencyFailedException(_) => 3,
        InvokeAgentError::InternalServerException(_) => 4,
        InvokeAgentError::ModelNotReadyException(_) => 5,
        InvokeAgentError::ResourceNotFoundException(_) => 6,
        InvokeAgentError::ServiceQuotaExceededException(_) => 7,
        InvokeAgentError::ThrottlingException(_) => 8,
        InvokeAgentError::ValidationException(_) => 9,
        _ => return "other",
    };
    BEDROCK_EXCEPTIONS[index]
}

/// The class of an exception event in the response stream.
fn stream_exception(e: &ResponseStreamError) -> &'static str {
    let index = match e {
        ResponseStreamError::AccessDeniedException(_) => 0,
        ResponseStreamError::BadGatewayException(_) => 1,
        ResponseStreamError::ConflictException(_) => 2,
        ResponseStreamError::DependencyFailedException(_) => 3,
        ResponseStreamError::InternalServerException(_) => 4,
        ResponseStreamError::ModelNotReadyException(_) => 5,
        ResponseStreamError::ResourceNotFoundException(_) => 6,
        ResponseStreamError::ServiceQuotaExceededException(_) => 7,
        ResponseStreamError::ThrottlingException(_) => 8,
        ResponseStreamError::ValidationException(_) => 9,
        _ => return "other",
    };
    BEDROCK_EXCEPTIONS[index]
}

impl AgentRuntime for BedrockRuntime {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        tools: &'a dyn ToolRunner,
        stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let mut text = String::new();
            let mut tools_called = Vec::new();
            match self
                .run(turn, tools, stream.as_ref(), &mut text, &mut tools_called)
                .await
            {
                Ok(()) => Answer {
                    text,
                    tools: tools_called,
                    ..Answer::default()
                },
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        session = %turn.session_id,
                        business_id = %turn.business_id,
                        location_id = %turn.location_id,
                        "Bedrock agent gave no answer; speaking the fallback"
                    );
                    fall_back(stream.as_ref(), &text, tools_called).await
                }
            }
        })
    }

    /// `InvokeAgent` with `endSession`, so Bedrock lets the session go
    /// (and, with memory, summarizes it) now rather than at its idle
    /// timeout. What the agent says to it is dropped.
    fn end_session<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let deadline = Instant::now() + self.config.deadline;
            let request = self
                .request(session.bedrock.as_ref(), &session.session_id)
                .end_session(true)
                .input_text(END_OF_CALL);
            let ended = async {
                let mut events = self.send(request, deadline).await?;
                while self.next_event(&mut events, deadline).await?.is_some() {}
                Ok::<(), BedrockError>(())
            }
            .await;
            match ended {
                Ok(()) => tracing::debug!(session = %session.session_id, "Bedrock session ended"),
                Err(e) => tracing::warn!(
                    error = %e,
                    session = %session.session_id,
                    business_id = %session.business_id,
                    location_id = %session.location_id,
                    "could not end the Bedrock session; it ends at its idle timeout"
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_bedrockagentruntime::types::{
        ApiParameter, ApiRequestBody, FunctionParameter, Parameter, PropertyParameters,
    };

    use super::*;

    fn api(path: &str) -> aws_sdk_bedrockagentruntime::types::builders::ApiInvocationInputBuilder {
        ApiInvocationInput::builder()
            .action_group("voice-api")
            .api_path(path)
            .http_method("POST")
    }

    fn property(name: &str, value: &str) -> Parameter {
        Parameter::builder()
            .name(name)
            .r#type("string")
            .value(value)
            .build()
    }

    #[test]
    fn an_api_operation_runs_the_tool_named_by_the_last_segment_of_its_path() {
        let input = api("/tools/create-appointment")
            .parameters(
                ApiParameter::builder()
                    .name("date")
                    .value("2026-11-25")
                    .build(),
            )
            .request_body(
                ApiRequestBody::builder()
                    .content(
                        "application/json",
                        PropertyParameters::builder()
                            .properties(property("time", "10:00"))
                            .properties(property("customerName", "Ana Pop"))
                            .build(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        let call = api_call(&input).unwrap();
        assert_eq!(call.function, "create_appointment");
        assert_eq!(call.action_group, "voice-api");
        assert_eq!(
            call.parameters,
            BTreeMap::from([
                ("customerName".into(), "Ana Pop".into()),
                ("date".into(), "2026-11-25".into()),
                ("time".into(), "10:00".into()),
            ])
        );
    }

    #[test]
    fn an_api_path_not_served_is_refused_with_404_naming_the_paths_served() {
        for path in ["/appointments/{id}", "/", ""] {
            let refusal = api_call(&api(path).build().unwrap()).unwrap_err();
            assert_eq!(refusal.status, 404, "{path}");
            assert!(
                refusal.reason.contains("/create_appointment"),
                "{refusal:?}"
            );
        }
    }

    #[test]
    fn malformed_parameters_are_refused_naming_the_parameter() {
        let twice = api("/query_app_server")
            .parameters(
                ApiParameter::builder()
                    .name("date")
                    .value("2026-11-25")
                    .build(),
            )
            .request_body(
                ApiRequestBody::builder()
                    .content(
                        "application/json",
                        PropertyParameters::builder()
                            .properties(property("date", "2026-11-26"))
                            .build(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        let refusal = api_call(&twice).unwrap_err();
        assert_eq!(refusal.status, 400);
        assert!(
            refusal.reason.contains("parameter date is given twice"),
            "{refusal:?}"
        );

        let nameless = FunctionInvocationInput::builder()
            .action_group("voice-tools")
            .function("query_app_server")
            .parameters(FunctionParameter::builder().value("x").build())
            .build()
            .unwrap();
        let refusal = function_call(&nameless).unwrap_err();
        assert_eq!(refusal.status, 400);
        assert!(refusal.reason.contains("no name"), "{refusal:?}");
    }

    #[test]
    fn an_unknown_function_is_refused_naming_the_functions() {
        let input = FunctionInvocationInput::builder()
            .action_group("voice-tools")
            .function("delete_everything")
            .build()
            .unwrap();
        let refusal = function_call(&input).unwrap_err();
        assert!(
            refusal.reason.contains("\"delete_everything\"")
                && refusal.reason.contains("send_external_message"),
            "{refusal:?}"
        );
    }

    #[test]
    fn api_bodies_are_json_and_failures_carry_the_error() {
        let ok = |body: &str| ToolOutput {
            body: body.into(),
            ok: true,
        };
        assert_eq!(
            api_body(&ok(r#"{"slots":["10:00"]}"#)),
            r#"{"slots":["10:00"]}"#
        );
        assert_eq!(api_body(&ok("booked")), r#"{"result":"booked"}"#);
        let failed = ToolOutput {
            body: "slot taken".into(),
            ok: false,
        };
        assert_eq!(api_body(&failed), r#"{"error":"slot taken"}"#);
        assert_eq!(response_state(&failed), Some(ResponseState::Reprompt));
        assert_eq!(response_state(&ok("x")), None);
    }
}
