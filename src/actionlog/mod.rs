//! The action log (the seed's KinesisLogger): one agent-log record per
//! external action the agent takes, shipped without blocking the caller
//! and without losing records.
//!
//! Callers hold a cheap clonable [`ActionLog`]. Each call builds and
//! encodes the record on the caller's side and puts it on a bounded queue
//! without waiting; a background shipper batches, sends and retries.

pub mod batch;
pub mod buffer;
pub mod cost;
pub mod kinesis;
pub mod metrics;
pub mod record;
pub mod replay;
mod shipper;
pub mod sink;
pub mod tail;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

pub use cost::{Cost, CostSource, Money};
pub use metrics::{Metrics, MetricsSnapshot};
pub use record::{
    Action, AgentLogRecord, EmailProvider, EncodedRecord, Outcome, Recipient, RecordError,
    SmsProvider, VoiceCall,
};
pub use shipper::{ShipperConfig, ShutdownReport};
pub use sink::{ActionSink, FailureKind, PutOutcome, SinkError};

/// Which sink the records go to.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    /// `PutRecords` into a Kinesis stream, with the AWS SDK's standard
    /// environment (region, endpoint, credentials).
    Kinesis {
        stream: String,
        /// Longest one `PutRecords` attempt may take.
        attempt_timeout: Duration,
    },
    /// Appends JSON lines to a file.
    JsonLines { path: PathBuf },
    /// Writes JSON lines to standard output.
    Stdout,
}

/// Everything needed to start the action log.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionLogConfig {
    pub sink: SinkConfig,
    pub shipper: ShipperConfig,
    /// Also print every delivered record on standard output.
    pub echo: bool,
}

impl std::fmt::Display for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkConfig::Kinesis { stream, .. } => write!(f, "Kinesis stream {stream}"),
            SinkConfig::JsonLines { path } => write!(f, "JSON lines in {}", path.display()),
            SinkConfig::Stdout => f.write_str("JSON lines on standard output"),
        }
    }
}

/// Why the action log could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    NoRegion(#[from] crate::aws::NoRegion),
    #[error("cannot open the action-log file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the action-log spill file {path}: {source}")]
    Spill {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a record was not queued. Nothing is queued half-built: on error,
/// the queue is as it was.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid agent-log record: {0}")]
    Invalid(#[from] RecordError),
    #[error(
        "action-log queue is full ({capacity} records waiting); record {request_id} was dropped"
    )]
    QueueFull { request_id: Uuid, capacity: usize },
    #[error("the action log is shut down; record {request_id} was dropped")]
    Closed { request_id: Uuid },
}

/// The caller's handle: clone it freely; logging never waits.
#[derive(Clone)]
pub struct ActionLog {
    tx: mpsc::Sender<EncodedRecord>,
    metrics: Arc<Metrics>,
    capacity: usize,
}

/// Owns the background shipper; shut it down to flush.
pub struct ShipperHandle {
    stop: oneshot::Sender<Instant>,
    task: JoinHandle<ShutdownReport>,
}

impl ShipperHandle {
    /// Stops taking new records and flushes what is held for at most
    /// `grace`. What is still undelivered then goes to the spill file (if
    /// configured); the report says how many records that was.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let _ = self.stop.send(Instant::now() + grace);
        self.task
            .await
            .expect("the action-log shipper does not panic")
    }
}

impl ActionLog {
    /// Starts the action log with the sink `config` names.
    pub async fn open(config: &ActionLogConfig) -> Result<(ActionLog, ShipperHandle), StartError> {
        let sink: Arc<dyn ActionSink> = match &config.sink {
            SinkConfig::Kinesis {
                stream,
                attempt_timeout,
            } => {
                // The shipper retries failed entries itself; SDK retries
                // would resend the whole batch.
                let sdk = crate::aws::load(
                    "the Kinesis sink",
                    RetryConfig::disabled(),
                    *attempt_timeout,
                )
                .await?;
                let client = aws_sdk_kinesis::Client::new(&sdk);
                Arc::new(kinesis::KinesisSink::new(client, stream.clone()))
            }
            SinkConfig::JsonLines { path } => {
                Arc::new(sink::JsonLinesSink::file(path).await.map_err(|source| {
                    StartError::File {
                        path: path.clone(),
                        source,
                    }
                })?)
            }
            SinkConfig::Stdout => Arc::new(sink::JsonLinesSink::stdout()),
        };
        let sink: Arc<dyn ActionSink> = if config.echo && config.sink != SinkConfig::Stdout {
            Arc::new(sink::EchoSink::new(sink))
        } else {
            sink
        };
        Self::start(sink, config.shipper.clone()).map_err(|source| StartError::Spill {
            path: config
                .shipper
                .spill
                .as_ref()
                .map(|s| s.path.clone())
                .unwrap_or_default(),
            source,
        })
    }

