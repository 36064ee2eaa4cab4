//! The agent behind every call: a runtime that takes one caller turn and
//! answers it, calling tools on the way. Bedrock Agents in production
//! ([`bedrock`]), an OpenAI-compatible chat-completions server for
//! self-hosted models ([`openai`]), a scripted stand-in for local runs and
//! tests ([`scripted`]).

pub mod bedrock;
pub mod metrics;
pub mod openai;
pub mod scripted;
pub mod tools;

use futures::future::BoxFuture;
use std::collections::BTreeMap;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use tokio::sync::mpsc;

/// Tool round trips allowed in one caller turn, unless configured.
pub const DEFAULT_MAX_ROUNDS: u32 = 4;

/// Longest one caller turn may take, tools included, unless configured:
/// past it the caller hears the fallback sentence.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(8);

/// One caller turn for the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    /// Groups the turns of one call (the ElevenLabs conversation id).
    pub session_id: String,
    pub business_id: String,
    pub location_id: String,
    /// Where the turn comes from (`voice` for phone calls).
    pub source: String,
    /// What the caller said.
    pub text: String,
    /// The tenant's own Bedrock Agent, when it has one (runtimes other
    /// than Bedrock ignore it).
    pub bedrock: Option<crate::tenant::BedrockAgentRef>,
    /// Instructions for this turn: the voice agent's prompt (ElevenLabs'
    /// system message) and the caller's date and time zone.
    pub system: Option<String>,
    /// The conversation before `text`, oldest first, as the voice platform
    /// keeps it; empty when the caller sends only the latest words.
    pub history: Vec<Message>,
    /// Tools the voice platform offers and runs itself (its `end_call` and
    /// `transfer_to_number` system tools); asking for one ends the turn
    /// with a [`Handoff`].
    pub platform_tools: Vec<PlatformTool>,
}

/// Who said a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One earlier message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub text: String,
}

/// ElevenLabs' system tool that ends the call (elevenlabs-docs
/// `snippets/end_call_custom_llm.mdx`).
pub const END_CALL: &str = "end_call";
/// ElevenLabs' system tool that transfers the call to a person
/// (elevenlabs-docs `snippets/human_transfer_custom_llm.mdx`).
pub const TRANSFER_TO_NUMBER: &str = "transfer_to_number";

/// A tool of the voice platform as its request describes it, in the
/// OpenAI function-tool form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformTool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

impl Turn {
    /// The platform tool `name`, when this turn's request offers it.
    pub fn platform_tool(&self, name: &str) -> Option<&PlatformTool> {
        self.platform_tools.iter().find(|tool| tool.name == name)
    }
}

/// The call leaves the agent: the voice platform hangs up or transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handoff {
    EndCall {
        reason: String,
        /// A farewell the platform says before hanging up.
        message: Option<String>,
    },
    Transfer {
        /// As the runtime gave it; checked for E.164 before it is used.
        number: String,
        reason: String,
        /// What the caller hears while the transfer is made.
        client_message: Option<String>,
        /// What the person taking the call hears first.
        agent_message: Option<String>,
    },
}

/// The agent session of one call, as the runtime keyed its turns: for
/// ending it when the call is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The ElevenLabs conversation id, as in [`Turn::session_id`].
    pub session_id: String,
    pub business_id: String,
    pub location_id: String,
    /// The tenant's own Bedrock Agent, as in [`Turn::bedrock`].
    pub bedrock: Option<crate::tenant::BedrockAgentRef>,
}

/// A tool the agent asked for: `function` of `action_group` with named
/// string parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub action_group: String,
    pub function: String,
    pub parameters: BTreeMap<String, String>,
}

/// What a tool gives back to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text the agent reads (JSON as a string, or an error explanation).
    pub body: String,
    /// False when the tool failed; the agent is told so.
    pub ok: bool,
}

