//! Command line and environment: one typed configuration, checked at
//! start with messages that name the flag and the variable at fault.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod bridge;
mod secrets;

pub use secrets::Secrets;

use crate::actionlog::buffer::SpillConfig;
use crate::actionlog::{ActionLogConfig, ShipperConfig, SinkConfig};

/// voice-operator: ElevenLabs voice agents managed from Kubernetes, with a
/// Bedrock webhook bridge and a lossless action log.
#[derive(Debug, Parser)]
#[command(name = "voice-operator", version)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors. Logs go to
    /// standard error; the level comes from RUST_LOG (default `info`).
    #[arg(long, env = "VOICE_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Directory for local state; the JSON-lines action log lives here
    /// unless --action-log-file says otherwise.
    #[arg(
        long,
        env = "VOICE_OPERATOR_DATA_DIR",
        default_value = ".voice-operator",
        global = true
    )]
    pub data_dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with the agent-log action log.
    #[command(subcommand)]
    ActionLog(ActionLogCommand),
    /// Work with the DynamoDB tenant table.
    #[command(subcommand)]
    Dynamodb(DynamodbCommand),
    /// Print the VoiceAgent CustomResourceDefinition as YAML
    /// (`voice-operator crd | kubectl apply -f -`).
    Crd,
    /// Run the VoiceAgent controller (in-cluster config or KUBECONFIG),
    /// with /healthz, /readyz and /metrics on --listen.
    ///
    /// Needs ELEVENLABS_API_KEY in the environment. With leader election
    /// on (the default) only the replica holding the Lease reconciles.
    Controller(ControllerArgs),
    /// Run the controller and the HTTP server together: what the
    /// Deployment runs. Every replica serves HTTP; only the leader
    /// reconciles.
    Run(Box<RunArgs>),
    /// Everything in one process without a cluster or a cloud account:
    /// VoiceAgent manifests from a directory (watched), the same
    /// controller logic, tenant items in SQLite, the action log in
    /// <data-dir>/agent-log.jsonl, the scripted agent, and an offline
    /// ElevenLabs stand-in unless ELEVENLABS_API_KEY is set. Each backend
    /// can be switched to the real one by its flag.
    Local(Box<LocalArgs>),
}

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

    /// Directory of VoiceAgent manifests: every .yaml / .yml file directly
    /// in it (not subdirectories), several documents per file. Watched: an
    /// added, changed or removed manifest is reconciled within
    /// --manifest-poll-ms.
    #[arg(long, env = "VOICE_OPERATOR_MANIFESTS", default_value = "examples")]
    pub manifests: PathBuf,

    /// How often the manifests directory is looked at, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_MANIFEST_POLL_MS", default_value_t = 1000,
          value_parser = whole("--manifest-poll-ms", "VOICE_OPERATOR_MANIFEST_POLL_MS", 50, 60_000))]
    pub manifest_poll_ms: u64,

    #[command(flatten)]
    pub agents: AgentArgs,

    /// Tenant store backend.
    #[arg(long, env = "VOICE_OPERATOR_TENANT_STORE", value_enum, default_value_t = TenantStoreKind::Sqlite)]
    pub tenant_store: TenantStoreKind,

    #[command(flatten)]
    pub table: TableArg,

    /// SQLite file for `--tenant-store sqlite` [default: <data-dir>/tenants.sqlite3].
    #[arg(long, env = "VOICE_OPERATOR_SQLITE_FILE")]
    pub sqlite_file: Option<PathBuf>,

    #[command(flatten)]
    pub bridge: bridge::BridgeArgs,

    #[command(flatten)]
    pub action_log: ActionLogArgs,
}

impl LocalArgs {
    pub fn store_config(&self, data_dir: &Path) -> crate::tenant::StoreConfig {
        store_config(
            self.tenant_store,
            &self.table,
            self.sqlite_file.as_deref(),
            data_dir,
        )
    }
}

/// Settings of `run`: the controller's, the bridge's and the action log's.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub bridge: bridge::BridgeArgs,
    #[command(flatten)]
    pub action_log: ActionLogArgs,
}

