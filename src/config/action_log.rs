//! The action log's flags, shared by every command that ships records,
//! and `action-log replay`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::{ConfigError, aws_name, non_empty, whole};
use crate::actionlog::buffer::SpillConfig;
use crate::actionlog::record::ActionType;
use crate::actionlog::tail::kinesis::Timing;
use crate::actionlog::tail::{Filter, OutcomeFilter, Start};
use crate::actionlog::{ActionLogConfig, ShipperConfig, SinkConfig};

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
    /// Follow the action log as it is written, like `kubectl logs -f`: the
    /// Kinesis stream (every shard, across resharding) or the JSON-lines
    /// file, one line per record.
    ///
    /// Each record is printed once (repeats of a requestId are dropped);
    /// what is not an agent-log record is counted and skipped with a
    /// warning. Ctrl-C ends it (exit 0) with a summary on standard error.
    Tail(TailArgs),
}

/// Where `action-log tail` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailFrom {
    /// The Kinesis stream --kinesis-stream names.
    Kinesis,
    /// The JSON-lines file (--action-log-file, or <data-dir>/agent-log.jsonl).
    Jsonl,
}

/// Arguments of `action-log tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub follow: FollowArgs,

    /// Start: `latest` (only new records) or an RFC 3339 time such as
    /// 2026-12-01T09:00:00Z (records with a timestamp from then on;
    /// Kinesis keeps 24 hours unless its retention was raised).
    #[arg(long, default_value = "latest")]
    pub since: Start,

    /// Only this business (repeat for several).
    #[arg(long = "business", value_name = "ID")]
    pub businesses: Vec<String>,

    /// Only this location (repeat for several).
    #[arg(long = "location", value_name = "ID")]
    pub locations: Vec<String>,

    /// Only this action type: sms, email, voice_call or meta_message
    /// (repeat for several).
    #[arg(long = "action", value_name = "TYPE")]
    pub actions: Vec<ActionType>,

    /// Only this outcome: success (sent or delivered), failure, pending,
    /// unknown (pending because nobody knows whether the provider took
    /// it), sent or delivered (repeat for several).
    #[arg(long = "outcome", value_name = "OUTCOME")]
    pub outcomes: Vec<OutcomeFilter>,

    /// Print each record as it is (one JSON document per line) instead of
    /// a readable line.
    #[arg(long)]
    pub json: bool,
}

impl TailArgs {
    /// The records to print.
    pub fn filter(&self) -> Filter {
        Filter {
            businesses: self.businesses.clone(),
            locations: self.locations.clone(),
            actions: self.actions.clone(),
            outcomes: self.outcomes.clone(),
            since: match self.since {
                Start::Latest => None,
                Start::Since(t) => Some(t),
            },
        }
    }
}

/// Where the action log is read from: shared by `action-log tail` and
/// `dashboard`.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// What to follow.
    #[arg(long, value_enum, default_value_t = TailFrom::Jsonl)]
    pub from: TailFrom,

    /// File for `--from jsonl` [default: <data-dir>/agent-log.jsonl].
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_FILE")]
    pub action_log_file: Option<PathBuf>,

    /// Kinesis stream for `--from kinesis`. Region, endpoint and
    /// credentials come from the AWS SDK's environment.
    #[arg(long, env = "KINESIS_STREAM_NAME", default_value = "resources-operations",
          value_parser = aws_name("a Kinesis stream name", 1, 128, "--kinesis-stream", "KINESIS_STREAM_NAME"))]
    pub kinesis_stream: String,

    /// Wait between reads once caught up, in milliseconds (per shard for
    /// Kinesis, which allows five reads a second per shard; new shards are
    /// looked for every ten of these).
    #[arg(long, env = "VOICE_OPERATOR_TAIL_POLL_MS", default_value_t = 1000,
          value_parser = whole("--poll-ms", "VOICE_OPERATOR_TAIL_POLL_MS", 50, 60_000))]
    pub poll_ms: u64,
}

impl FollowArgs {
    /// The file `--from jsonl` follows.
    pub fn file(&self, data_dir: &Path) -> Result<PathBuf, ConfigError> {
        jsonl_file(self.action_log_file.as_deref(), data_dir)
    }

    /// The Kinesis polling intervals.
    pub fn timing(&self) -> Timing {
        let poll = Duration::from_millis(self.poll_ms);
        Timing {
            poll,
            relist: poll * 10,
            ..Timing::default()
        }
    }
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
          value_parser = aws_name("a Kinesis stream name", 1, 128, "--kinesis-stream", "KINESIS_STREAM_NAME"))]
    pub kinesis_stream: String,

    /// Longest one PutRecords attempt may take, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_KINESIS_TIMEOUT_MS", default_value_t = 5000,
          value_parser = whole("--kinesis-timeout-ms", "VOICE_OPERATOR_KINESIS_TIMEOUT_MS", 100, 120_000))]
    pub kinesis_timeout_ms: u64,

    /// Records the queue between callers and the shipper holds; when it is
    /// full, new records are refused and counted as dropped.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_QUEUE", default_value_t = ShipperConfig::default().queue_capacity as u64,
          value_parser = whole("--action-log-queue", "VOICE_OPERATOR_ACTION_LOG_QUEUE", 1, 16_777_216))]
    pub action_log_queue: u64,

    /// Longest a partial batch waits before it is sent, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_FLUSH_MS", default_value_t = ShipperConfig::default().flush_interval.as_millis() as u64,
          value_parser = whole("--action-log-flush-ms", "VOICE_OPERATOR_ACTION_LOG_FLUSH_MS", 1, 60_000))]
    pub action_log_flush_ms: u64,

    /// Memory for records waiting to be delivered, in MiB. Past it, records
    /// go to the spill file, or (without one) the queue backs up.
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_MEMORY_MIB", default_value_t = ShipperConfig::default().memory_cap_bytes as u64 / MIB,
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
    #[arg(long, env = "VOICE_OPERATOR_ACTION_LOG_IN_FLIGHT", default_value_t = ShipperConfig::default().max_in_flight as u64,
          value_parser = whole("--action-log-in-flight", "VOICE_OPERATOR_ACTION_LOG_IN_FLIGHT", 1, 64))]
    pub action_log_in_flight: u64,

    /// Time allowed at shutdown to deliver what is held, in seconds.
    #[arg(long, env = "VOICE_OPERATOR_SHUTDOWN_GRACE_SECS", default_value_t = 20,
          value_parser = whole("--shutdown-grace-secs", "VOICE_OPERATOR_SHUTDOWN_GRACE_SECS", 0, 3600))]
    pub shutdown_grace_secs: u64,
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
                path: jsonl_file(self.action_log_file.as_deref(), data_dir)?,
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

/// The JSON-lines action log: `--action-log-file`, else
/// `<data-dir>/agent-log.jsonl`.
fn jsonl_file(file: Option<&Path>, data_dir: &Path) -> Result<PathBuf, ConfigError> {
    match file {
        Some(path) => non_empty(path, "--action-log-file", "VOICE_OPERATOR_ACTION_LOG_FILE"),
        None => Ok(
            non_empty(data_dir, "--data-dir", "VOICE_OPERATOR_DATA_DIR")?.join("agent-log.jsonl"),
        ),
    }
}
