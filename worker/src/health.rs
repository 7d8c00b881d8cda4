//! Liveness and readiness, shared by the workers of a process and the HTTP
//! endpoints: ready while at least one worker consumes jobs; not live once a
//! worker stopped on a fatal error (no runtime, no such device).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Health of the workers of one process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    consuming: AtomicUsize,
    failed: AtomicBool,
}

/// Marks one worker as consuming until dropped.
#[derive(Debug)]
pub(crate) struct Consuming(Arc<State>);

impl Drop for Consuming {
    fn drop(&mut self) {
        self.0.consuming.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Health {
    /// Ready: some worker is consuming jobs, and none has failed.
    pub fn is_ready(&self) -> bool {
        self.state.consuming.load(Ordering::Acquire) > 0 && self.is_live()
    }

    /// Live: no worker has stopped on a fatal error.
    pub fn is_live(&self) -> bool {
        !self.state.failed.load(Ordering::Acquire)
    }

    /// Count a worker as consuming until the guard is dropped.
    pub(crate) fn consuming(&self) -> Consuming {
        self.state.consuming.fetch_add(1, Ordering::AcqRel);
        Consuming(self.state.clone())
    }

    /// Record that a worker stopped on a fatal error.
    pub(crate) fn fail(&self) {
        self.state.failed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_while_consuming_and_not_after_a_failure() {
        let health = Health::default();
        assert!(!health.is_ready() && health.is_live());
        let a = health.consuming();
        let b = health.clone().consuming();
        drop(a);
        assert!(health.is_ready());
        drop(b);
        assert!(!health.is_ready());
        let _c = health.consuming();
        health.fail();
        assert!(!health.is_ready() && !health.is_live());
    }
}
