//! Retry timing shared by everything that calls out: the action-log
//! shipper, the ElevenLabs client and the controller.

use std::time::Duration;

/// Exponential backoff with equal jitter: attempt 1 waits between half of
/// `base` and `base`, each later attempt twice as long, up to `max`. Half
/// fixed, half random, so retries from many callers spread out but never
/// fire at once.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    jittered(exp.min(max))
}

/// A wait the server asked for (`Retry-After`): never sooner, and up to a
/// fifth later, so that calls throttled together do not all come back in
/// the same instant.
pub fn after_asked(wait: Duration) -> Duration {
    wait + wait.mul_f64(fastrand::f64() * 0.2)
}

/// Somewhere between half and all of `d`.
pub fn jittered(d: Duration) -> Duration {
    d / 2 + d.mul_f64(fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempt in 1..40 {
            let d = backoff(attempt, base, max);
            let ceiling = (base * 2u32.pow(attempt.min(20) - 1)).min(max);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30, base, max) <= max);
    }

    #[test]
    fn an_asked_wait_is_kept_and_stretched_by_at_most_a_fifth() {
        for _ in 0..100 {
            let d = after_asked(Duration::from_secs(5));
            assert!(
                d >= Duration::from_secs(5) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
    }
}
