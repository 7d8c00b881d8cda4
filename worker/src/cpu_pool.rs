//! The CPU pool: decoding and batch assembly run on a fixed set of threads,
//! off the async runtime, and are awaited through a oneshot.

use crate::error::WorkerError;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A fixed-size pool of threads for CPU-bound work. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CpuPool {
    pool: Arc<rayon::ThreadPool>,
}

/// The pool went away before the work finished (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the CPU pool dropped the work (a panic in the pool)")]
pub struct PoolGone;

impl CpuPool {
    /// A pool of `threads` threads named `nodal-cpu-N`.
    pub fn new(threads: usize) -> Result<Self, WorkerError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("nodal-cpu-{i}"))
            .build()
            .map_err(|e| WorkerError::Config(format!("cannot start the CPU pool: {e}")))?;
        Ok(Self {
            pool: Arc::new(pool),
        })
    }

    /// Run `work` on the pool and wait for its result without blocking the runtime.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolGone> {
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            // The receiver may be gone (the job was cancelled): nothing to do then.
            let _ = tx.send(work());
        });
        rx.await.map_err(|_| PoolGone)
    }

    /// Run `work` inside the pool so that rayon's parallel iterators in it
    /// use the pool's threads; waits without blocking the runtime.
    pub async fn install<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolGone> {
        let pool = self.pool.clone();
        self.run(move || pool.install(work)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_off_the_runtime_and_returns_it() {
        let pool = CpuPool::new(2).expect("pool");
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("ran");
        assert!(name.is_some_and(|n| n.starts_with("nodal-cpu-")));
        let sum = pool
            .install(|| {
                use rayon::prelude::*;
                (0..1000u64).into_par_iter().sum::<u64>()
            })
            .await
            .expect("ran");
        assert_eq!(sum, 499_500);
    }
}
