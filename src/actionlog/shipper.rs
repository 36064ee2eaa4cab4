//! The background task that moves records from the queue to the sink.
//!
//! It never stops taking records off the queue while the sink is down:
//! they wait in the buffer (memory, then the spill file). Requests go out
//! when a batch is full or the flush timer fires; failed entries come back
//! as retries of their own with jittered exponential backoff.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::batch::BatchLimits;
use super::buffer::{Buffer, Refill, SpillConfig};
use super::metrics::Metrics;
use super::record::EncodedRecord;
use super::sink::{ActionSink, FailureKind, PutOutcome};
use crate::retry::{backoff, jittered};

/// How the shipper batches, buffers and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipperConfig {
    /// Records the queue between callers and the shipper holds.
    pub queue_capacity: usize,
    /// Longest a partial batch waits before it is sent.
    pub flush_interval: Duration,
    /// Bytes of records kept in memory before spilling (or refusing).
    pub memory_cap_bytes: usize,
    /// Overflow file; without it, records past the memory cap back up the
    /// queue and are then dropped (counted).
    pub spill: Option<SpillConfig>,
    /// Requests in flight or waiting to be retried at once.
    pub max_in_flight: usize,
    pub limits: BatchLimits,
    /// First retry delay; doubles per attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            queue_capacity: 65_536,
            flush_interval: Duration::from_millis(100),
            memory_cap_bytes: 64 * 1024 * 1024,
            spill: None,
            max_in_flight: 4,
            limits: super::batch::KINESIS_LIMITS,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// What a shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Records delivered over the shipper's life.
    pub delivered: u64,
    /// Records not delivered when the deadline passed.
    pub undelivered: u64,
    /// Of those, records saved to the spill file for the next start.
    pub saved: u64,
}

impl ShutdownReport {
    /// Undelivered records that were not saved either.
    pub fn lost(&self) -> u64 {
        self.undelivered - self.saved
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delivered {}, undelivered {} (saved to the spill file {}, lost {})",
            self.delivered,
            self.undelivered,
            self.saved,
            self.lost()
        )
    }
}

struct Retry {
    records: Vec<EncodedRecord>,
    attempt: u32,
    due: Instant,
}

struct Flight {
    records: Arc<[EncodedRecord]>,
    attempt: u32,
}

pub(crate) struct Shipper {
    rx: mpsc::Receiver<EncodedRecord>,
    sink: Arc<dyn ActionSink>,
    cfg: ShipperConfig,
    metrics: Arc<Metrics>,
    buffer: Buffer,
    /// A record taken off the queue while the buffer was full.
    held: Option<EncodedRecord>,
    retries: VecDeque<Retry>,
    flights: JoinSet<(u64, PutOutcome)>,
    in_flight: HashMap<u64, Flight>,
    next_flight: u64,
    /// When the oldest unsent record in memory started waiting.
    waiting_since: Option<Instant>,
    intake_closed: bool,
}

impl Shipper {
    pub(crate) fn new(
        rx: mpsc::Receiver<EncodedRecord>,
        sink: Arc<dyn ActionSink>,
        cfg: ShipperConfig,
        metrics: Arc<Metrics>,
        buffer: Buffer,
    ) -> Self {
        Shipper {
            rx,
            sink,
            cfg,
            metrics,
            buffer,
            held: None,
            retries: VecDeque::new(),
            flights: JoinSet::new(),
            in_flight: HashMap::new(),
            next_flight: 0,
            waiting_since: None,
            intake_closed: false,
        }
    }

