//! Counters of the action log, shared by the handle and the shipper.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::time::{SystemTime, UNIX_EPOCH};

/// Live counters; read them with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    enqueued: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    queue_depth: AtomicU64,
    spilled: AtomicU64,
    last_drop_warning_ms: AtomicU64,
}

/// The counters on `/metrics`: `voice_operator_action_log_<name>`.
#[derive(Debug)]
pub struct Collector(pub(crate) Arc<Metrics>);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        let counters = [
            (
                "voice_operator_action_log_enqueued",
                "Agent-log records accepted onto the queue",
                s.enqueued,
            ),
            (
                "voice_operator_action_log_delivered",
                "Agent-log records the sink confirmed",
                s.delivered,
            ),
            (
                "voice_operator_action_log_retried",
                "Agent-log record sends repeated after a failure",
                s.retried,
            ),
            (
                "voice_operator_action_log_failed",
                "Agent-log records given up on (refused permanently, or unsaved at shutdown)",
                s.failed,
            ),
            (
                "voice_operator_action_log_dropped",
                "Agent-log records refused because the queue was full",
                s.dropped,
            ),
            (
                "voice_operator_action_log_rejected",
                "Agent-log records refused as invalid or oversized",
                s.rejected,
            ),
        ];
        for (name, help, value) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        let gauges = [
            (
                "voice_operator_action_log_pending",
                "Agent-log records accepted and not yet delivered",
                s.queue_depth,
            ),
            (
                "voice_operator_action_log_spilled",
                "Agent-log records waiting in the spill file",
                s.spilled,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)?;
        }
        Ok(())
    }
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Records accepted onto the queue.
    pub enqueued: u64,
    /// Records the sink confirmed (never one whose result carried an error).
    pub delivered: u64,
    /// Record sends repeated after a failed entry or a failed request.
    pub retried: u64,
    /// Records given up on: refused permanently by the sink, or unsaved at shutdown.
    pub failed: u64,
    /// Records refused because the queue was full or closed.
    pub dropped: u64,
    /// Records refused as invalid or oversized before being queued.
    pub rejected: u64,
    /// Records accepted and not yet delivered or given up on.
    pub queue_depth: u64,
    /// Of those, records waiting in the spill file.
    pub spilled: u64,
}

impl Metrics {
    pub(crate) fn enqueued(&self, n: u64) {
        self.enqueued.fetch_add(n, Relaxed);
        self.queue_depth.fetch_add(n, Relaxed);
    }

    pub(crate) fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Relaxed);
        self.queue_depth.fetch_sub(n, Relaxed);
    }

    pub(crate) fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Relaxed);
        self.queue_depth.fetch_sub(n, Relaxed);
    }

    /// Records that leave the queue into the spill file at shutdown: kept,
    /// but no longer this process's to deliver.
    pub(crate) fn handed_over(&self, n: u64) {
        self.queue_depth.fetch_sub(n, Relaxed);
    }

    /// Records found in the spill file at start.
    pub(crate) fn recovered(&self, n: u64) {
        self.queue_depth.fetch_add(n, Relaxed);
    }

    pub(crate) fn retried(&self, n: u64) {
        self.retried.fetch_add(n, Relaxed);
    }

    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_spilled(&self, n: u64) {
        self.spilled.store(n, Relaxed);
    }

    /// Counts a dropped record; true at most once a second, so the caller
    /// can warn without flooding the log.
    pub(crate) fn dropped(&self) -> bool {
        self.dropped.fetch_add(1, Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = self.last_drop_warning_ms.load(Relaxed);
        now.saturating_sub(last) >= 1000
            && self
                .last_drop_warning_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            enqueued: self.enqueued.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            retried: self.retried.load(Relaxed),
            failed: self.failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            spilled: self.spilled.load(Relaxed),
        }
    }
}
