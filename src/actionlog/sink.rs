//! Where records end up: the trait the shipper sends to, and the
//! JSON-lines sinks (a file, the embedded default, and stdout).

use futures::future::BoxFuture;
use std::path::Path;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::record::EncodedRecord;

/// A destination for batches of records.
pub trait ActionSink: Send + Sync + 'static {
    /// Sends one batch and reports, per record, what became of it.
    fn put<'a>(&'a self, batch: &'a [EncodedRecord]) -> BoxFuture<'a, PutOutcome>;

    /// Names the destination for logs and start-up messages.
    fn describe(&self) -> String;
}

/// What a sink says about one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// Every record was accepted.
    Delivered,
    /// The request went through but these records (indices into the
    /// batch) were refused; the others were accepted.
    Partial { failed: Vec<usize>, reason: String },
    /// Nothing was accepted.
    Failed(SinkError),
}

/// Why a whole batch failed, classified where the response was read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub kind: FailureKind,
    pub message: String,
}

/// How the shipper should react to a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, server errors, timeouts, connection failures.
    Retryable,
    /// The sink cannot take anything until someone fixes it (missing
    /// stream, denied access, bad credentials): keep the records, retry
    /// slowly, shout.
    Blocked,
    /// The request itself was refused; retrying it unchanged cannot help.
    Permanent,
}

impl SinkError {
    /// A retryable failure with this message.
    pub fn retryable(message: impl Into<String>) -> Self {
        SinkError {
            kind: FailureKind::Retryable,
            message: message.into(),
        }
    }
}

/// Writes each record as one JSON line.
pub struct JsonLinesSink<W> {
    out: Mutex<W>,
    name: String,
}

impl JsonLinesSink<tokio::fs::File> {
    /// Appends to `path`, creating it and its directory.
    pub async fn file(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(JsonLinesSink {
            out: Mutex::new(file),
            name: format!("JSON-lines file {}", path.display()),
        })
    }
}

impl JsonLinesSink<tokio::io::Stdout> {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        JsonLinesSink {
            out: Mutex::new(tokio::io::stdout()),
            name: "standard output".to_owned(),
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> ActionSink for JsonLinesSink<W> {
    fn put<'a>(&'a self, batch: &'a [EncodedRecord]) -> BoxFuture<'a, PutOutcome> {
        Box::pin(async move {
            let len = batch.iter().map(|r| r.data.len() + 1).sum();
            let mut lines = Vec::with_capacity(len);
            for record in batch {
                lines.extend_from_slice(&record.data);
                lines.push(b'\n');
            }
            let mut out = self.out.lock().await;
            match out.write_all(&lines).await {
                Ok(()) => match out.flush().await {
                    Ok(()) => PutOutcome::Delivered,
                    Err(e) => PutOutcome::Failed(SinkError::retryable(format!("flush: {e}"))),
                },
                // A short write leaves part of the batch behind; retrying
                // repeats that part (at least once, never lost).
                Err(e) => PutOutcome::Failed(SinkError::retryable(format!("write: {e}"))),
            }
        })
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Delivers to another sink and copies what it accepted to standard
/// output, for watching a local run. The copy is best effort: it never
/// changes what the shipper is told.
pub struct EchoSink {
    primary: std::sync::Arc<dyn ActionSink>,
    echo: JsonLinesSink<tokio::io::Stdout>,
}

impl EchoSink {
    pub fn new(primary: std::sync::Arc<dyn ActionSink>) -> EchoSink {
        EchoSink {
            primary,
            echo: JsonLinesSink::stdout(),
        }
    }
}

impl ActionSink for EchoSink {
    fn put<'a>(&'a self, batch: &'a [EncodedRecord]) -> BoxFuture<'a, PutOutcome> {
        Box::pin(async move {
            let outcome = self.primary.put(batch).await;
            let accepted: Vec<EncodedRecord> = match &outcome {
                PutOutcome::Delivered => batch.to_vec(),
                PutOutcome::Partial { failed, .. } => batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !failed.contains(i))
                    .map(|(_, r)| r.clone())
                    .collect(),
                PutOutcome::Failed(_) => Vec::new(),
            };
            if !accepted.is_empty() {
                let _ = self.echo.put(&accepted).await;
            }
            outcome
        })
    }

    fn describe(&self) -> String {
        format!("{} (echoed to standard output)", self.primary.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn file_sink_appends_one_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent-log.jsonl");
        let sink = JsonLinesSink::file(&path).await.unwrap();
        let batch: Vec<_> = (0..3)
            .map(|i| EncodedRecord {
                partition_key: "B:L".into(),
                data: Bytes::from(format!("{{\"i\":{i}}}")),
            })
            .collect();
        assert_eq!(sink.put(&batch).await, PutOutcome::Delivered);
        assert_eq!(sink.put(&batch[..1]).await, PutOutcome::Delivered);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":0}\n");
        assert!(sink.describe().contains("agent-log.jsonl"));
    }
}
