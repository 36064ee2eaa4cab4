//! Flags of `controller` (and of `run`, which adds the bridge's), and the
//! agent settings shared with `local`.

use std::time::Duration;

use clap::Args;

use super::{TenantStoreArgs, public_url, whole};
use crate::controller::Timing;
use crate::controller::desired::OperatorSettings;
use crate::elevenlabs::model::DEFAULT_CASCADE_TIMEOUT_SECS;

/// Settings of `controller` and `run`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// HTTP listen address (health, readiness, metrics; the webhook routes
    /// in `run`).
    #[arg(long, env = "VOICE_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,

    /// The URL ElevenLabs reaches this service at; each agent's custom-LLM
    /// URL is <public-url>/api/elevenlabs/llm/<businessId>/<locationId>.
    #[arg(long, env = "VOICE_OPERATOR_PUBLIC_URL", value_parser = public_url)]
    pub public_url: String,

    #[command(flatten)]
    pub agents: AgentArgs,

    /// Watch VoiceAgents in this namespace only [default: every namespace].
    #[arg(long, env = "VOICE_OPERATOR_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// VoiceAgents reconciled at the same time.
    #[arg(long, env = "VOICE_OPERATOR_CONCURRENCY", default_value_t = 8,
          value_parser = whole("--concurrency", "VOICE_OPERATOR_CONCURRENCY", 1, 1000))]
    pub concurrency: u64,

    /// Elect a leader on a Lease so that only one replica reconciles.
    /// Turn off only when running a single replica.
    #[arg(long, env = "VOICE_OPERATOR_LEADER_ELECTION", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub leader_election: bool,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "VOICE_OPERATOR_LEASE_NAME",
        default_value = "voice-operator"
    )]
    pub lease_name: String,

    /// Namespace of the leader Lease [default: the pod's namespace, or the
    /// kubeconfig context's].
    #[arg(long, env = "VOICE_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Seconds a leader's lease stays valid without renewal; a replica
    /// that dies is replaced after at most this long.
    #[arg(long, env = "VOICE_OPERATOR_LEASE_DURATION_SECS", default_value_t = 15,
          value_parser = whole("--lease-duration-secs", "VOICE_OPERATOR_LEASE_DURATION_SECS", 3, 600))]
    pub lease_duration_secs: u64,

    /// This replica's name in the Lease and in Events [default: a random
    /// name; the chart passes the pod name].
    #[arg(long, env = "VOICE_OPERATOR_IDENTITY")]
    pub identity: Option<String>,

    #[command(flatten)]
    pub tenant: TenantStoreArgs,
}

impl ControllerArgs {
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .unwrap_or_else(|| format!("voice-operator-{:08x}", fastrand::u32(..)))
    }
}