/// Which tenant store backs the configuration items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TenantStoreKind {
    /// A DynamoDB table (production).
    Dynamodb,
    /// An embedded SQLite file under the data directory.
    Sqlite,
}

/// Where the tenant configuration lives.
#[derive(Debug, Args)]
pub struct TenantStoreArgs {
    /// Tenant store backend.
    #[arg(long, env = "VOICE_OPERATOR_TENANT_STORE", value_enum, default_value_t = TenantStoreKind::Dynamodb)]
    pub tenant_store: TenantStoreKind,

    #[command(flatten)]
    pub table: TableArg,

    /// SQLite file for `--tenant-store sqlite` [default: <data-dir>/tenants.sqlite3].
    #[arg(long, env = "VOICE_OPERATOR_SQLITE_FILE")]
    pub sqlite_file: Option<PathBuf>,
}

impl TenantStoreArgs {
    pub fn config(&self, data_dir: &Path) -> crate::tenant::StoreConfig {
        store_config(
            self.tenant_store,
            &self.table,
            self.sqlite_file.as_deref(),
            data_dir,
        )
    }
}

fn store_config(
    kind: TenantStoreKind,
    table: &TableArg,
    sqlite_file: Option<&Path>,
    data_dir: &Path,
) -> crate::tenant::StoreConfig {
    match kind {
        TenantStoreKind::Dynamodb => crate::tenant::StoreConfig::DynamoDb {
            table: table.dynamodb_table.clone(),
        },
        TenantStoreKind::Sqlite => crate::tenant::StoreConfig::Sqlite {
            path: sqlite_file
                .map(Path::to_owned)
                .unwrap_or_else(|| data_dir.join("tenants.sqlite3")),
        },
    }
}

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

/// How the agents are made, in `controller`, `run` and `local`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// ElevenLabs API base URL (`local` uses it only when
    /// ELEVENLABS_API_KEY is set).
    #[arg(long, env = "ELEVENLABS_BASE_URL", default_value = crate::elevenlabs::DEFAULT_BASE_URL)]
    pub elevenlabs_base_url: String,

    /// Id of the ElevenLabs workspace secret that holds
    /// VOICE_OPERATOR_LLM_SECRET; ElevenLabs sends it as the bearer token
    /// of every custom-LLM request. Without it the requests carry none.
    #[arg(long, env = "VOICE_OPERATOR_LLM_SECRET_ID")]
    pub llm_secret_id: Option<String>,

    /// System prompt for VoiceAgents without customPrompt.
    #[arg(long, env = "VOICE_OPERATOR_DEFAULT_PROMPT", default_value = DEFAULT_PROMPT)]
    pub default_prompt: String,

    /// Seconds between checks of each agent for changes made by hand in
    /// the ElevenLabs dashboard.
    #[arg(long, env = "VOICE_OPERATOR_RESYNC_SECS", default_value_t = 600,
          value_parser = whole("--resync-secs", "VOICE_OPERATOR_RESYNC_SECS", 10, 86_400))]
    pub resync_secs: u64,
}

impl AgentArgs {
    /// The operator settings, with agents' custom-LLM URLs built on
    /// `public_url`.
    pub fn settings(&self, public_url: String) -> crate::controller::desired::OperatorSettings {
        crate::controller::desired::OperatorSettings {
            public_url,
            llm_secret_id: self.llm_secret_id.clone(),
            default_prompt: self.default_prompt.clone(),
        }
    }

    pub fn timing(&self) -> crate::controller::Timing {
        crate::controller::Timing {
            resync: Duration::from_secs(self.resync_secs),
            ..crate::controller::Timing::default()
        }
    }
}

/// Prompt for agents whose VoiceAgent has no customPrompt.
pub const DEFAULT_PROMPT: &str = "You are the phone assistant of this business. Answer questions about \
    its services and opening hours, check availability and book appointments, and send a \
    confirmation when asked. Be brief and polite.";

impl ControllerArgs {
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .unwrap_or_else(|| format!("voice-operator-{:08x}", fastrand::u32(..)))
    }
}

fn public_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    Ok(raw.trim().trim_end_matches('/').to_owned())
}

