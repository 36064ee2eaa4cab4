//! Prometheus metrics of the controller, served on `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::Phase;

use super::reason::Reason;

type Labels = Vec<(&'static str, String)>;

/// Every controller metric, registered once in the process registry.
#[derive(Debug)]
pub struct Metrics {
    reconciliations: Counter,
    failures: Family<Labels, Counter>,
    duration: Histogram,
    by_phase: Family<Labels, Gauge>,
    leader: Gauge,
    phases: Mutex<HashMap<String, Phase>>,
}

const PHASES: [Phase; 5] = [
    Phase::Pending,
    Phase::Active,
    Phase::Disabled,
    Phase::Error,
    Phase::Conflict,
];

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            reconciliations: Counter::default(),
            failures: Family::default(),
            // 5 ms to about 80 s.
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 15)),
            by_phase: Family::default(),
            leader: Gauge::default(),
            phases: Mutex::new(HashMap::new()),
        };
        registry.register(
            "voice_operator_reconciliations",
            "VoiceAgent reconciliations run, successful or not",
            metrics.reconciliations.clone(),
        );
        registry.register(
            "voice_operator_reconcile_failures",
            "Reconciliations that failed, by reason",
            metrics.failures.clone(),
        );
        registry.register(
            "voice_operator_reconcile_duration_seconds",
            "Time one reconciliation took",
            metrics.duration.clone(),
        );
        registry.register(
            "voice_operator_voiceagents",
            "VoiceAgents by the phase their status shows",
            metrics.by_phase.clone(),
        );
        registry.register(
            "voice_operator_leader",
            "1 while this replica holds the leader Lease and reconciles",
            metrics.leader.clone(),
        );
        for phase in PHASES {
            metrics.by_phase.get_or_create(&phase_label(phase)).set(0);
        }
        metrics
    }

    pub fn reconciled(&self, took: Duration, failure: Option<Reason>) {
        self.reconciliations.inc();
        self.duration.observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&vec![("reason", reason.as_str().to_owned())])
                .inc();
        }
    }

    /// Records the phase of VoiceAgent `uid`; `None` when it is gone.
    pub fn phase(&self, uid: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        let before = match phase {
            Some(p) => phases.insert(uid.to_owned(), p),
            None => phases.remove(uid),
        };
        if before != phase {
            if let Some(old) = before {
                self.by_phase.get_or_create(&phase_label(old)).dec();
            }
            if let Some(new) = phase {
                self.by_phase.get_or_create(&phase_label(new)).inc();
            }
        }
    }

    pub fn leader(&self, is_leader: bool) {
        self.leader.set(i64::from(is_leader));
    }
}

fn phase_label(phase: Phase) -> Labels {
    vec![("phase", format!("{phase:?}"))]
}

/// The registry as Prometheus text exposition.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_counted_once_per_voiceagent() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.phase("u1", Some(Phase::Pending));
        metrics.phase("u1", Some(Phase::Active));
        metrics.phase("u2", Some(Phase::Active));
        metrics.phase("u3", Some(Phase::Conflict));
        metrics.phase("u3", None);
        metrics.reconciled(Duration::from_millis(20), None);
        metrics.reconciled(
            Duration::from_millis(20),
            Some(Reason::ElevenLabsRateLimited),
        );
        let text = encode(&registry);
        assert!(
            text.contains("voice_operator_voiceagents{phase=\"Active\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("voice_operator_voiceagents{phase=\"Pending\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("voice_operator_voiceagents{phase=\"Conflict\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("voice_operator_reconciliations_total 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "voice_operator_reconcile_failures_total{reason=\"ElevenLabsRateLimited\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("voice_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
    }
}
