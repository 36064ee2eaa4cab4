//! `action-log tail`: follows the action log as it is written, from the
//! Kinesis stream ([`kinesis`]) or the JSON-lines file ([`file`]), and
//! prints the records that pass the filters, one line each.
//!
//! Sources only move bytes; everything about a record (is it one, was it
//! seen already, does it pass the filters, how it reads) is decided here,
//! so both sources behave alike.

pub mod file;
pub mod kinesis;

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::record::{ActionType, AgentLogRecord, DeliveryStatus, SubAction, UNKNOWN_OUTCOME};
use super::replay::parse_line;

/// Where a tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only what is written from now on.
    Latest,
    /// Records whose `timestamp` is at or after this time (Kinesis starts
    /// reading at this arrival time, the file at its beginning).
    Since(DateTime<Utc>),
}

impl FromStr for Start {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("latest") {
            return Ok(Start::Latest);
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Start::Since(t.with_timezone(&Utc)))
            .map_err(|e| {
                format!("{raw:?} is neither `latest` nor an RFC 3339 time such as 2026-12-01T09:00:00Z ({e})")
            })
    }
}

/// How an action ended, as `--outcome` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// `deliveryStatus` sent or delivered.
    Success,
    /// `deliveryStatus` failed (or `subAction` failed).
    Failure,
    /// `deliveryStatus` pending, whether or not the outcome is known.
    Pending,
    /// Pending because nobody knows whether the provider took it.
    Unknown,
    Sent,
    Delivered,
}

impl OutcomeFilter {
    /// Every value, as written on the command line.
    pub const NAMES: [&'static str; 6] = [
        "success",
        "failure",
        "pending",
        "unknown",
        "sent",
        "delivered",
    ];

    fn matches(self, outcome: Shown) -> bool {
        match self {
            OutcomeFilter::Success => matches!(outcome, Shown::Sent | Shown::Delivered),
            OutcomeFilter::Failure => outcome == Shown::Failed,
            OutcomeFilter::Pending => matches!(outcome, Shown::Pending | Shown::Unknown),
            OutcomeFilter::Unknown => outcome == Shown::Unknown,
            OutcomeFilter::Sent => outcome == Shown::Sent,
            OutcomeFilter::Delivered => outcome == Shown::Delivered,
        }
    }
}

impl FromStr for OutcomeFilter {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(match raw.trim().to_ascii_lowercase().as_str() {
            "success" => OutcomeFilter::Success,
            "failure" | "failed" => OutcomeFilter::Failure,
            "pending" => OutcomeFilter::Pending,
            "unknown" => OutcomeFilter::Unknown,
            "sent" => OutcomeFilter::Sent,
            "delivered" => OutcomeFilter::Delivered,
            _ => {
                return Err(format!(
                    "{raw:?} is not an outcome; use one of {}",
                    Self::NAMES.join(", ")
                ));
            }
        })
    }
}

/// The outcome a record shows: its `deliveryStatus`, else what its
/// `subAction` implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Sent,
    Delivered,
    Failed,
    Pending,
    Unknown,
}

impl Shown {
    fn of(record: &AgentLogRecord) -> Shown {
        let m = &record.data.metadata;
        match (m.delivery_status, record.data.sub_action) {
            (Some(DeliveryStatus::Pending), _)
                if m.error_message
                    .as_deref()
                    .is_some_and(|e| e.starts_with(UNKNOWN_OUTCOME)) =>
            {
                Shown::Unknown
            }
            (Some(DeliveryStatus::Pending), _) => Shown::Pending,
            (Some(DeliveryStatus::Sent), _) => Shown::Sent,
            (Some(DeliveryStatus::Delivered), _) => Shown::Delivered,
            (Some(DeliveryStatus::Failed), _) | (None, SubAction::Failed) => Shown::Failed,
            (None, SubAction::Send) => Shown::Sent,
            (None, SubAction::Receive) => Shown::Delivered,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Shown::Sent => "sent",
            Shown::Delivered => "delivered",
            Shown::Failed => "failed",
            Shown::Pending => "pending",
            Shown::Unknown => "unknown",
        }
    }
}

/// Which records are printed; an empty list lets every value through, a
/// list lets through any of its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub businesses: Vec<String>,
    pub locations: Vec<String>,
    pub actions: Vec<ActionType>,
    pub outcomes: Vec<OutcomeFilter>,
    /// Records with an earlier `timestamp` are left out.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    fn passes(&self, record: &AgentLogRecord) -> bool {
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        any(&self.businesses, &record.business_id)
            && any(&self.locations, &record.location_id)
            && (self.actions.is_empty() || self.actions.contains(&record.data.action_type))
            && (self.outcomes.is_empty()
                || self.outcomes.iter().any(|o| o.matches(Shown::of(record))))
            && self.since.is_none_or(|since| record.timestamp >= since)
    }
}

