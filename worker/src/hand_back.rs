//! Jobs a store outage interrupted. A job whose tiles (or archive, or
//! model) could not be read because the store was unavailable — a
//! transient error that outlasted the worker's retries — is handed back to
//! the queue after a pause, as a [`HandedBack`] message carrying when its
//! first outage happened, to be tried again by any worker. Only once its
//! transient deadline has passed, counted from that first outage, are the
//! unread tiles recorded as failures: an outage shorter than the deadline
//! changes no prediction.

use nodal_types::wire::{HandedBack, Job};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The store outages a job met before this delivery. Clocks are assumed
/// NTP-close; a first outage stamped in this worker's future counts as now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Outages {
    /// When the first one happened (Unix milliseconds); `None`: never.
    first_unix_ms: Option<u64>,
    /// Times the job was handed back.
    times: u32,
}

impl Outages {
    /// The history a handed-back job arrived with.
    pub(crate) fn of(handed_back: &HandedBack) -> Self {
        Self {
            first_unix_ms: Some(handed_back.first_outage_unix_ms),
            times: handed_back.times,
        }
    }

    /// Meeting an outage at `now_unix_ms`: true when the job's `deadline`,
    /// from its first outage, has passed (then its unread tiles are
    /// recorded instead of the job being handed back).
    pub(crate) fn past_deadline(&self, now_unix_ms: u64, deadline: Duration) -> bool {
        let first = self.first(now_unix_ms);
        u128::from(now_unix_ms - first) >= deadline.as_millis()
    }

    /// The message that hands `job` back after an outage at `now_unix_ms`.
    pub(crate) fn hand_back(&self, job: Job, now_unix_ms: u64) -> HandedBack {
        HandedBack {
            job,
            first_outage_unix_ms: self.first(now_unix_ms),
            times: self.times + 1,
        }
    }

    /// The first outage, never later than `now_unix_ms`: a time from a
    /// clock running ahead is taken as now (and handed on so), so that the
    /// deadline still comes.
    fn first(&self, now_unix_ms: u64) -> u64 {
        self.first_unix_ms
            .map_or(now_unix_ms, |f| f.min(now_unix_ms))
    }

    /// Times the job was handed back before.
    pub(crate) fn times(&self) -> u32 {
        self.times
    }
}

/// Now, in Unix milliseconds (0 for a clock before 1970).
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_types::wire::ModelRef;
    use uuid::Uuid;

    fn job() -> Job {
        Job {
            run_id: Uuid::from_u128(1),
            job_id: Uuid::from_u128(2),
            index: 0,
            model: ModelRef {
                name: "m".into(),
                version: "1".into(),
                card_key: "models/m/1/card.json".into(),
                onnx_sha256: "00".repeat(32),
            },
            archive_id: "cy-a.0000000000000000".into(),
            cases: vec![],
            traceparent: None,
        }
    }

    #[test]
    fn the_deadline_counts_from_the_first_outage_whoever_meets_the_job() {
        let deadline = Duration::from_secs(10);
        let fresh = Outages::default();
        assert!(!fresh.past_deadline(1_000, deadline), "a first outage");
        let back = fresh.hand_back(job(), 1_000);
        assert_eq!((back.first_outage_unix_ms, back.times), (1_000, 1));
        // Another worker meets it again later: the clock is the message's.
        let again = Outages::of(&back);
        assert!(!again.past_deadline(10_999, deadline));
        assert!(again.past_deadline(11_000, deadline));
        let twice = again.hand_back(job(), 5_000);
        assert_eq!((twice.first_outage_unix_ms, twice.times), (1_000, 2));
    }

    #[test]
    fn a_zero_deadline_records_at_once_and_a_clock_ahead_cannot_stall_it() {
        assert!(Outages::default().past_deadline(5, Duration::ZERO));
        // Handed back by a worker whose clock runs ahead (10 s) ...
        let ahead = Outages::default().hand_back(job(), 10_000);
        let seen = Outages::of(&ahead);
        assert!(!seen.past_deadline(9_000, Duration::from_secs(1)));
        // ... the next worker counts from its own now, and hands that on.
        let back = seen.hand_back(job(), 9_000);
        assert_eq!(back.first_outage_unix_ms, 9_000);
        assert!(Outages::of(&back).past_deadline(10_000, Duration::from_secs(1)));
    }
}