/// DynamoDB subcommands.
#[derive(Debug, Subcommand)]
pub enum DynamodbCommand {
    /// Create the tenant table (HASH businessId, RANGE locationId, pay per
    /// request) and wait until it is ACTIVE.
    ///
    /// Safe to run again: an existing table with the right key schema is
    /// left as it is; one with another key schema is an error. Region,
    /// endpoint and credentials come from the AWS SDK's environment
    /// (AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE, ...).
    CreateTable(CreateTableArgs),
}

/// The DynamoDB tenant table, for every command that uses it.
#[derive(Debug, Args)]
pub struct TableArg {
    /// Name of the DynamoDB tenant table. Region, endpoint and credentials
    /// come from the AWS SDK's environment.
    #[arg(long, env = "DYNAMODB_ELEVENLABS_AGENTS_TABLE", default_value = crate::tenant::DEFAULT_TABLE,
          value_parser = table_name)]
    pub dynamodb_table: String,
}

/// Arguments of `dynamodb create-table`.
#[derive(Debug, Args)]
pub struct CreateTableArgs {
    #[command(flatten)]
    pub table: TableArg,

    /// Longest time to wait for the table to become ACTIVE, in seconds.
    #[arg(long, default_value_t = 300,
          env = "VOICE_OPERATOR_TABLE_WAIT_SECS",
          value_parser = whole("--wait-secs", "VOICE_OPERATOR_TABLE_WAIT_SECS", 1, 3600))]
    pub wait_secs: u64,
}

/// Action-log subcommands.
#[derive(Debug, Subcommand)]
pub enum ActionLogCommand {
    /// Ship agent-log records from a JSON-lines file (or standard input) to
    /// the configured sink, for example a local action log into Kinesis.
    ///
    /// Every line is checked against the agent-log format; bad lines are
    /// reported by number and skipped. On SIGTERM or Ctrl-C reading stops
    /// and what was read is flushed within --shutdown-grace-secs. Exits 0
    /// only if every line was valid and delivered.
    Replay(ReplayArgs),
}

/// Arguments of `action-log replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// JSON-lines file to read; `-` reads standard input.
    #[arg(long, short, default_value = "-")]
    pub input: PathBuf,

    #[command(flatten)]
    pub action_log: ActionLogArgs,
}

/// Destinations for agent-log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// A Kinesis stream (production).
    Kinesis,
    /// A JSON-lines file (the embedded default).
    Jsonl,
    /// Standard output, one JSON line per record.
    Stdout,
}

/// Settings of the action log, shared by every command that ships records.
#[derive(Debug, Args)]
pub struct ActionLogArgs {
    /// Where agent-log records go.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_SINK", value_enum, default_value_t = SinkKind::Jsonl)]
    pub action_sink: SinkKind,

    /// Also print every delivered agent-log record on standard output,
    /// whatever the sink.
    #[arg(long, env = "VOICE_OPERATOR_ECHO_ACTIONS", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub echo_actions: bool,

    /// File for `--action-sink jsonl` [default: <data-dir>/agent-log.jsonl].
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_FILE")]
    pub action_log_file: Option<PathBuf>,

