//! The production sink: `PutRecords` into a Kinesis stream.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::put_records::{PutRecordsError, PutRecordsOutput};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::future::BoxFuture;

use super::record::EncodedRecord;
use super::sink::{ActionSink, FailureKind, PutOutcome, SinkError};

/// Sends batches to one stream with the client it is given. The client
/// should have the SDK's own retries turned off: the shipper retries, and
/// it must know about every attempt to count records honestly.
pub struct KinesisSink {
    client: Client,
    stream: String,
}

impl KinesisSink {
    /// A sink for `stream` using `client`.
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        KinesisSink {
            client,
            stream: stream.into(),
        }
    }
}

impl ActionSink for KinesisSink {
    fn put<'a>(&'a self, batch: &'a [EncodedRecord]) -> BoxFuture<'a, PutOutcome> {
        Box::pin(async move {
            let entries = batch
                .iter()
                .map(|r| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(r.partition_key.clone())
                        .data(Blob::new(r.data.to_vec()))
                        .build()
                        .expect("data and partition key are always set")
                })
                .collect();
            let sent = self
                .client
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(entries))
                .send()
                .await;
            match sent {
                Ok(output) => outcome_of(batch.len(), &output),
                Err(err) => PutOutcome::Failed(classify(&err)),
            }
        })
    }

    fn describe(&self) -> String {
        format!("Kinesis stream {}", self.stream)
    }
}

/// Reads a `PutRecords` answer entry by entry. An entry is delivered only
/// if it is present and carries no `ErrorCode`; a missing entry (a short
/// answer) counts as failed, so nothing is ever acknowledged unseen.
fn outcome_of(sent: usize, output: &PutRecordsOutput) -> PutOutcome {
    let results = output.records();
    let mut failed = Vec::new();
    let mut reason = None;
    for i in 0..sent {
        match results.get(i) {
            Some(entry) if entry.error_code().is_none() => {}
            Some(entry) => {
                failed.push(i);
                reason.get_or_insert_with(|| {
                    format!(
                        "{}: {}",
                        entry.error_code().unwrap_or_default(),
                        entry.error_message().unwrap_or_default()
                    )
                });
            }
            None => {
                failed.push(i);
                reason.get_or_insert_with(|| {
                    format!("answer had {} results for {sent} records", results.len())
                });
            }
        }
    }
    if failed.is_empty() {
        PutOutcome::Delivered
    } else {
        PutOutcome::Partial {
            failed,
            reason: reason.unwrap_or_default(),
        }
    }
}

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
];

const BLOCKED_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "ResourceInUseException",
    "AccessDeniedException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSNotFoundException",
    "KMSInvalidStateException",
    "KMSOptInRequired",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

fn classify(err: &SdkError<PutRecordsError, HttpResponse>) -> SinkError {
    let message = DisplayErrorContext(err).to_string();
    let kind = match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if RETRYABLE_CODES.contains(&code) {
                FailureKind::Retryable
            } else if BLOCKED_CODES.contains(&code) {
                FailureKind::Blocked
            } else {
                FailureKind::Permanent
            }
        }
        // Unparseable answers come from proxies and overloaded servers
        // (a 500 with an HTML body, a 502 from a load balancer): retry.
        SdkError::ResponseError(_) | SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            FailureKind::Retryable
        }
        // Signing or credential resolution failed before sending.
        SdkError::ConstructionFailure(_) => FailureKind::Blocked,
        _ => FailureKind::Retryable,
    };
    // A 5xx the model does not name is still the server's fault.
    let kind = match (kind, err.raw_response().map(|r| r.status().as_u16())) {
        (FailureKind::Permanent, Some(status)) if status >= 500 || status == 429 => {
            FailureKind::Retryable
        }
        (kind, _) => kind,
    };
    SinkError { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::types::PutRecordsResultEntry;

    fn ok() -> PutRecordsResultEntry {
        PutRecordsResultEntry::builder()
            .sequence_number("1")
            .shard_id("shardId-000000000000")
            .build()
    }

    fn throttled() -> PutRecordsResultEntry {
        PutRecordsResultEntry::builder()
            .error_code("ProvisionedThroughputExceededException")
            .error_message("Rate exceeded for shard")
            .build()
    }

    fn output(entries: Vec<PutRecordsResultEntry>) -> PutRecordsOutput {
        PutRecordsOutput::builder()
            .set_records(Some(entries))
            .build()
            .unwrap()
    }

    #[test]
    fn entries_with_an_error_code_are_never_delivered() {
        let out = output(vec![ok(), throttled(), ok(), throttled()]);
        match outcome_of(4, &out) {
            PutOutcome::Partial { failed, reason } => {
                assert_eq!(failed, [1, 3]);
                assert!(reason.starts_with("ProvisionedThroughputExceededException"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            outcome_of(2, &output(vec![ok(), ok()])),
            PutOutcome::Delivered
        );
    }

    #[test]
    fn a_short_answer_fails_the_missing_entries() {
        match outcome_of(3, &output(vec![ok()])) {
            PutOutcome::Partial { failed, .. } => assert_eq!(failed, [1, 2]),
            other => panic!("{other:?}"),
        }
    }
}