    /// Runs until shut down: `stop` carries the deadline for the final flush.
    pub(crate) async fn run(mut self, stop: oneshot::Receiver<Instant>) -> ShutdownReport {
        let mut stop = stop;
        let mut deadline: Option<Instant> = None;
        loop {
            self.admit_held();
            let flushing = deadline.is_some() || self.intake_closed;
            self.dispatch(flushing);
            if self.intake_closed && self.idle() {
                break;
            }
            let wake = self.next_wake(deadline);
            tokio::select! {
                biased;
                stopped = &mut stop, if deadline.is_none() => {
                    // A dropped handle means "stop now".
                    deadline = Some(stopped.unwrap_or_else(|_| Instant::now()));
                    // Everything queued before the stop joins the final
                    // flush, in full batches.
                    self.rx.close();
                    self.drain_queue();
                }
                Some(joined) = self.flights.join_next(), if !self.flights.is_empty() => {
                    match joined {
                        Ok((id, outcome)) => self.settle(id, outcome),
                        Err(err) => tracing::error!(error = %err, "action-log send task ended abnormally"),
                    }
                }
                received = self.rx.recv(), if self.held.is_none() && !self.intake_closed => {
                    match received {
                        Some(record) => self.intake(record),
                        None => self.intake_closed = true,
                    }
                }
                _ = sleep_until(wake) => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.finish()
    }

    fn idle(&self) -> bool {
        self.held.is_none()
            && self.buffer.is_empty()
            && self.retries.is_empty()
            && self.in_flight.is_empty()
    }

    /// Takes `first` and whatever else is queued right now.
    fn intake(&mut self, first: EncodedRecord) {
        self.push(first);
        self.drain_queue();
    }

    fn drain_queue(&mut self) {
        while self.held.is_none() {
            match self.rx.try_recv() {
                Ok(record) => self.push(record),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.intake_closed = true;
                    break;
                }
            }
        }
        self.metrics.set_spilled(self.buffer.spilled() as u64);
    }

    fn push(&mut self, record: EncodedRecord) {
        if self.buffer.is_empty() {
            self.waiting_since = Some(Instant::now());
        }
        if let Err(record) = self.buffer.push(record) {
            // Full: stop taking from the queue until there is room. The
            // queue then fills and callers see `QueueFull`, counted.
            self.held = Some(record);
        }
    }

    fn admit_held(&mut self) {
        if let Some(record) = self.held.take()
            && let Err(record) = self.buffer.push(record)
        {
            self.held = Some(record);
        }
    }

    fn dispatch(&mut self, flushing: bool) {
        let now = Instant::now();
        while self.flights.len() < self.cfg.max_in_flight {
            if let Some(i) = self.retries.iter().position(|r| r.due <= now) {
                let retry = self.retries.remove(i).expect("index from position");
                self.send(retry.records, retry.attempt);
                continue;
            }
            // Retries waiting for their turn hold slots too, so an outage
            // does not turn every buffered batch into a failing request.
            if self.flights.len() + self.retries.len() >= self.cfg.max_in_flight
                || self.buffer.is_empty()
            {
                break;
            }
            let timer_fired = self
                .waiting_since
                .is_some_and(|t| now >= t + self.cfg.flush_interval);
            if !(flushing || timer_fired || self.buffer.has_full_batch(self.cfg.limits)) {
                break;
            }
            let (batch, Refill { corrupt }) = self.buffer.take_batch(self.cfg.limits);
            if corrupt > 0 {
                self.metrics.failed(corrupt as u64);
            }
            self.metrics.set_spilled(self.buffer.spilled() as u64);
            self.waiting_since = (!self.buffer.is_empty()).then_some(now);
            if !batch.is_empty() {
                self.send(batch, 0);
            }
        }
    }

    fn send(&mut self, records: Vec<EncodedRecord>, attempt: u32) {
        let id = self.next_flight;
        self.next_flight += 1;
        let records: Arc<[EncodedRecord]> = records.into();
        let sink = Arc::clone(&self.sink);
        let batch = Arc::clone(&records);
        self.flights
            .spawn(async move { (id, sink.put(&batch).await) });
        self.in_flight.insert(id, Flight { records, attempt });
    }

    fn settle(&mut self, id: u64, outcome: PutOutcome) {
        let Some(Flight { records, attempt }) = self.in_flight.remove(&id) else {
            return;
        };
        match outcome {
            PutOutcome::Delivered => self.metrics.delivered(records.len() as u64),
            PutOutcome::Partial { failed, reason } => {
                let delivered = records.len() - failed.len();
                self.metrics.delivered(delivered as u64);
                tracing::warn!(failed = failed.len(), delivered, attempt, %reason,
                    "action-log entries refused; retrying only those");
                let again = failed.iter().map(|&i| records[i].clone()).collect();
                self.retry(again, attempt, false);
            }
            PutOutcome::Failed(err) => match err.kind {
                FailureKind::Retryable => {
                    tracing::warn!(records = records.len(), attempt, error = %err.message,
                        "action-log request failed; will retry");
                    self.retry(records.to_vec(), attempt, false);
                }
                FailureKind::Blocked => {
                    tracing::error!(records = records.len(), attempt, sink = %self.sink.describe(),
                        error = %err.message,
                        "action-log sink refuses all requests; keeping the records and retrying slowly");
                    self.retry(records.to_vec(), attempt, true);
                }
                FailureKind::Permanent if records.len() > 1 => {
                    // One bad record must not sink the rest: try each alone.
                    tracing::warn!(records = records.len(), error = %err.message,
                        "action-log request refused; retrying its records one by one");
                    self.metrics.retried(records.len() as u64);
                    let due = Instant::now();
                    self.retries.extend(records.iter().map(|r| Retry {
                        records: vec![r.clone()],
                        attempt: attempt + 1,
                        due,
                    }));
                }
                FailureKind::Permanent => {
                    // The record itself is written to the error log, so an
                    // operator still has it.
                    tracing::error!(error = %err.message,
                        record = %String::from_utf8_lossy(&records[0].data),
                        "action-log record refused permanently by the sink");
                    self.metrics.failed(1);
                }
            },
        }
    }

    fn retry(&mut self, records: Vec<EncodedRecord>, attempt: u32, slowly: bool) {
        self.metrics.retried(records.len() as u64);
        let attempt = attempt + 1;
        let delay = if slowly {
            jittered(self.cfg.backoff_max)
        } else {
            backoff(attempt, self.cfg.backoff_base, self.cfg.backoff_max)
        };
        self.retries.push_back(Retry {
            records,
            attempt,
            due: Instant::now() + delay,
        });
    }

    fn next_wake(&self, deadline: Option<Instant>) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let timer = self
            .waiting_since
            .filter(|_| !self.buffer.is_empty())
            .map(|t| t + self.cfg.flush_interval);
        [timer, self.retries.iter().map(|r| r.due).min(), deadline]
            .into_iter()
            .flatten()
            .fold(far, Instant::min)
    }