    /// Kinesis stream for `--action-sink kinesis`. Region, endpoint and
    /// credentials come from the AWS SDK's environment (AWS_REGION,
    /// AWS_ENDPOINT_URL, AWS_PROFILE, ...).
    #[arg(long, env = "KINESIS_STREAM_NAME", default_value = "resources-operations",
          value_parser = stream_name)]
    pub kinesis_stream: String,

    /// Longest one PutRecords attempt may take, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_KINESIS_TIMEOUT_MS", default_value_t = 5000,
          value_parser = whole("--kinesis-timeout-ms", "VOICE_OPERATOR_KINESIS_TIMEOUT_MS", 100, 120_000))]
    pub kinesis_timeout_ms: u64,

    /// Records the queue between callers and the shipper holds; when it is
    /// full, new records are refused and counted as dropped.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_QUEUE", default_value_t = 65_536,
          value_parser = whole("--action-log-queue", "VOICE_OPERATOR_ACTION_LOG_QUEUE", 1, 16_777_216))]
    pub action_log_queue: u64,

    /// Longest a partial batch waits before it is sent, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_FLUSH_MS", default_value_t = 100,
          value_parser = whole("--action-log-flush-ms", "VOICE_OPERATOR_ACTION_LOG_FLUSH_MS", 1, 60_000))]
    pub action_log_flush_ms: u64,

    /// Memory for records waiting to be delivered, in MiB. Past it, records
    /// go to the spill file, or (without one) the queue backs up.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_MEMORY_MIB", default_value_t = 64,
          value_parser = whole("--action-log-memory-mib", "VOICE_OPERATOR_ACTION_LOG_MEMORY_MIB", 2, 65_536))]
    pub action_log_memory_mib: u64,

    /// Spill file: takes records past the memory cap during a long outage
    /// and those still undelivered at shutdown; the next start ships them
    /// first. Off unless set.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_SPILL")]
    pub action_log_spill: Option<PathBuf>,

    /// Largest size of the spill file, in MiB.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_SPILL_MAX_MIB", default_value_t = 1024,
          value_parser = whole("--action-log-spill-max-mib", "VOICE_OPERATOR_ACTION_LOG_SPILL_MAX_MIB", 1, 1_048_576))]
    pub action_log_spill_max_mib: u64,

    /// Requests in flight or waiting to be retried at once.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_IN_FLIGHT", default_value_t = 4,
          value_parser = whole("--action-log-in-flight", "VOICE_OPERATOR_ACTION_LOG_IN_FLIGHT", 1, 64))]
    pub action_log_in_flight: u64,

    /// Time allowed at shutdown to deliver what is held, in seconds.
    #[arg(long, env = "VOICE_OPERATOR_SHUTDOWN_GRACE_SECS", default_value_t = 20,
          value_parser = whole("--shutdown-grace-secs", "VOICE_OPERATOR_SHUTDOWN_GRACE_SECS", 0, 3600))]
    pub shutdown_grace_secs: u64,
}

/// A setting that parsed but makes no sense.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag} ({env}): {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub env: &'static str,
    pub reason: String,
}

impl ActionLogArgs {
    /// The typed action-log configuration; relative paths stay relative
    /// to the working directory.
    pub fn config(&self, data_dir: &Path) -> Result<ActionLogConfig, ConfigError> {
        let sink = match self.action_sink {
            SinkKind::Kinesis => SinkConfig::Kinesis {
                stream: self.kinesis_stream.clone(),
                attempt_timeout: Duration::from_millis(self.kinesis_timeout_ms),
            },
            SinkKind::Jsonl => SinkConfig::JsonLines {
                path: match &self.action_log_file {
                    Some(path) => {
                        non_empty(path, "--action-log-file", "VOICE_OPERATOR_ACTION_LOG_FILE")?
                    }
                    None => non_empty(data_dir, "--data-dir", "VOICE_OPERATOR_DATA_DIR")?
                        .join("agent-log.jsonl"),
                },
            },
            SinkKind::Stdout => SinkConfig::Stdout,
        };
        let spill = match &self.action_log_spill {
            Some(path) => Some(SpillConfig {
                path: non_empty(
                    path,
                    "--action-log-spill",
                    "VOICE_OPERATOR_ACTION_LOG_SPILL",
                )?,
                max_bytes: self.action_log_spill_max_mib * MIB,
            }),
            None => None,
        };
        if let (SinkConfig::JsonLines { path }, Some(spill)) = (&sink, &spill)
            && path == &spill.path
        {
            return Err(ConfigError {
                flag: "--action-log-spill",
                env: "VOICE_OPERATOR_ACTION_LOG_SPILL",
                reason: format!(
                    "{} is also the action-log file; use another path",
                    path.display()
                ),
            });
        }
        Ok(ActionLogConfig {
            sink,
            echo: self.echo_actions,
            shipper: ShipperConfig {
                queue_capacity: self.action_log_queue as usize,
                flush_interval: Duration::from_millis(self.action_log_flush_ms),
                memory_cap_bytes: (self.action_log_memory_mib * MIB) as usize,
                spill,
                max_in_flight: self.action_log_in_flight as usize,
                ..ShipperConfig::default()
            },
        })
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

const MIB: u64 = 1024 * 1024;

fn non_empty(path: &Path, flag: &'static str, env: &'static str) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError {
            flag,
            env,
            reason: "must not be empty".into(),
        });
    }
    Ok(path.to_path_buf())
}

