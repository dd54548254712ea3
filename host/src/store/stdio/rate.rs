//! How much a workload may log: a token bucket of bytes per second shared
//! by every invocation and both output streams of the workload.
//!
//! Each line costs its logged length plus [`RECORD_COST`] (the record's
//! labels and timestamp, so a flood of empty lines is not free). A line the
//! bucket cannot pay for is dropped and counted. Once dropping starts it
//! goes on until the bucket has refilled to half its burst, so a flood
//! makes one clear gap in the log rather than every other line, and the
//! count is reported as one warning per episode: "N bytes of output
//! dropped". The report comes when the episode ends, when a guest's stream
//! ends (at most once a [`REPORT_INTERVAL`]), and every [`REPORT_INTERVAL`]
//! while a long flood goes on.
//!
//! Taking from the bucket is one atomic operation per line; the clock is
//! read once per write.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What each logged line costs on top of its bytes.
pub const RECORD_COST: u64 = 128;

/// The least time between two reports of dropped output, but for one
/// that ends an episode.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The log-rate budget of one workload (or one shared plugin).
#[derive(Debug)]
pub struct OutputRate {
    /// Bytes per second.
    rate: u64,
    /// The most the bucket holds.
    burst: u64,
    tokens: AtomicI64,
    /// Whether lines are being dropped (an episode is open).
    dropping: AtomicBool,
    /// Bytes dropped and not reported yet.
    dropped: AtomicU64,
    clock: Mutex<Clock>,
}

#[derive(Debug)]
struct Clock {
    refilled: Instant,
    /// When the open episode began, or was last reported.
    episode_since: Option<Instant>,
    last_report: Option<Instant>,
}

/// What a workload's log should say about dropped output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    /// Bytes of guest output dropped since the last report.
    pub bytes: u64,
    /// Whether output flows again (the episode is over).
    pub ended: bool,
}

impl OutputRate {
    /// A budget of `rate` bytes per second; it may spend a whole second's
    /// worth (at least one full line) at once.
    pub fn new(rate: u64, max_line: usize) -> OutputRate {
        let burst = if rate == 0 {
            0
        } else {
            rate.max(max_line as u64 + RECORD_COST)
        };
        OutputRate {
            rate,
            burst,
            tokens: AtomicI64::new(i64::try_from(burst).unwrap_or(i64::MAX)),
            dropping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            clock: Mutex::new(Clock {
                refilled: Instant::now(),
                episode_since: None,
                last_report: None,
            }),
        }
    }

    /// The rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds what the time since the last refill earned; ends a dropping
    /// episode once the bucket is half full again.
    pub fn refill(&self, now: Instant) {
        let mut clock = self.clock();
        let elapsed = now.saturating_duration_since(clock.refilled);
        let earned = (elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
        if earned == 0 {
            return;
        }
        clock.refilled = now;
        let burst = i64::try_from(self.burst).unwrap_or(i64::MAX);
        let earned = i64::try_from(earned).unwrap_or(i64::MAX);
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(earned).min(burst))
            });
        if self.dropping.load(Ordering::Acquire) && self.tokens.load(Ordering::Acquire) >= burst / 2
        {
            self.dropping.store(false, Ordering::Release);
        }
    }

    /// Whether a line costing `cost` may be logged; if not, its
    /// `written` bytes are counted as dropped.
    pub fn admit(&self, cost: u64, written: u64) -> bool {
        if !self.dropping.load(Ordering::Acquire) {
            let cost = i64::try_from(cost).unwrap_or(i64::MAX);
            let taken = self
                .tokens
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                    (t >= cost).then(|| t - cost)
                });
            if taken.is_ok() {
                return true;
            }
            self.dropping.store(true, Ordering::Release);
        }
        self.dropped.fetch_add(written, Ordering::Relaxed);
        false
    }

    /// The report due now, if any: after a write (`stream_ended` false) or
    /// when a guest's output stream ends.
    pub fn report_due(&self, now: Instant, stream_ended: bool) -> Option<DropReport> {
        if self.dropped.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let ended = !self.dropping.load(Ordering::Acquire);
        let mut clock = self.clock();
        let since = *clock.episode_since.get_or_insert(now);
        let quiet = clock
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_INTERVAL);
        let long = now.saturating_duration_since(since) >= REPORT_INTERVAL;
        if !(ended || (stream_ended && quiet) || long) {
            return None;
        }
        clock.last_report = Some(now);
        clock.episode_since = (!ended).then_some(now);
        let bytes = self.dropped.swap(0, Ordering::Relaxed);
        (bytes > 0).then_some(DropReport { bytes, ended })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_once_the_burst_is_spent_and_reported_when_the_stream_ends() {
        let rate = OutputRate::new(10_000, 100);
        let start = Instant::now();
        rate.refill(start);
        let mut logged = 0;
        for _ in 0..1000 {
            if rate.admit(RECORD_COST, 1) {
                logged += 1;
            }
        }
        assert_eq!(
            logged,
            10_000 / RECORD_COST as usize,
            "the burst, then nothing"
        );
        assert_eq!(
            rate.report_due(start, false),
            None,
            "the episode just began"
        );
        let report = rate
            .report_due(start, true)
            .expect("reported at stream end");
        assert_eq!(report.bytes, 1000 - logged as u64);
        assert!(!report.ended);
        assert!(!rate.admit(RECORD_COST, 1), "still dropping");
        assert_eq!(
            rate.report_due(start, true),
            None,
            "one report per interval"
        );
    }

    #[test]
    fn output_flows_again_once_half_the_burst_is_back_and_the_episode_is_reported() {
        let rate = OutputRate::new(10_000, 100);
        let start = Instant::now();
        while rate.admit(RECORD_COST, 7) {}
        rate.refill(start + Duration::from_millis(100));
        assert!(
            !rate.admit(RECORD_COST, 7),
            "a tenth of the burst is not enough"
        );
        rate.refill(start + Duration::from_millis(600));
        assert!(rate.admit(RECORD_COST, 7));
        let report = rate.report_due(start + Duration::from_millis(600), false);
        assert_eq!(
            report,
            Some(DropReport {
                bytes: 14,
                ended: true
            })
        );
    }
}
