//! Following every shard of a Kinesis stream, across resharding.
//!
//! What AWS documents and this follows:
//! - GetShardIterator: an iterator expires five minutes after it is
//!   returned; `LATEST`, `AT_TIMESTAMP`, `TRIM_HORIZON` and
//!   `AFTER_SEQUENCE_NUMBER` start positions
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html>).
//!   An `ExpiredIteratorException` gets a fresh iterator after the last
//!   sequence number read
//!   (<https://docs.aws.amazon.com/streams/latest/dev/kinesis-fis-expired-iterator.html>).
//! - GetRecords: a null `NextShardIterator` means the shard is closed and
//!   read to its end; `MillisBehindLatest` 0 means caught up; `ChildShards`
//!   comes with the end of a shard
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html>).
//!   A shard takes five GetRecords a second, so a reader that is caught up
//!   waits a poll interval between calls; `ProvisionedThroughputExceeded`
//!   backs off with jitter.
//! - ListShards: pages go on with `NextToken`, and a request that carries
//!   one must not name the stream
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html>).
//! - After a reshard the parents keep the records they had and new records
//!   go to the children; to keep the order of a partition key, read a
//!   parent to its end before its children
//!   (<https://docs.aws.amazon.com/streams/latest/dev/kinesis-using-sdk-java-after-resharding.html>).
//!   A child therefore starts only when each parent (`ParentShardId`,
//!   `AdjacentParentShardId` after a merge) has been read to its end, or is
//!   not being read at all (expired, or closed before the tail started).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::DateTime as AwsTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Item, Position, Start, TailError};

/// How often readers and the shard list are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Wait between GetRecords calls of a reader that is caught up.
    pub poll: Duration,
    /// Wait between ListShards calls that look for new shards.
    pub relist: Duration,
    /// Longest backoff after throttling or an error.
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(1),
            relist: Duration::from_secs(10),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// Where a reader starts in its shard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum From {
    Latest,
    At(DateTime<Utc>),
    /// The shard's oldest record: for a child shard found while following.
    Beginning,
    /// Right after this sequence number: where a consumer left off.
    After(String),
}

/// One shard as ListShards describes it.
#[derive(Debug, Clone)]
struct Shard {
    id: String,
    parents: Vec<String>,
    closed: bool,
}

/// How far along the tail is with a shard.
enum Progress {
    /// Waits for its parents, then starts at the position given.
    Waiting(From),
    /// A reader runs; the flag tells it the shard is closed.
    Reading(Arc<AtomicBool>),
    /// Read to its end, gone, or left out (closed before a `latest` tail).
    Done,
}

/// Why a reader ended.
enum Ending {
    Closed,
    Gone,
}