/// How the agents are made, in `controller`, `run` and `local`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// ElevenLabs API base URL (`local` uses it only when
    /// ELEVENLABS_API_KEY is set).
    #[arg(long, env = "ELEVENLABS_BASE_URL", default_value = crate::elevenlabs::DEFAULT_BASE_URL)]
    pub elevenlabs_base_url: String,

    /// Id of an ElevenLabs workspace secret holding
    /// VOICE_OPERATOR_LLM_SECRET, used as is instead of the one found or
    /// created by --llm-secret-name (the operator then does not touch the
    /// workspace's secrets).
    #[arg(long, env = "VOICE_OPERATOR_LLM_SECRET_ID")]
    pub llm_secret_id: Option<String>,

    /// Name of the ElevenLabs workspace secret that holds
    /// VOICE_OPERATOR_LLM_SECRET. At start the operator finds it by this
    /// exact name (or creates it) and sets its value; every agent's custom
    /// LLM sends it as the bearer token of the custom-LLM route.
    #[arg(long, env = "VOICE_OPERATOR_LLM_SECRET_NAME", default_value = DEFAULT_LLM_SECRET_NAME,
          value_parser = secret_name)]
    pub llm_secret_name: String,

    /// Id of an ElevenLabs workspace webhook (Settings > Webhooks, or
    /// POST /v1/workspace/webhooks) pointing at this operator's post-call
    /// route. Every agent the operator manages then sends its post-call
    /// events there (platform_settings.workspace_overrides.webhooks), so
    /// the route no longer needs to be the workspace-wide webhook.
    #[arg(long, env = "VOICE_OPERATOR_POST_CALL_WEBHOOK_ID", value_parser = webhook_id)]
    pub post_call_webhook_id: Option<String>,

    /// System prompt for VoiceAgents without customPrompt.
    #[arg(long, env = "VOICE_OPERATOR_DEFAULT_PROMPT", default_value = DEFAULT_PROMPT)]
    pub default_prompt: String,

    /// Seconds ElevenLabs waits for the custom-LLM route's first words
    /// before it sends the same request again (every agent's
    /// cascade_timeout_seconds, 2 to 15). The route sends buffer words well
    /// within it, and a repeated request joins the turn already running.
    #[arg(long, env = "VOICE_OPERATOR_CASCADE_TIMEOUT_SECONDS",
          default_value_t = DEFAULT_CASCADE_TIMEOUT_SECS, value_parser = cascade_timeout)]
    pub cascade_timeout_seconds: f64,

    /// Seconds between checks of each agent for changes made by hand in
    /// the ElevenLabs dashboard.
    #[arg(long, env = "VOICE_OPERATOR_RESYNC_SECS", default_value_t = Timing::default().resync.as_secs(),
          value_parser = whole("--resync-secs", "VOICE_OPERATOR_RESYNC_SECS", 10, 86_400))]
    pub resync_secs: u64,
}

impl AgentArgs {
    /// The operator settings, with agents' custom-LLM URLs built on
    /// `public_url` and `llm_secret_id` as the workspace secret they send.
    pub fn settings(&self, public_url: String, llm_secret_id: Option<String>) -> OperatorSettings {
        OperatorSettings {
            public_url,
            llm_secret_id,
            default_prompt: self.default_prompt.clone(),
            post_call_webhook_id: self.post_call_webhook_id.clone(),
            cascade_timeout_secs: self.cascade_timeout_seconds,
        }
    }

    pub fn timing(&self) -> Timing {
        Timing {
            resync: Duration::from_secs(self.resync_secs),
            ..Timing::default()
        }
    }
}

/// Name of the ElevenLabs workspace secret holding the custom-LLM bearer
/// secret, unless --llm-secret-name says otherwise.
pub const DEFAULT_LLM_SECRET_NAME: &str = "voice-operator-llm-secret";

/// A workspace secret name: anything but blank (the API's schema sets no
/// other rule on `name`).
fn secret_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(
            "must not be blank (set by --llm-secret-name or VOICE_OPERATOR_LLM_SECRET_NAME)".into(),
        );
    }
    Ok(name.to_owned())
}

/// A workspace webhook id: anything but blank, trimmed.
/// ElevenLabs' range for `cascade_timeout_seconds` (`PromptAgentAPIModel`).
fn cascade_timeout(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(secs) if (2.0..=15.0).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{raw:?} is not a number of seconds from 2 to 15 (ElevenLabs' range for cascade_timeout_seconds)"
        )),
    }
}

fn webhook_id(raw: &str) -> Result<String, String> {
    let id = raw.trim();
    if id.is_empty() {
        return Err("must not be blank (set by --post-call-webhook-id or VOICE_OPERATOR_POST_CALL_WEBHOOK_ID); leave it unset to use the workspace-wide webhook".into());
    }
    Ok(id.to_owned())
}

/// Prompt for agents whose VoiceAgent has no customPrompt.
pub const DEFAULT_PROMPT: &str = "You are the phone assistant of this business. Answer questions about \
    its services and opening hours, check availability and book appointments, and send a \
    confirmation when asked. Be brief and polite.";
