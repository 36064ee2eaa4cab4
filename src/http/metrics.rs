//! Prometheus metrics of the bridge routes, served on `/metrics` next to
//! the controller's and the action log's.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Counters of the bridge routes; clones count into the same counters.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    post_call_ignored: Family<Labels, Counter>,
    custom_llm_retries_followed: Counter,
    buffer_words: Counter,
}

impl HttpMetrics {
    /// Puts the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "voice_operator_post_call_ignored",
            "Post-call events acknowledged without acting on them because their agent or tenant is not managed here, by event type and reason",
            self.post_call_ignored.clone(),
        );
        registry.register(
            "voice_operator_custom_llm_retries_followed",
            "Custom-LLM requests that repeated one already under way (ElevenLabs retries a slow or failed request) and followed its turn instead of starting another",
            self.custom_llm_retries_followed.clone(),
        );
        registry.register(
            "voice_operator_custom_llm_buffer_words",
            "Custom-LLM answers that began with buffer words because the agent had said nothing yet",
            self.buffer_words.clone(),
        );
    }

    /// Counts a retried custom-LLM request that followed its turn.
    pub fn custom_llm_retry_followed(&self) {
        self.custom_llm_retries_followed.inc();
    }

    /// Counts buffer words said while a turn was thinking.
    pub fn buffer_words_said(&self) {
        self.buffer_words.inc();
    }

    /// Counts a post-call event of type `kind` that was acknowledged and
    /// ignored for `reason`.
    pub fn post_call_ignored(&self, kind: &str, reason: &'static str) {
        self.post_call_ignored
            .get_or_create(&vec![
                ("type", kind.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_post_call_events_are_counted_by_type_and_reason() {
        let metrics = HttpMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics
            .clone()
            .post_call_ignored("post_call_audio", "unknown_agent");
        metrics.post_call_ignored("post_call_audio", "unknown_agent");
        let text = crate::controller::metrics::encode(&registry);
        assert!(
            text.contains(
                "voice_operator_post_call_ignored_total{type=\"post_call_audio\",reason=\"unknown_agent\"} 2"
            ),
            "{text}"
        );
    }
}