    /// Starts the shipper for `sink` on the current Tokio runtime. With a
    /// spill file, records an earlier run left there are shipped first.
    pub fn start(
        sink: Arc<dyn ActionSink>,
        cfg: ShipperConfig,
    ) -> std::io::Result<(ActionLog, ShipperHandle)> {
        let (buffer, recovered) = buffer::Buffer::open(cfg.memory_cap_bytes, cfg.spill.as_ref())?;
        let metrics = Arc::new(Metrics::default());
        if recovered > 0 {
            tracing::info!(
                records = recovered,
                "found undelivered action-log records in the spill file; shipping them first"
            );
            metrics.recovered(recovered as u64);
            metrics.set_spilled(recovered as u64);
        }
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let (stop, stopped) = oneshot::channel();
        tracing::info!(sink = %sink.describe(), "action log started");
        let capacity = cfg.queue_capacity;
        let shipper = shipper::Shipper::new(rx, sink, cfg, Arc::clone(&metrics), buffer);
        let task = tokio::spawn(shipper.run(stopped));
        let log = ActionLog {
            tx,
            metrics,
            capacity,
        };
        Ok((log, ShipperHandle { stop, task }))
    }

    /// Queues a record without waiting. Returns its `requestId`.
    pub fn log(&self, record: &AgentLogRecord) -> Result<Uuid, LogError> {
        let encoded = self.encode(record)?;
        match self.tx.try_send(encoded) {
            Ok(()) => {
                self.metrics.enqueued(1);
                Ok(record.request_id)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.metrics.dropped() {
                    tracing::warn!(
                        capacity = self.capacity,
                        dropped_total = self.metrics.snapshot().dropped,
                        "action-log queue full: dropping records (the sink is not keeping up and the buffer is at its cap)"
                    );
                }
                Err(LogError::QueueFull {
                    request_id: record.request_id,
                    capacity: self.capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.dropped();
                Err(LogError::Closed {
                    request_id: record.request_id,
                })
            }
        }
    }

    /// Queues a record, waiting for room in the queue (never for the
    /// network). For bulk producers such as a replay, not request paths.
    pub async fn log_when_ready(&self, record: &AgentLogRecord) -> Result<Uuid, LogError> {
        let encoded = self.encode(record)?;
        match self.tx.send(encoded).await {
            Ok(()) => {
                self.metrics.enqueued(1);
                Ok(record.request_id)
            }
            Err(_) => {
                self.metrics.dropped();
                Err(LogError::Closed {
                    request_id: record.request_id,
                })
            }
        }
    }

    fn encode(&self, record: &AgentLogRecord) -> Result<EncodedRecord, LogError> {
        record.encode().map_err(|err| self.reject(err))
    }

    fn reject(&self, err: RecordError) -> LogError {
        self.metrics.rejected();
        tracing::warn!(error = %err, "agent-log record rejected");
        LogError::Invalid(err)
    }

    fn log_built(&self, built: Result<AgentLogRecord, RecordError>) -> Result<Uuid, LogError> {
        self.log(&built.map_err(|err| self.reject(err))?)
    }

    /// Logs an SMS sent, received or failed.
    pub fn log_agent_sms(
        &self,
        action: Action,
        provider: SmsProvider,
        message_length: usize,
    ) -> Result<Uuid, LogError> {
        self.log_built(AgentLogRecord::sms(action, provider, message_length))
    }

    /// Logs an email sent, received or failed.
    pub fn log_agent_email(
        &self,
        action: Action,
        provider: EmailProvider,
        subject: Option<String>,
        message_length: usize,
    ) -> Result<Uuid, LogError> {
        self.log_built(AgentLogRecord::email(
            action,
            provider,
            subject,
            message_length,
        ))
    }

    /// Logs a WhatsApp / Messenger message through Meta.
    pub fn log_agent_meta_message(
        &self,
        action: Action,
        message_length: usize,
    ) -> Result<Uuid, LogError> {
        self.log_built(AgentLogRecord::meta_message(action, message_length))
    }

    /// Logs a voice conversation through ElevenLabs.
    pub fn log_agent_voice_call(&self, action: Action, call: VoiceCall) -> Result<Uuid, LogError> {
        self.log_built(AgentLogRecord::voice_call(action, call))
    }

    /// Logs a voice conversation record that stands for the delivered
    /// event `event`; its request id comes from `event` (see
    /// [`AgentLogRecord::for_event`]).
    pub fn log_agent_voice_call_event(
        &self,
        action: Action,
        call: VoiceCall,
        event: &str,
    ) -> Result<Uuid, LogError> {
        self.log_built(AgentLogRecord::voice_call(action, call).map(|r| r.for_event(event)))
    }

    /// The counters as they are now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The counters as a Prometheus collector for `/metrics`, read at
    /// each scrape.
    pub fn collector(&self) -> metrics::Collector {
        metrics::Collector(self.metrics.clone())
    }
}