/// Follows every shard of `stream` from `start`, sending each record to
/// `items`, until the receiver is dropped (then `Ok`) or the stream cannot
/// be listed any more. A shard named in `after` (shard id to the last
/// sequence number a consumer kept) resumes right after that record
/// instead.
pub async fn follow(
    client: Client,
    stream: String,
    start: Start,
    after: BTreeMap<String, String>,
    timing: Timing,
    items: mpsc::Sender<Item>,
) -> Result<(), TailError> {
    let resume = |id: &str| {
        after
            .get(id)
            .map(|seq| Progress::Waiting(From::After(seq.clone())))
    };
    let mut shards: BTreeMap<String, Progress> = BTreeMap::new();
    for shard in list_shards(&client, &stream, &timing).await? {
        let progress = resume(&shard.id).unwrap_or(match start {
            Start::Latest if shard.closed => Progress::Done,
            Start::Latest => Progress::Waiting(From::Latest),
            Start::Since(t) => Progress::Waiting(From::At(t)),
        });
        shards.insert(shard.id.clone(), progress);
    }
    let found_later = match start {
        Start::Latest => From::Beginning,
        Start::Since(t) => From::At(t),
    };
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<(String, Ending)>();
    let mut readers = JoinSet::new();
    let mut relist = tokio::time::interval(timing.relist);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: it starts the readers.
    loop {
        tokio::select! {
            () = items.closed() => return Ok(()),
            Some((id, ending)) = ended.recv() => {
                if let Ending::Gone = ending {
                    tracing::warn!(shard = %id, "the shard disappeared (trimmed or deleted); following the others");
                }
                shards.insert(id, Progress::Done);
            }
            _ = relist.tick() => {}
        }
        let listed = match list_shards(&client, &stream, &timing).await {
            Ok(listed) => listed,
            Err(e @ TailError::NoStream { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "listing shards failed; trying again later");
                continue;
            }
        };
        for shard in &listed {
            let progress = shards.entry(shard.id.clone()).or_insert_with(|| {
                resume(&shard.id).unwrap_or(Progress::Waiting(found_later.clone()))
            });
            if let Progress::Reading(closed) = progress
                && shard.closed
            {
                closed.store(true, Ordering::Relaxed);
            }
        }
        let ready: Vec<(Shard, From)> = listed
            .iter()
            .filter_map(|shard| match shards.get(&shard.id) {
                Some(Progress::Waiting(from))
                    if shard
                        .parents
                        .iter()
                        .all(|p| matches!(shards.get(p), None | Some(Progress::Done))) =>
                {
                    Some((shard.clone(), from.clone()))
                }
                _ => None,
            })
            .collect();
        for (shard, from) in ready {
            let closed = Arc::new(AtomicBool::new(shard.closed));
            shards.insert(shard.id.clone(), Progress::Reading(Arc::clone(&closed)));
            tracing::debug!(shard = %shard.id, ?from, "reading shard");
            let reader = Reader {
                client: client.clone(),
                stream: stream.clone(),
                shard: shard.id.clone(),
                closed,
                timing,
                items: items.clone(),
            };
            let ended_tx = ended_tx.clone();
            readers.spawn(async move {
                let id = reader.shard.clone();
                if let Some(ending) = reader.read(from).await {
                    let _ = ended_tx.send((id, ending));
                }
            });
        }
    }
}

/// Every shard of `stream`, all pages, retrying throttling.
async fn list_shards(
    client: &Client,
    stream: &str,
    timing: &Timing,
) -> Result<Vec<Shard>, TailError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut attempt = 0;
    loop {
        let request = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        match request.send().await {
            Ok(page) => {
                attempt = 0;
                out.extend(page.shards().iter().map(|s| {
                    Shard {
                        id: s.shard_id().to_owned(),
                        parents: [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                            .into_iter()
                            .flatten()
                            .map(str::to_owned)
                            .collect(),
                        closed: s
                            .sequence_number_range()
                            .and_then(|r| r.ending_sequence_number())
                            .is_some(),
                    }
                }));
                match page.next_token() {
                    Some(next) => token = Some(next.to_owned()),
                    None => return Ok(out),
                }
            }
            Err(err) => {
                let service = err.as_service_error();
                if service.is_some_and(|e| e.is_resource_not_found_exception()) {
                    return Err(TailError::NoStream {
                        stream: stream.to_owned(),
                    });
                }
                attempt += 1;
                let throttled = service.is_some_and(|e| e.is_limit_exceeded_exception());
                if !throttled && attempt > 3 {
                    return Err(TailError::ListShards {
                        stream: stream.to_owned(),
                        message: DisplayErrorContext(&err).to_string(),
                    });
                }
                if service.is_some_and(|e| e.is_expired_next_token_exception()) {
                    out.clear();
                    token = None;
                }
                tokio::time::sleep(crate::retry::backoff(
                    attempt,
                    Duration::from_millis(200),
                    timing.backoff_max,
                ))
                .await;
            }
        }
    }
}

/// Reads one shard in order and hands each record on.
struct Reader {
    client: Client,
    stream: String,
    shard: String,
    closed: Arc<AtomicBool>,
    timing: Timing,
    items: mpsc::Sender<Item>,
}

