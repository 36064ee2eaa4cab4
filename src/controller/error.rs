//! What can go wrong in a reconcile, sorted into what is worth retrying
//! soon and what needs a person to change something.

use std::time::Duration;

use crate::elevenlabs::ElevenLabsError;
use crate::tenant::StoreError;

use super::desired::SpecError;
use super::reason::Reason;

/// A reconcile that did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ElevenLabs: {0}")]
    ElevenLabs(#[from] ElevenLabsError),
    #[error("tenant store: {0}")]
    Store(#[from] StoreError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Spec(#[from] SpecError),
}

impl Error {
    /// Short PascalCase cause, for the condition reason, the Event and the
    /// `reason` label of the failure counter.
    pub fn reason(&self) -> Reason {
        match self {
            Error::ElevenLabs(ElevenLabsError::RateLimited { .. }) => Reason::ElevenLabsRateLimited,
            Error::ElevenLabs(ElevenLabsError::Validation { .. }) => Reason::ElevenLabsRejected,
            Error::ElevenLabs(ElevenLabsError::Auth { .. }) => Reason::ElevenLabsAuth,
            Error::ElevenLabs(ElevenLabsError::Timeout { .. }) => Reason::ElevenLabsTimeout,
            Error::ElevenLabs(ElevenLabsError::Server { .. }) => Reason::ElevenLabsServerError,
            Error::ElevenLabs(_) => Reason::ElevenLabsError,
            Error::Store(StoreError::Conflict { .. }) => Reason::TenantOwnedElsewhere,
            Error::Store(StoreError::BadItem { .. }) => Reason::TenantItemInvalid,
            Error::Store(StoreError::Stale { .. }) => Reason::TenantItemChanged,
            Error::Store(StoreError::Superseded { .. }) => Reason::TenantSpecSuperseded,
            Error::Store(_) => Reason::TenantStoreError,
            Error::Kube(_) => Reason::KubernetesError,
            Error::Spec(SpecError::TemplateNotFound { .. }) => Reason::TemplateNotFound,
            Error::Spec(_) => Reason::InvalidSpec,
        }
    }

    /// Errors that retrying cannot fix: the spec, the key or a hand-edited
    /// item must change first. These set phase Error and requeue slowly.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::ElevenLabs(e) => !e.is_retryable(),
            Error::Store(e) => !e.is_retryable(),
            Error::Kube(kube::Error::Api(status)) => {
                // 409 (conflict on patch) and 429/5xx pass; 4xx otherwise do not.
                (400..500).contains(&status.code) && !matches!(status.code, 409 | 429)
            }
            Error::Kube(_) => false,
            Error::Spec(_) => true,
        }
    }

    /// The tenant item changed between this reconcile's read and its
    /// write, or was written from a newer spec than this reconcile's:
    /// reconciling again from fresh reads (and, for the second, a cache
    /// that has caught up) is all it takes. Not a failure to report.
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            Error::Store(StoreError::Stale { .. } | StoreError::Superseded { .. })
        )
    }

    /// How long the server asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::ElevenLabs(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// When to try again after a transient error. A provider that named a
/// wait (`Retry-After`) gets exactly that plus up to a fifth more, so that
/// reconciles throttled together come back spread out; it is the one that
/// knows when capacity returns. Otherwise exponential backoff from `base`
/// with equal jitter (half fixed, half random), capped at `max`. `attempt`
/// counts from 1.
pub fn backoff(
    attempt: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    match retry_after {
        Some(wait) => crate::retry::after_asked(wait),
        None => crate::retry::backoff(attempt, base, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_and_stays_in_its_jitter_band() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        for attempt in 1..=12 {
            let full = base.saturating_mul(1 << (attempt - 1)).min(max);
            for _ in 0..100 {
                let d = backoff(attempt, base, max, None);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
            }
        }
        assert!(backoff(40, base, max, None) <= max);
    }

    #[test]
    fn backoff_waits_retry_after_and_at_most_a_fifth_more() {
        for attempt in [1, 5, 12] {
            let d = backoff(
                attempt,
                Duration::from_millis(500),
                Duration::from_secs(60),
                Some(Duration::from_secs(7)),
            );
            assert!(
                d >= Duration::from_secs(7) && d <= Duration::from_millis(8400),
                "{d:?}"
            );
        }
    }

    #[test]
    fn permanent_and_transient_are_told_apart() {
        let rate = Error::ElevenLabs(ElevenLabsError::RateLimited {
            operation: "POST /v1/convai/agents/create".into(),
            retry_after: Some(Duration::from_secs(3)),
        });
        assert!(!rate.is_permanent());
        assert_eq!(rate.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(rate.reason().as_str(), "ElevenLabsRateLimited");
        let invalid = Error::ElevenLabs(ElevenLabsError::Validation {
            operation: "POST /v1/convai/agents/create".into(),
            status: 422,
            message: "voice_id: Voice 'nope' does not exist".into(),
        });
        assert!(invalid.is_permanent());
        assert_eq!(invalid.reason().as_str(), "ElevenLabsRejected");
        assert!(Error::Spec(SpecError::NoUid).is_permanent());
        let stale = Error::Store(StoreError::Stale {
            key: "B1/L1".into(),
            seen: crate::tenant::Seen::Version(3),
            found: crate::tenant::Seen::Version(4),
        });
        assert!(!stale.is_permanent() && stale.is_stale());
        assert_eq!(stale.reason().as_str(), "TenantItemChanged");
        let older = Error::Store(StoreError::Superseded {
            key: "B1/L1".into(),
            planned: crate::tenant::SpecGeneration::of(Some(3)),
            stored: crate::tenant::SpecGeneration::of(Some(4)),
        });
        assert!(!older.is_permanent() && older.is_stale());
        assert_eq!(older.reason().as_str(), "TenantSpecSuperseded");
        let owned = Error::Store(StoreError::Conflict {
            key: "B1/L1".into(),
            current: Some("uid-a".into()),
            wanted: "uid-b".into(),
        });
        assert!(owned.is_permanent() && !owned.is_stale());
    }
}