/// How each record is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One readable line: time, tenant, action, target, outcome, detail.
    #[default]
    Text,
    /// The record as it was read, one JSON document per line.
    Json,
}

/// What a source hands over: one record's bytes and where they came from.
#[derive(Debug)]
pub struct Item {
    pub data: Bytes,
    /// The line was longer than a record can be; `data` holds its start.
    pub too_long: bool,
    /// Where it was read, for warnings and for a consumer's checkpoint.
    pub at: Position,
}

/// Where an item was read: enough to resume right after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A Kinesis record: its shard and sequence number.
    Shard { shard: Arc<str>, sequence: String },
    /// A line of a JSON-lines file.
    File {
        path: Arc<Path>,
        /// Where the line starts.
        line: u64,
        /// Where the next line starts: the offset to resume at.
        next: u64,
    },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Shard { shard, sequence } => write!(f, "shard {shard} sequence {sequence}"),
            Position::File { path, line, .. } => write!(f, "{} near byte {line}", path.display()),
        }
    }
}

/// Counts of one tail.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TailSummary {
    /// Records printed.
    pub printed: u64,
    /// Valid records the filters left out.
    pub filtered: u64,
    /// Records seen before (same `requestId`): Kinesis may deliver a
    /// record twice, and consumers keep the first.
    pub duplicates: u64,
    /// Items that were not agent-log records, each reported with a warning.
    pub invalid: u64,
}

impl std::fmt::Display for TailSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} printed, {} filtered out, {} duplicates dropped, {} invalid skipped",
            self.printed, self.filtered, self.duplicates, self.invalid
        )
    }
}

/// Why a tail stopped other than on request.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("Kinesis stream {stream} does not exist (or is not visible with these credentials)")]
    NoStream { stream: String },
    #[error("cannot list the shards of Kinesis stream {stream}: {message}")]
    ListShards { stream: String, message: String },
    #[error("cannot read {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// How many `requestId`s are remembered to drop repeats.
const REMEMBERED_IDS: usize = 100_000;

/// The requestIds seen lately, oldest forgotten first.
struct Seen {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `id` comes by.
    fn first(&mut self, id: Uuid) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// Turns items into printed lines.
struct Printer<'w> {
    filter: Filter,
    format: Format,
    out: &'w mut (dyn Write + Send),
    seen: Seen,
    summary: TailSummary,
}

impl Printer<'_> {
    /// Prints `item` if it is a new record that passes the filters. A
    /// closed output (a pipe into `head`) is an error the caller ends on.
    fn take(&mut self, item: &Item) -> std::io::Result<()> {
        let record = match parse_line(&item.data, item.too_long) {
            Ok(record) => record,
            Err(reason) => {
                self.summary.invalid += 1;
                tracing::warn!(at = %item.at, error = %reason, "skipping what is not an agent-log record");
                return Ok(());
            }
        };
        if !self.seen.first(record.request_id) {
            self.summary.duplicates += 1;
            return Ok(());
        }
        if !self.filter.passes(&record) {
            self.summary.filtered += 1;
            return Ok(());
        }
        match self.format {
            Format::Json => {
                self.out.write_all(item.data.trim_ascii())?;
                self.out.write_all(b"\n")?;
            }
            Format::Text => writeln!(self.out, "{}", line(&record))?,
        }
        self.out.flush()?;
        self.summary.printed += 1;
        Ok(())
    }
}

/// How `record` ended, as `--outcome` names it: sent, delivered, failed,
/// pending or unknown.
pub fn outcome(record: &AgentLogRecord) -> &'static str {
    Shown::of(record).name()
}

/// The value serde writes for `value` (an enum's wire name).
pub fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Longest free text (an error message, a subject) a line shows.
const DETAIL_CHARS: usize = 100;