    /// Past the deadline: whatever was not confirmed goes to the spill
    /// file if there is one; the report says what became of it.
    fn finish(mut self) -> ShutdownReport {
        self.flights.abort_all();
        self.rx.close();
        let mut unsettled: Vec<EncodedRecord> = Vec::new();
        let mut flights: Vec<_> = self.in_flight.drain().collect();
        flights.sort_by_key(|(id, _)| *id);
        unsettled.extend(flights.into_iter().flat_map(|(_, f)| f.records.to_vec()));
        unsettled.extend(self.retries.drain(..).flat_map(|r| r.records));
        unsettled.extend(self.held.take());
        while let Ok(record) = self.rx.try_recv() {
            unsettled.push(record);
        }
        let undelivered = (unsettled.len() + self.buffer.len()) as u64;
        let saved = match self.buffer.persist(unsettled) {
            None => 0,
            Some(Ok(saved)) => saved as u64,
            Some(Err(err)) => {
                tracing::error!(error = %err, "cannot save undelivered action-log records to the spill file");
                0
            }
        };
        self.metrics.handed_over(saved);
        self.metrics.failed(undelivered - saved);
        self.metrics.set_spilled(saved);
        ShutdownReport {
            delivered: self.metrics.snapshot().delivered,
            undelivered,
            saved,
        }
    }
}
