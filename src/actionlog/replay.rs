//! Replaying agent-log records from JSON lines (a local action log, an
//! export) into the action log.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::record::{AgentLogRecord, MAX_RECORD_BYTES};
use super::{ActionLog, LogError};

/// Counts of one replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Non-blank lines read.
    pub lines: u64,
    /// Records handed to the action log.
    pub queued: u64,
    /// Lines refused, each reported with its number.
    pub rejected: u64,
}

/// Lines longer than this cannot hold a record Kinesis would take.
const MAX_LINE_BYTES: usize = 2 * MAX_RECORD_BYTES;

/// Reads `input` to its end (or until `stop` resolves), queueing every
/// valid record and reporting each bad line by number.
pub async fn replay<R: AsyncBufRead + Unpin>(
    input: &mut R,
    log: &ActionLog,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<ReplaySummary> {
    tokio::pin!(stop);
    let mut summary = ReplaySummary::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        let read = tokio::select! {
            read = read_line_capped(input, &mut line) => read?,
            () = &mut stop => {
                tracing::info!(line = number, "stopping the replay on request");
                break;
            }
        };
        let Some(too_long) = read else { break };
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) && !too_long {
            continue;
        }
        summary.lines += 1;
        match parse_line(&line, too_long) {
            Ok(record) => match log.log_when_ready(&record).await {
                Ok(_) => summary.queued += 1,
                Err(err @ LogError::Closed { .. }) => {
                    tracing::error!(line = number, error = %err, "cannot queue");
                    break;
                }
                Err(err) => {
                    tracing::warn!(line = number, error = %err, "skipping line");
                    summary.rejected += 1;
                }
            },
            Err(reason) => {
                tracing::warn!(line = number, error = %reason, "skipping line");
                summary.rejected += 1;
            }
        }
    }
    Ok(summary)
}

/// One line as an agent-log record, or why it is not one.
pub fn parse_line(line: &[u8], too_long: bool) -> Result<AgentLogRecord, String> {
    if too_long {
        return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("not valid UTF-8 (at byte {})", e.valid_up_to()))?;
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    keep_legacy_credits(&mut value);
    let record: AgentLogRecord = serde_json::from_value(value).map_err(|e| e.to_string())?;
    record.validate().map_err(|e| e.to_string())?;
    Ok(record)
}

/// Records written before `metadata.cost` became `{amount, currency,
/// source}` carried a call's ElevenLabs credits there as a bare number;
/// such a record is still read (replay, tail, the dashboard), its figure
/// kept as `metadata.credits` rather than refused.
fn keep_legacy_credits(record: &mut serde_json::Value) {
    let Some(metadata) = record
        .pointer_mut("/data/metadata")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    if metadata
        .get("cost")
        .is_some_and(serde_json::Value::is_number)
        && !metadata.contains_key("credits")
        && let Some(credits) = metadata.remove("cost")
    {
        metadata.insert("credits".into(), credits);
    }
}

/// Reads one line into `line` keeping at most [`MAX_LINE_BYTES`]; `None`
/// at the end of input, otherwise whether the line was cut.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut seen = 0usize;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            return Ok((seen > 0).then_some(seen > MAX_LINE_BYTES));
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        seen += done;
        let ended = done > part.len();
        input.consume(done);
        if ended {
            return Ok(Some(seen - 1 > MAX_LINE_BYTES));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared sample call record, its metadata given a cost as records
    /// before `{amount, currency, source}` wrote it.
    fn legacy_call(cost: &str) -> String {
        let samples = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/agent-log/samples.jsonl"
        ))
        .unwrap();
        let call = samples
            .lines()
            .find(|l| l.contains("\"voice_call\""))
            .unwrap();
        call.replacen(
            "\"metadata\":{",
            &format!("\"metadata\":{{\"cost\":{cost},"),
            1,
        )
    }

    #[test]
    fn a_bare_number_cost_of_an_older_record_is_kept_as_credits() {
        let record = parse_line(legacy_call("752").as_bytes(), false).unwrap();
        let value = serde_json::to_value(&record).unwrap();
        assert_eq!(value.pointer("/data/metadata/credits"), Some(&752.into()));
        assert_eq!(value.pointer("/data/metadata/cost"), None);
    }

    #[test]
    fn a_cost_that_is_neither_a_number_nor_a_cost_is_still_refused() {
        let error = parse_line(legacy_call("\"cheap\"").as_bytes(), false).unwrap_err();
        assert!(
            error.contains("cost") || error.contains("invalid"),
            "{error}"
        );
    }
}
