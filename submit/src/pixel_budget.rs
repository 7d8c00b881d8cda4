//! A bound on the memory of images decoded at once (`docs/submission.md`,
//! "Memory"): each decode first reserves what its pixels will take and
//! waits while the reservations of the others would pass the budget. An
//! image larger than the whole budget is decoded alone.

use std::sync::{Condvar, Mutex, PoisonError};

/// Bytes a decode of a `width`×`height` image holds at its peak: four
/// RGB-sized buffers (the decoder's planes, its RGB output, and one working
/// copy: the turned image or the tiles cut from it). Measured: one 8192²
/// smear alone peaks at ~860 MB resident, ~4.5 × its 192 MiB of RGB, the
/// process's own ~60 MB included (`docs/benchmarks.md`).
pub fn decode_cost(width: u32, height: u32) -> u64 {
    4 * 3 * u64::from(width) * u64::from(height)
}

/// Default budget of `nodal submit --decode-memory-mib`.
pub const DEFAULT_DECODE_MEMORY_MIB: u64 = 2048;

/// A counting semaphore over bytes.
#[derive(Debug)]
pub struct PixelBudget {
    capacity: u64,
    in_use: Mutex<u64>,
    freed: Condvar,
}

impl PixelBudget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Reserve `bytes`, waiting until they fit (or until nothing else is
    /// reserved, for a request larger than the budget).
    pub fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let mut in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        while *in_use > 0 && *in_use + bytes > self.capacity {
            in_use = self
                .freed
                .wait(in_use)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *in_use += bytes;
        Reservation {
            budget: self,
            bytes,
        }
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        *self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Bytes held from a [`PixelBudget`] until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a PixelBudget,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut in_use = self
            .budget
            .in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *in_use -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn reservations_never_pass_the_budget_and_big_ones_run_alone() {
        let budget = PixelBudget::new(100);
        let peak = AtomicU64::new(0);
        let big_with_others = AtomicU64::new(0);
        let requests: Vec<u64> = (0..200).map(|i| [30, 45, 10, 150][i % 4]).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .unwrap();
        pool.install(|| {
            requests.par_iter().for_each(|&bytes| {
                let _held = budget.reserve(bytes);
                let now = budget.in_use();
                if bytes > 100 && now != bytes {
                    big_with_others.fetch_add(1, Ordering::Relaxed);
                }
                if bytes <= 100 {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            });
        });
        assert!(peak.load(Ordering::Relaxed) <= 100, "{peak:?}");
        assert_eq!(big_with_others.load(Ordering::Relaxed), 0);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn the_cost_of_a_16384_square_image() {
        assert_eq!(decode_cost(16_384, 16_384), 3_221_225_472);
    }
}