/// A parser for a whole number in `min..=max` whose error names both the
/// flag and the variable, since either may have supplied the value.
fn whole(
    flag: &'static str,
    env: &'static str,
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |raw| {
        raw.trim()
            .parse::<u64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| {
                format!("expected a whole number from {min} to {max} (set by {flag} or {env})")
            })
    }
}

/// Kinesis stream names: 1 to 128 of `[a-zA-Z0-9_.-]`.
fn stream_name(raw: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("a Kinesis stream name is 1 to 128 letters, digits, '_', '.' or '-' (set by --kinesis-stream or KINESIS_STREAM_NAME)".into())
    }
}

/// DynamoDB table names: 3 to 255 of `[a-zA-Z0-9_.-]`.
fn table_name(raw: &str) -> Result<String, String> {
    let ok = (3..=255).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("a DynamoDB table name is 3 to 255 letters, digits, '_', '.' or '-' (set by --dynamodb-table or DYNAMODB_ELEVENLABS_AGENTS_TABLE)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("voice-operator").chain(args.iter().copied()))
    }

    fn replay_args(cli: Cli) -> ActionLogArgs {
        match cli.command {
            Command::ActionLog(ActionLogCommand::Replay(r)) => r.action_log,
            other => panic!("not a replay: {other:?}"),
        }
    }

    #[test]
    fn create_table_defaults_to_the_seed_table_and_checks_names() {
        let Command::Dynamodb(DynamodbCommand::CreateTable(args)) =
            parse(&["dynamodb", "create-table"]).unwrap().command
        else {
            panic!("not create-table")
        };
        assert_eq!(args.table.dynamodb_table, "elevenlabs-agents");
        assert_eq!(args.wait_secs, 300);
        for bad in ["ab", "a/b", &"t".repeat(256)] {
            let err = parse(&["dynamodb", "create-table", "--dynamodb-table", bad]).unwrap_err();
            assert!(
                err.to_string().contains("DYNAMODB_ELEVENLABS_AGENTS_TABLE"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_put_the_jsonl_log_in_the_data_dir() {
        let cli = parse(&["--data-dir", "/tmp/vo", "action-log", "replay"]).unwrap();
        let data_dir = cli.data_dir.clone();
        let cfg = replay_args(cli).config(&data_dir).unwrap();
        assert_eq!(
            cfg.sink,
            SinkConfig::JsonLines {
                path: "/tmp/vo/agent-log.jsonl".into()
            }
        );
        assert_eq!(cfg.shipper.flush_interval, Duration::from_millis(100));
        assert_eq!(cfg.shipper.queue_capacity, 65_536);
        assert_eq!(cfg.shipper.spill, None);
    }

    #[test]
    fn bad_numbers_name_the_flag_and_the_variable() {
        let err = parse(&["action-log", "replay", "--action-log-flush-ms", "soon"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--action-log-flush-ms"), "{text}");
        assert!(
            text.contains("VOICE_OPERATOR_ACTION_LOG_FLUSH_MS"),
            "{text}"
        );
        let err = parse(&["action-log", "replay", "--action-log-in-flight", "0"]).unwrap_err();
        assert!(err.to_string().contains("from 1 to 64"));
    }

    #[test]
    fn bad_stream_names_are_refused() {
        let err = parse(&["action-log", "replay", "--kinesis-stream", "no spaces"]).unwrap_err();
        assert!(err.to_string().contains("KINESIS_STREAM_NAME"));
    }

    #[test]
    fn the_spill_file_cannot_be_the_log_file() {
        let cli = parse(&[
            "action-log",
            "replay",
            "--action-log-file",
            "a.jsonl",
            "--action-log-spill",
            "a.jsonl",
        ])
        .unwrap();
        let err = replay_args(cli).config(Path::new(".")).unwrap_err();
        assert_eq!(err.env, "VOICE_OPERATOR_ACTION_LOG_SPILL");
    }
}
