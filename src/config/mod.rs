//! Command line and environment: one typed configuration per subcommand,
//! checked at start with messages that name the flag and the variable at
//! fault. Flags are plain data (unit tests build them without touching the
//! process environment); secrets are never flags and come from
//! [`Secrets::from_env`].

pub mod action_log;
pub mod bridge;
pub mod controller;
pub mod dashboard;
pub mod dynamodb;
pub mod local;
pub mod run;
mod secrets;
pub mod tenant;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

pub use self::action_log::{
    ActionLogArgs, ActionLogCommand, FollowArgs, ReplayArgs, SinkKind, TailArgs, TailFrom,
};
pub use self::controller::{AgentArgs, ControllerArgs, DEFAULT_PROMPT};
pub use self::dynamodb::{CreateTableArgs, DynamodbCommand};
pub use self::local::LocalArgs;
pub use self::run::RunArgs;
pub use self::secrets::Secrets;
pub use self::tenant::{TableArg, TenantStoreArgs, TenantStoreKind};
pub use crate::telemetry::LogFormat;

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
    Controller(Box<ControllerArgs>),
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
    /// Consume the action log (Kinesis or the JSON-lines file) into an
    /// embedded SQLite store, checkpointed, and serve its aggregates and a
    /// live feed as a JSON API behind the admin token
    /// (VOICE_OPERATOR_ADMIN_TOKEN) or a business's read-only token.
    Dashboard(Box<dashboard::DashboardArgs>),
}

/// A setting that parsed but makes no sense.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag} ({env}): {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub env: &'static str,
    pub reason: String,
}

pub(crate) fn non_empty(
    path: &Path,
    flag: &'static str,
    env: &'static str,
) -> Result<PathBuf, ConfigError> {
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
pub(crate) fn whole(
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

/// An http(s) URL with a host and nothing after the path; the trailing
/// slash is dropped.
pub(crate) fn public_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    Ok(raw.trim().trim_end_matches('/').to_owned())
}

/// A parser for an AWS resource name (a Kinesis stream, a DynamoDB
/// table): `min` to `max` letters, digits, `_`, `.` or `-`; the error says
/// what `what` is and names the flag and the variable.
pub(crate) fn aws_name(
    what: &'static str,
    min: usize,
    max: usize,
    flag: &'static str,
    env: &'static str,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let ok = (min..=max).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(raw.to_owned())
        } else {
            Err(format!(
                "{what} is {min} to {max} letters, digits, '_', '.' or '-' (set by {flag} or {env})"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;

    use super::*;
    use crate::actionlog::SinkConfig;

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
