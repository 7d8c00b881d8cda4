//! The process's memory, from `/proc/self/status` (Linux): resident set
//! size now (`VmRSS`) and its peak (`VmHWM`), which can be reset to the
//! current size through `/proc/self/clear_refs` so that each stretch of a
//! benchmark has its own peak.

use serde::Serialize;

/// The process's resident memory over one end-to-end measurement, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryUse {
    /// Before the workers started.
    pub before_bytes: u64,
    /// After the warm-up job (models loaded, pools started).
    pub after_warmup_bytes: u64,
    /// When the last result arrived.
    pub end_bytes: u64,
    /// The peak during the timed stretch (the peak since the warm-up when it
    /// could be reset, else since the process started).
    pub peak_bytes: u64,
    /// Whether the peak was reset after the warm-up.
    pub peak_reset: bool,
}

impl MemoryUse {
    /// How far the timed stretch's peak rose above the size after the warm-up.
    pub fn growth_bytes(&self) -> u64 {
        self.peak_bytes.saturating_sub(self.after_warmup_bytes)
    }
}

/// Resident set size now, bytes (0 where `/proc` has no answer).
pub fn rss_bytes() -> u64 {
    status_kib("VmRSS:").map_or(0, |kib| kib * 1024)
}

/// Peak resident set size, bytes (0 where `/proc` has no answer).
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:").map_or(0, |kib| kib * 1024)
}

/// Reset the peak to the current size; false when the kernel refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_at_least_the_current_size() {
        let now = rss_bytes();
        assert!(now > 0, "this test runs on Linux");
        assert!(peak_rss_bytes() >= now);
        if reset_peak_rss() {
            let peak = peak_rss_bytes();
            assert!(peak >= rss_bytes() / 2 && peak > 0);
        }
    }
}