/// What to do about a failed call.
enum Next {
    Retry,
    NewIterator,
    Gone,
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
    shard: &str,
) -> Next {
    match err.code() {
        Some("ExpiredIteratorException") => Next::NewIterator,
        Some("ResourceNotFoundException") => Next::Gone,
        Some("ProvisionedThroughputExceededException" | "KMSThrottlingException") => {
            tracing::debug!(shard, "throttled; backing off");
            Next::Retry
        }
        _ => {
            tracing::warn!(shard, error = %DisplayErrorContext(err), "reading the shard failed; trying again");
            Next::Retry
        }
    }
}

/// Highest GetRecords rate per shard: five calls a second.
const MIN_GAP: Duration = Duration::from_millis(200);

impl Reader {
    /// Reads from `from` to the shard's end; `None` when nobody listens.
    async fn read(self, from: From) -> Option<Ending> {
        let shard: Arc<str> = Arc::from(self.shard.as_str());
        let mut last: Option<String> = match &from {
            From::After(seq) => Some(seq.clone()),
            _ => None,
        };
        let mut attempt = 0u32;
        'iterator: loop {
            let mut request = self
                .client
                .get_shard_iterator()
                .stream_name(&self.stream)
                .shard_id(&self.shard);
            request = match (&last, &from) {
                (Some(seq), _) | (None, From::After(seq)) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(seq),
                (None, From::Latest) => request.shard_iterator_type(ShardIteratorType::Latest),
                (None, From::Beginning) => {
                    request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                }
                (None, From::At(t)) => request
                    .shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(AwsTime::from_millis(t.timestamp_millis())),
            };
            let mut iterator = match request.send().await {
                Ok(answer) => answer.shard_iterator?.to_owned(),
                Err(err) => {
                    if let Next::Gone = classify(&err, &self.shard) {
                        return Some(Ending::Gone);
                    }
                    attempt += 1;
                    self.back_off(attempt).await;
                    continue 'iterator;
                }
            };
            loop {
                if self.items.is_closed() {
                    return None;
                }
                let page = match self
                    .client
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(1000)
                    .send()
                    .await
                {
                    Ok(page) => page,
                    Err(err) => match classify(&err, &self.shard) {
                        Next::Gone => return Some(Ending::Gone),
                        Next::NewIterator => continue 'iterator,
                        Next::Retry => {
                            attempt += 1;
                            self.back_off(attempt).await;
                            continue;
                        }
                    },
                };
                attempt = 0;
                for record in page.records() {
                    let item = Item {
                        data: bytes::Bytes::copy_from_slice(record.data().as_ref()),
                        too_long: false,
                        at: Position::Shard {
                            shard: Arc::clone(&shard),
                            sequence: record.sequence_number().to_owned(),
                        },
                    };
                    self.items.send(item).await.ok()?;
                    last = Some(record.sequence_number().to_owned());
                }
                let caught_up = page.millis_behind_latest() == Some(0);
                match page.next_shard_iterator() {
                    None => return Some(Ending::Closed),
                    // Kinesis ends a closed shard with a null iterator;
                    // an emulator that keeps handing one out is at the end
                    // when the shard is closed and nothing is left.
                    Some(_)
                        if page.records().is_empty()
                            && caught_up
                            && self.closed.load(Ordering::Relaxed) =>
                    {
                        return Some(Ending::Closed);
                    }
                    Some(next) => iterator = next.to_owned(),
                }
                let wait = if page.records().is_empty() || caught_up {
                    self.timing.poll
                } else {
                    MIN_GAP
                };
                tokio::time::sleep(wait).await;
            }
        }
    }

    async fn back_off(&self, attempt: u32) {
        tokio::time::sleep(crate::retry::backoff(
            attempt,
            MIN_GAP,
            self.timing.backoff_max,
        ))
        .await;
    }
}
