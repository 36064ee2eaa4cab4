//! Flags of `local`: everything in one process, without a cluster.

use std::path::PathBuf;

use clap::Args;

use super::{ActionLogArgs, AgentArgs, TenantStoreArgs, bridge, public_url, whole};

/// Settings of `local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// HTTP listen address; port 0 takes a free port (the start-up report
    /// names it).
    #[arg(long, env = "VOICE_OPERATOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,

    /// The URL ElevenLabs reaches this process at (a tunnel to --listen);
    /// agents' custom-LLM URLs are built from it [default: http://<listen>].
    #[arg(long, env = "VOICE_OPERATOR_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,

    /// Directory of VoiceAgent and VoiceAgentTemplate manifests: every
    /// .yaml / .yml file directly in it (not subdirectories), several
    /// documents per file. Watched: an added, changed or removed manifest
    /// is reconciled within --manifest-poll-ms.
    #[arg(long, env = "VOICE_OPERATOR_MANIFESTS", default_value = "examples")]
    pub manifests: PathBuf,

    /// How often the manifests directory is looked at, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_MANIFEST_POLL_MS", default_value_t = 1000,
          value_parser = whole("--manifest-poll-ms", "VOICE_OPERATOR_MANIFEST_POLL_MS", 50, 60_000))]
    pub manifest_poll_ms: u64,

    #[command(flatten)]
    pub agents: AgentArgs,

    #[command(flatten)]
    pub tenant: TenantStoreArgs,

    #[command(flatten)]
    pub bridge: bridge::BridgeArgs,

    #[command(flatten)]
    pub action_log: ActionLogArgs,
}
