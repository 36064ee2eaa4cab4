//! Prometheus counters of the agent runtimes, served on `/metrics` next
//! to the routes' and the action log's.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// The exception classes Bedrock's `InvokeAgent` answers with, in its
/// HTTP response or as an event of its response stream, as the
/// `ResponseStream` union names them (API reference,
/// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_ResponseStream.html).
/// An error of a class not listed here is counted as `other`.
pub const BEDROCK_EXCEPTIONS: [&str; 10] = [
    "accessDeniedException",
    "badGatewayException",
    "conflictException",
    "dependencyFailedException",
    "internalServerException",
    "modelNotReadyException",
    "resourceNotFoundException",
    "serviceQuotaExceededException",
    "throttlingException",
    "validationException",
];

/// Counters of the agent runtimes; clones count into the same counters.
#[derive(Debug, Clone, Default)]
pub struct AgentMetrics {
    bedrock_exceptions: Family<Labels, Counter>,
}

impl AgentMetrics {
    /// Puts the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "voice_operator_bedrock_exceptions",
            "Exceptions Bedrock answered InvokeAgent with, in the response or in its event stream, by class (throttlingException, dependencyFailedException, modelNotReadyException, ...; other for any class not known here)",
            self.bedrock_exceptions.clone(),
        );
    }

    /// Counts one Bedrock exception of `class` (one of
    /// [`BEDROCK_EXCEPTIONS`] or `other`).
    pub fn bedrock_exception(&self, class: &'static str) {
        self.bedrock_exceptions
            .get_or_create(&vec![("exception", class)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_exceptions_are_counted_by_class() {
        let metrics = AgentMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.clone().bedrock_exception("throttlingException");
        metrics.bedrock_exception("throttlingException");
        metrics.bedrock_exception("dependencyFailedException");
        let text = crate::controller::metrics::encode(&registry);
        assert!(
            text.contains(
                "voice_operator_bedrock_exceptions_total{exception=\"throttlingException\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "voice_operator_bedrock_exceptions_total{exception=\"dependencyFailedException\"} 1"
            ),
            "{text}"
        );
    }
}
