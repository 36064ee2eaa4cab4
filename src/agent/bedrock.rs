//! Bedrock Agents (`InvokeAgent`) as the agent runtime. Action groups are
//! configured with RETURN_CONTROL: Bedrock hands each tool call back to us,
//! we run it and send the result with the same `invocationId`, until the
//! agent answers in text. Bounded in rounds and in time; any failure
//! becomes the spoken fallback.

use futures::future::BoxFuture;
use std::time::Duration;

use aws_sdk_bedrockagentruntime::Client;
use aws_sdk_bedrockagentruntime::error::DisplayErrorContext;
use aws_sdk_bedrockagentruntime::types::{
    ContentBody, FunctionResult, InvocationInputMember, InvocationResultMember, ResponseState,
    ResponseStream, SessionState,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::{AgentRuntime, Answer, ToolCall, ToolOutput, ToolRunner, Turn, fall_back};

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
}

pub struct BedrockRuntime {
    client: Client,
    config: BedrockConfig,
}

impl BedrockRuntime {
    pub fn new(client: Client, config: BedrockConfig) -> BedrockRuntime {
        BedrockRuntime { client, config }
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
        let late = || BedrockError::Deadline(self.config.deadline);
        let mut results: Option<(String, Vec<InvocationResultMember>)> = None;
        for _ in 0..self.config.max_rounds {
            let mut state = SessionState::builder()
                .session_attributes("businessId", &turn.business_id)
                .session_attributes("locationId", &turn.location_id)
                .session_attributes("source", &turn.source);
            if let Some(system) = &turn.system {
                state = state.prompt_session_attributes(INSTRUCTIONS_ATTRIBUTE, system);
            }
            let (agent, alias) = match &turn.bedrock {
                Some(own) => (&own.agent_id, &own.alias_id),
                None => (&self.config.agent_id, &self.config.alias_id),
            };
            let mut request = self
                .client
                .invoke_agent()
                .agent_id(agent)
                .agent_alias_id(alias)
                .session_id(&turn.session_id);
            match results.take() {
                None => request = request.input_text(&turn.text),
                Some((invocation_id, answers)) => {
                    state = state.invocation_id(invocation_id);
                    for answer in answers {
                        state = state.return_control_invocation_results(answer);
                    }
                }
            }
            let output = timeout_at(deadline, request.session_state(state.build()).send())
                .await
                .map_err(|_| late())?
                .map_err(|e| BedrockError::Invoke(DisplayErrorContext(&e).to_string()))?;
            let mut events = output.completion;
            let mut control = None;
            loop {
                let event = timeout_at(deadline, events.recv())
                    .await
                    .map_err(|_| late())?
                    .map_err(|e| BedrockError::Stream(DisplayErrorContext(&e).to_string()))?;
                match event {
                    None => break,
                    Some(ResponseStream::Chunk(part)) => {
                        if let Some(bytes) = part.bytes() {
                            let piece = String::from_utf8_lossy(bytes.as_ref()).into_owned();
                            text.push_str(&piece);
                            if let Some(tx) = stream {
                                let _ = tx.send(piece).await;
                            }
                        }
                    }
                    Some(ResponseStream::ReturnControl(payload)) => control = Some(payload),
                    Some(_) => {}
                }
            }
            let Some(payload) = control else {
                return Ok(());
            };
            let mut answers = Vec::new();
            for input in payload.invocation_inputs() {
                let InvocationInputMember::FunctionInvocationInput(f) = input else {
                    tracing::warn!(
                        "Bedrock asked for an API-schema action; only function actions are supported"
                    );
                    continue;
                };
                let call = ToolCall {
                    action_group: f.action_group().to_owned(),
                    function: f.function().unwrap_or_default().to_owned(),
                    parameters: f
                        .parameters()
                        .iter()
                        .filter_map(|p| {
                            Some((
                                p.name()?.to_owned(),
                                p.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect(),
                };
                let output = timeout_at(deadline, tools.run(turn, &call))
                    .await
                    .unwrap_or_else(|_| ToolOutput {
                        body: "the tool did not answer in time".into(),
                        ok: false,
                    });
                let mut result = FunctionResult::builder()
                    .action_group(&call.action_group)
                    .function(&call.function)
                    .response_body("TEXT", ContentBody::builder().body(output.body).build());
                if !output.ok {
                    result = result.response_state(ResponseState::Failure);
                }
                answers.push(InvocationResultMember::FunctionResult(
                    result
                        .build()
                        .map_err(|e| BedrockError::Build(e.to_string()))?,
                ));
                called.push(call);
            }
            results = Some((
                payload.invocation_id().unwrap_or_default().to_owned(),
                answers,
            ));
        }
        Err(BedrockError::TooManyRounds(self.config.max_rounds))
    }
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
}
