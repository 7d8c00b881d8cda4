//! One retry helper with jittered exponential backoff, used by every call
//! site that talks to a remote service.

use rand::Rng;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub base_delay: Duration,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt` (1-based; attempt 1 has none):
    /// full jitter over an exponentially growing cap.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(2).min(20));
        let cap = exp.min(self.max_delay);
        let millis = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }
}

/// Run `op` until it succeeds, fails with an error `is_transient` rejects,
/// or the attempts are spent; the last error is returned.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    is_transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < policy.max_attempts && is_transient(&e) => {
                attempt += 1;
                tokio::time::sleep(policy.delay(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Five attempts, waiting a few milliseconds between them.
    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let out: Result<u32, &str> = retry(
            quick(),
            |_| true,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 3 { Err("flaky") } else { Ok(n) }
            },
        )
        .await;
        assert_eq!(out, Ok(3));
    }

    #[tokio::test]
    async fn stops_at_permanent_errors_and_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let out: Result<(), &str> = retry(
            quick(),
            |e| *e == "flaky",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("broken")
            },
        )
        .await;
        assert_eq!(out, Err("broken"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_attempts: 4,
            ..quick()
        };
        let out: Result<(), &str> = retry(
            policy,
            |_| true,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("flaky")
            },
        )
        .await;
        assert_eq!(out, Err("flaky"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn delays_grow_and_stay_capped() {
        let p = RetryPolicy::default();
        for attempt in 2..30 {
            assert!(p.delay(attempt) <= p.max_delay);
        }
        assert!(p.delay(2) <= p.base_delay);
    }
}