fn short(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// One readable line: `time business/location action target outcome
/// detail`.
pub fn line(record: &AgentLogRecord) -> String {
    let d = &record.data;
    let m = &d.metadata;
    let recipient = d.recipient.as_ref();
    let target = recipient
        .and_then(|r| r.phone.as_deref().or(r.email.as_deref()))
        .or(m.conversation_id.as_deref())
        .or(recipient.and_then(|r| r.user_id.as_deref()))
        .unwrap_or("-");
    let shown = Shown::of(record);
    let extra = |key: &str| m.extra.get(key).and_then(serde_json::Value::as_str);
    let mut detail = vec![match extra("standIn") {
        // A stand-in (the outbox of `local`) kept it instead of sending it.
        Some(stand_in) => format!("via {stand_in} (as {})", wire(&d.provider)),
        None => format!("via {}", wire(&d.provider)),
    }];
    if let Some(event) = extra("event") {
        detail.push(format!("event {event}"));
    }
    if let Some(id) = &d.external_id {
        detail.push(format!("id {id}"));
    }
    if let Some(secs) = m.call_duration {
        detail.push(format!("{} s", secs.0));
    }
    if let Some(subject) = &m.subject {
        detail.push(format!("subject {:?}", short(subject)));
    }
    if let Some(error) = &m.error_message {
        detail.push(format!("error {:?}", short(error)));
    }
    format!(
        "{}  {}/{}  {:<12} {}  {:<9} {}",
        record
            .timestamp
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        record.business_id,
        record.location_id,
        wire(&d.action_type),
        target,
        shown.name(),
        detail.join(", ")
    )
}

/// Prints what `items` brings until `stop` resolves, the source ends or
/// the output closes. `source` runs alongside and ends when it fails.
pub async fn run(
    mut items: mpsc::Receiver<Item>,
    source: impl std::future::Future<Output = Result<(), TailError>>,
    filter: Filter,
    format: Format,
    out: &mut (dyn Write + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<TailSummary, TailError> {
    tokio::pin!(stop);
    tokio::pin!(source);
    let mut source_done = false;
    let mut printer = Printer {
        filter,
        format,
        out,
        seen: Seen::new(),
        summary: TailSummary::default(),
    };
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            ended = &mut source, if !source_done => {
                source_done = true;
                ended?;
            }
            item = items.recv() => {
                let Some(item) = item else { break };
                match printer.take(&item) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                    Err(e) => return Err(TailError::Output(e)),
                }
            }
        }
    }
    Ok(printer.summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actionlog::{Action, Outcome, Recipient, SmsProvider};

    fn sms(business: &str, outcome: Outcome) -> AgentLogRecord {
        AgentLogRecord::sms(
            Action {
                business_id: business.into(),
                location_id: "L1".into(),
                agent_session_id: None,
                recipient: Recipient::phone("+40721000111"),
                outcome,
            },
            SmsProvider::Twilio,
            20,
        )
        .unwrap()
    }

    #[test]
    fn start_is_latest_or_an_rfc3339_time() {
        assert_eq!("latest".parse::<Start>(), Ok(Start::Latest));
        assert_eq!(
            "2026-12-01T10:00:00+02:00".parse::<Start>(),
            Ok(Start::Since("2026-12-01T08:00:00Z".parse().unwrap()))
        );
        let err = "yesterday".parse::<Start>().unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn outcomes_read_delivery_status_and_unknown_outcomes() {
        let sent = sms(
            "B1",
            Outcome::Sent {
                external_id: Some("SM1".into()),
            },
        );
        let failed = sms("B1", Outcome::failed("no"));
        let unknown = sms(
            "B1",
            Outcome::Unknown {
                error: "timed out".into(),
            },
        );
        let only = |o: &str| Filter {
            outcomes: vec![o.parse().unwrap()],
            ..Filter::default()
        };
        assert!(only("success").passes(&sent) && !only("success").passes(&failed));
        assert!(only("failure").passes(&failed) && !only("failure").passes(&unknown));
        assert!(only("pending").passes(&unknown) && only("unknown").passes(&unknown));
        assert!(!only("unknown").passes(&sent));
        assert!(
            "maybe"
                .parse::<OutcomeFilter>()
                .unwrap_err()
                .contains("success")
        );
    }

    #[test]
    fn a_line_reads_time_tenant_action_target_outcome_and_detail() {
        let mut record = sms("B1", Outcome::failed("MessageRejected:\n not verified"));
        record.timestamp = "2026-12-01T09:00:00.5Z".parse().unwrap();
        assert_eq!(
            line(&record),
            "2026-12-01T09:00:00.500Z  B1/L1  sms          +40721000111  failed    via twilio, error \"MessageRejected: not verified\""
        );
        let mut kept = sms(
            "B1",
            Outcome::Sent {
                external_id: Some("outbox-1".into()),
            },
        );
        kept.data
            .metadata
            .extra
            .insert("standIn".into(), serde_json::json!("outbox"));
        assert!(
            line(&kept).ends_with("sent      via outbox (as twilio), id outbox-1"),
            "{}",
            line(&kept)
        );
    }

    #[test]
    fn repeats_are_dropped_and_old_ids_forgotten() {
        let mut seen = Seen::new();
        let first = Uuid::new_v4();
        assert!(seen.first(first) && !seen.first(first));
        for _ in 0..REMEMBERED_IDS {
            seen.first(Uuid::new_v4());
        }
        assert!(seen.first(first), "forgotten after {REMEMBERED_IDS} others");
    }
}