/// Runs the tools an agent calls. Each call has `turn` at hand for its
/// tenant and session.
pub trait ToolRunner: Send + Sync {
    fn run<'a>(&'a self, turn: &'a Turn, call: &'a ToolCall) -> BoxFuture<'a, ToolOutput>;
}

/// The finished answer to a turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// Tools called, in order.
    pub tools: Vec<ToolCall>,
    /// The runtime could not answer and `text` is the spoken fallback.
    pub fallback: bool,
    /// The call leaves the agent after `text`.
    pub handoff: Option<Handoff>,
}

/// Answers caller turns. Text goes to `stream` as it arrives (for the
/// custom-LLM route's server-sent events) and the whole answer is returned.
/// A runtime never hangs and never fails the call: trouble becomes a
/// fallback sentence.
pub trait AgentRuntime: Send + Sync {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        tools: &'a dyn ToolRunner,
        stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer>;

    /// Tells the agent that the call of `session` is over, so it can let
    /// the session go (Bedrock: `endSession`). Never fails: trouble is
    /// logged. Runtimes that keep nothing per session do nothing.
    fn end_session<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ()> {
        let _ = session;
        Box::pin(async {})
    }
}

/// What the caller hears when the agent cannot answer.
pub const FALLBACK: &str = "Sorry, I cannot answer that right now. Please stay on the line or call again in a few minutes.";

/// How long the fallback sentence may wait for room in a full stream:
/// a caller that stopped reading must not hold the turn.
const FALLBACK_SEND_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The answer of a turn its runtime could not finish: the fallback
/// sentence, also sent on `stream` after the text `said` so far, and the
/// tools that did run.
async fn fall_back(
    stream: Option<&mpsc::Sender<String>>,
    said: &str,
    tools: Vec<ToolCall>,
) -> Answer {
    if let Some(tx) = stream {
        let joint = if said.is_empty() { "" } else { " " };
        let piece = format!("{joint}{FALLBACK}");
        let _ = tokio::time::timeout(FALLBACK_SEND_GRACE, tx.send(piece)).await;
    }
    Answer {
        text: FALLBACK.into(),
        tools,
        fallback: true,
        handoff: None,
    }
}

/// Which runtime answers, picked once at start.
#[derive(Debug, Clone)]
pub enum RuntimeConfig {
    Scripted,
    Bedrock(bedrock::BedrockConfig),
    OpenAi(openai::OpenAiConfig),
}

impl RuntimeConfig {
    /// Names the runtime for the start-up report.
    pub fn describe(&self) -> String {
        match self {
            RuntimeConfig::Scripted => "scripted (keyword rules, no model)".into(),
            RuntimeConfig::Bedrock(c) => {
                format!("Bedrock agent {} alias {}", c.agent_id, c.alias_id)
            }
            RuntimeConfig::OpenAi(c) => {
                format!("OpenAI-compatible {} model {}", c.base_url, c.model)
            }
        }
    }
}

/// Builds the runtime `config` names; it counts into `metrics`.
pub async fn open_runtime(
    config: &RuntimeConfig,
    metrics: &metrics::AgentMetrics,
) -> Result<Arc<dyn AgentRuntime>, crate::aws::NoRegion> {
    Ok(match config {
        RuntimeConfig::Scripted => Arc::new(scripted::ScriptedRuntime),
        RuntimeConfig::Bedrock(c) => {
            // One quick retry for throttling; the turn's deadline bounds it.
            let sdk = crate::aws::load(
                "the Bedrock agent runtime",
                RetryConfig::standard().with_max_attempts(2),
                c.deadline,
            )
            .await?;
            Arc::new(
                bedrock::BedrockRuntime::new(
                    aws_sdk_bedrockagentruntime::Client::new(&sdk),
                    c.clone(),
                )
                .with_metrics(metrics.clone()),
            )
        }
        RuntimeConfig::OpenAi(c) => Arc::new(openai::OpenAiRuntime::new(
            reqwest::Client::new(),
            c.clone(),
        )),
    })
}
