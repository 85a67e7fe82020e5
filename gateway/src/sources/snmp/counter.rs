//! Octet-counter arithmetic: one [`CounterState`] per interface and direction turns successive
//! counter readings into a rate, or says why the step is unknown.
//!
//! The rules (RFC 2863 section 3.1.6 and the usual practice of poller software):
//! - a 32-bit counter that went down while the agent kept running wrapped once at 2^32;
//! - a 64-bit counter that went down is a discontinuity (it would take decades to wrap);
//! - an agent whose sysUpTime went down, or advanced much less than the wall clock, restarted:
//!   its counters may have been reset, so the step is unknown rather than a spike;
//! - a switch between 64- and 32-bit counters, a poll that failed in between, or a gap longer
//!   than `max_gap_ms` makes the step unknown too (several 32-bit wraps could hide in it).
//!
//! No I/O and no clock reads: the caller passes the poll time, so the tests use a fake clock.

/// Counter width, which decides whether going down is a wrap or a discontinuity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// ifInOctets/ifOutOctets (Counter32).
    W32,
    /// ifHCInOctets/ifHCOutOctets (Counter64).
    W64,
}

/// One counter reading with the agent's uptime and the poller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// sysUpTime in hundredths of a second.
    pub sys_uptime_cs: u32,
    pub counter: u64,
    pub width: Width,
    /// When the reply arrived, Unix ms (the poller's clock).
    pub now_ms: u64,
}

/// Why a step has no rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// sysUpTime went down (or advanced far less than the wall clock): the agent restarted.
    AgentRestart,
    /// A 64-bit counter went down without a restart.
    Discontinuity,
    /// The agent switched between 32- and 64-bit counters for this interface.
    WidthChanged,
    /// The previous reading is too old: a poll failed or the poller stalled.
    Gap,
    /// The poller's clock did not advance (or went back).
    ClockWentBack,
}

/// What one reading yields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// First reading (or the first after [`CounterState::reset`]): nothing to compare with.
    Baseline,
    /// Bits per second since the previous reading; `wrapped` when a 32-bit wrap was undone.
    Rate {
        bps: f64,
        wrapped: bool,
    },
    Unknown(Unknown),
}

/// sysUpTime may lag the wall clock by this much (poll latency, agent scheduling) before the
/// difference is taken as a restart in between.
const UPTIME_SLACK_MS: u64 = 2_000;

/// The last reading of one counter.
#[derive(Debug, Clone, Default)]
pub struct CounterState {
    last: Option<Reading>,
}

impl CounterState {
    /// Folds in a reading. `max_gap_ms` is the longest step that still gives a rate.
    pub fn update(&mut self, r: Reading, max_gap_ms: u64) -> Step {
        let Some(prev) = self.last.replace(r) else {
            return Step::Baseline;
        };
        if r.now_ms <= prev.now_ms {
            return Step::Unknown(Unknown::ClockWentBack);
        }
        let wall_ms = r.now_ms - prev.now_ms;
        if agent_restarted(prev.sys_uptime_cs, r.sys_uptime_cs, wall_ms) {
            return Step::Unknown(Unknown::AgentRestart);
        }
        if r.width != prev.width {
            return Step::Unknown(Unknown::WidthChanged);
        }
        if wall_ms > max_gap_ms {
            return Step::Unknown(Unknown::Gap);
        }
        let (delta, wrapped) = if r.counter >= prev.counter {
            (r.counter - prev.counter, false)
        } else {
            match r.width {
                Width::W32 => {
                    let prev32 = prev.counter & 0xFFFF_FFFF;
                    let now32 = r.counter & 0xFFFF_FFFF;
                    ((1u64 << 32) - prev32 + now32, true)
                }
                Width::W64 => return Step::Unknown(Unknown::Discontinuity),
            }
        };
        Step::Rate {
            bps: delta as f64 * 8_000.0 / wall_ms as f64,
            wrapped,
        }
    }

    /// Forgets the last reading: the next one is a baseline.
    pub fn reset(&mut self) {
        self.last = None;
    }

    pub fn last(&self) -> Option<&Reading> {
        self.last.as_ref()
    }
}

