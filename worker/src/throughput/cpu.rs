//! Tiles over wall time and over the process's CPU time. On a machine
//! shared with other work the wall-clock rates depend on how much of the
//! cores the process got; tiles per CPU-second do not, so they show what
//! the pipeline itself costs.

use serde::Serialize;
use std::time::{Duration, Instant};

/// Linux reports process times in these ticks per second (`USER_HZ`, fixed
/// at 100 in the user ABI).
const USER_HZ: f64 = 100.0;

/// Tiles done over a stretch of wall time and of the process's CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Tiles done.
    pub tiles: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// CPU time of every thread of the process (user + system).
    pub cpu: Duration,
}

impl Throughput {
    /// Tiles per second of wall time.
    pub fn tiles_per_s(&self) -> f64 {
        self.tiles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Tiles per second of CPU time (0 when no CPU time could be read).
    pub fn tiles_per_cpu_s(&self) -> f64 {
        let cpu = self.cpu.as_secs_f64();
        if cpu > 0.0 {
            self.tiles as f64 / cpu
        } else {
            0.0
        }
    }

    /// CPU time over wall time: how many cores the process kept busy.
    pub fn cores_busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A running measurement: started now, finished with the tiles done.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    started: Instant,
    cpu: Duration,
}

impl Stopwatch {
    /// Start counting wall and CPU time.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu: process_cpu_time(),
        }
    }

    /// Wall time so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What `tiles` tiles took since the start.
    pub fn stop(&self, tiles: u64) -> Throughput {
        Throughput {
            tiles,
            elapsed: self.started.elapsed(),
            cpu: process_cpu_time().saturating_sub(self.cpu),
        }
    }
}

/// User + system CPU time of the whole process so far (zero where
/// `/proc/self/stat` cannot be read).
pub fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may hold spaces, ends with ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_secs_f64(ticks as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_up_as_cpu_time() {
        let watch = Stopwatch::start();
        let mut x = 0u64;
        while watch.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let t = watch.stop(100);
        // However loaded the machine, 200 ms of busy work gets a tick or more.
        assert!(t.cpu > Duration::ZERO, "{t:?}");
        assert!(t.tiles_per_cpu_s() > 0.0 && t.tiles_per_s() > 0.0);
        assert!(t.cores_busy() > 0.0 && t.cores_busy() < 64.0, "{t:?}");
        assert_eq!(Throughput::default().tiles_per_cpu_s(), 0.0);
    }
}