/// A restart shows as sysUpTime going down, or (when the agent restarted long enough ago to
/// have passed its old uptime) as uptime advancing much less than the wall clock did.
///
/// sysUpTime itself wraps after 497 days; that wrap reads as a restart, which costs one unknown
/// step and never a spike.
pub(crate) fn agent_restarted(prev_cs: u32, now_cs: u32, wall_ms: u64) -> bool {
    if now_cs < prev_cs {
        return true;
    }
    let uptime_ms = u64::from(now_cs - prev_cs) * 10;
    uptime_ms + UPTIME_SLACK_MS + wall_ms / 10 < wall_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: u64 = 30_000;

    /// A fake agent: uptime follows the fake clock from `boot_ms`.
    fn reading(now_ms: u64, boot_ms: u64, counter: u64, width: Width) -> Reading {
        Reading {
            sys_uptime_cs: ((now_ms - boot_ms) / 10) as u32,
            counter,
            width,
            now_ms,
        }
    }

    fn bps(step: Step) -> f64 {
        match step {
            Step::Rate { bps, .. } => bps,
            other => panic!("expected a rate, got {other:?}"),
        }
    }

    #[test]
    fn steady_counter_gives_bits_per_second() {
        let mut c = CounterState::default();
        assert_eq!(
            c.update(reading(10_000, 0, 1_000, Width::W64), GAP),
            Step::Baseline
        );
        // 125_000 bytes in 10 s = 100 kbit/s.
        let r = bps(c.update(reading(20_000, 0, 126_000, Width::W64), GAP));
        assert!((r - 100_000.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn counter32_wrap_is_undone() {
        let mut c = CounterState::default();
        c.update(
            reading(10_000, 0, u64::from(u32::MAX) - 999, Width::W32),
            GAP,
        );
        // 1000 bytes up to the wrap, 1500 after it.
        let s = c.update(reading(20_000, 0, 1_500, Width::W32), GAP);
        assert_eq!(
            s,
            Step::Rate {
                bps: 2_500.0 * 8.0 / 10.0,
                wrapped: true
            }
        );
    }

    #[test]
    fn counter64_going_down_is_a_discontinuity_not_a_wrap() {
        let mut c = CounterState::default();
        c.update(reading(10_000, 0, 5_000_000, Width::W64), GAP);
        assert_eq!(
            c.update(reading(20_000, 0, 10, Width::W64), GAP),
            Step::Unknown(Unknown::Discontinuity)
        );
        // ... and the reading after it is a rate again.
        let r = bps(c.update(reading(30_000, 0, 1_260, Width::W64), GAP));
        assert!((r - 1_000.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn agent_reset_is_unknown_not_a_wrap_or_a_spike() {
        let mut c = CounterState::default();
        c.update(reading(100_000, 0, 4_000_000_000, Width::W32), GAP);
        // The agent rebooted at t=105 s: uptime went down and the counter restarted from 0.
        // Read as a wrap this would be ~300 Mbit/s.
        let s = c.update(reading(110_000, 105_000, 50_000, Width::W32), GAP);
        assert_eq!(s, Step::Unknown(Unknown::AgentRestart));
        let r = bps(c.update(reading(120_000, 105_000, 62_500, Width::W32), GAP));
        assert!((r - 10_000.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn restart_hidden_by_a_long_uptime_is_still_caught() {
        let mut c = CounterState::default();
        // Old agent up 5 s; new agent (booted at 6 s) reports 8 s uptime at t=14 s: uptime went
        // *up*, but by far less than the 9 s of wall time.
        c.update(reading(5_000, 0, 1_000, Width::W64), GAP);
        let s = c.update(reading(14_000, 6_000, 900_000, Width::W64), GAP);
        assert_eq!(s, Step::Unknown(Unknown::AgentRestart));
    }

    #[test]
    fn uptime_lagging_the_wall_clock_a_little_is_not_a_restart() {
        let mut c = CounterState::default();
        c.update(reading(10_000, 0, 0, Width::W64), GAP);
        // The reply was delayed 1.5 s: uptime advanced 8.5 s while the wall clock did 10 s.
        let mut r = reading(20_000, 0, 10_000, Width::W64);
        r.sys_uptime_cs -= 150;
        bps(c.update(r, GAP));
    }

    #[test]
    fn missing_polls_beyond_the_gap_are_unknown_then_rates_resume() {
        let mut c = CounterState::default();
        c.update(reading(10_000, 0, 0, Width::W64), GAP);
        // Three polls at 20, 30, 40 s were lost; the 50 s reading is 40 s after the last one.
        assert_eq!(
            c.update(reading(50_000, 0, 500_000, Width::W64), GAP),
            Step::Unknown(Unknown::Gap)
        );
        let r = bps(c.update(reading(60_000, 0, 501_250, Width::W64), GAP));
        assert!((r - 1_000.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn width_change_and_clock_going_back_are_unknown() {
        let mut c = CounterState::default();
        c.update(reading(10_000, 0, 100, Width::W32), GAP);
        assert_eq!(
            c.update(reading(20_000, 0, 200, Width::W64), GAP),
            Step::Unknown(Unknown::WidthChanged)
        );
        assert_eq!(
            c.update(reading(20_000, 0, 300, Width::W64), GAP),
            Step::Unknown(Unknown::ClockWentBack)
        );
        c.reset();
        assert_eq!(
            c.update(reading(30_000, 0, 400, Width::W64), GAP),
            Step::Baseline
        );
    }
}
