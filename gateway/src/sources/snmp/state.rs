//! One target's interface table between polls: names, indexes and counter states, turning each
//! walk into [`RateSample`]s. No I/O and no clock reads (the poll time is passed in).
//!
//! Interfaces are keyed by name (ifName, else ifDescr, else `if<index>`), not by ifIndex: an
//! agent may renumber its interfaces (a reboot, a hot-plugged card, a re-created tunnel), and the
//! series of `eth1` should follow `eth1`. When a name shows up under a new ifIndex the step is
//! unknown (the counters belong to a different row now) and the new index is reported from then
//! on. Two rows with the same name (ifDescr is not unique on every agent) are told apart as
//! `name#index`.

use std::collections::{HashMap, HashSet};

use super::config::Selection;
use super::counter::{agent_restarted, CounterState, Reading, Step, Width};
use crate::records::RateSample;

/// One ifTable/ifXTable row as walked. Missing columns are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfRow {
    pub index: u32,
    pub name: Option<String>,
    pub descr: Option<String>,
    pub hc_in: Option<u64>,
    pub hc_out: Option<u64>,
    pub in32: Option<u32>,
    pub out32: Option<u32>,
}

impl IfRow {
    /// ifName, else ifDescr, else `if<index>`; NULs replaced (names are store keys).
    pub fn display_name(&self) -> String {
        let n = [&self.name, &self.descr]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("if{}", self.index));
        n.replace('\0', "?")
    }

    fn reading(
        &self,
        hc: Option<u64>,
        c32: Option<u32>,
        uptime: u32,
        now_ms: u64,
    ) -> Option<Reading> {
        let (counter, width) = match (hc, c32) {
            (Some(v), _) => (v, Width::W64),
            (None, Some(v)) => (u64::from(v), Width::W32),
            (None, None) => return None,
        };
        Some(Reading {
            sys_uptime_cs: uptime,
            counter,
            width,
            now_ms,
        })
    }
}

/// A complete walk of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    pub sys_uptime_cs: u32,
    pub rows: Vec<IfRow>,
}

/// What one walk or failure did, for the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepStats {
    pub samples: u64,
    /// Samples with at least one direction unknown.
    pub unknown: u64,
    /// Walks in which the agent was seen to have restarted (0 or 1).
    pub restarts: u64,
    pub wraps: u64,
    pub renumbered: u64,
    /// Interfaces that were selected in this walk.
    pub interfaces: u64,
    /// Interfaces answered with 64-bit counters.
    pub hc_interfaces: u64,
}

#[derive(Debug)]
struct IfState {
    index: u32,
    rx: CounterState,
    tx: CounterState,
    last_ts_ms: u64,
}

/// The interface table of one target.
#[derive(Debug)]
pub struct TargetState {
    target: String,
    selection: Selection,
    max_gap_ms: u64,
    ifaces: HashMap<String, IfState>,
    /// The previous poll failed: the next step is unknown for every interface.
    after_failure: bool,
    /// sysUpTime and poll time of the last good walk.
    last_uptime: Option<(u32, u64)>,
}

impl TargetState {
    pub fn new(target: &str, selection: Selection, max_gap_ms: u64) -> TargetState {
        TargetState {
            target: target.to_string(),
            selection,
            max_gap_ms,
            ifaces: HashMap::new(),
            after_failure: false,
            last_uptime: None,
        }
    }

    pub fn interfaces(&self) -> usize {
        self.ifaces.len()
    }

    /// Folds in a successful walk taken at `now_ms`; appends one sample per selected interface
    /// already known (a new interface only gets its baseline).
    pub fn on_walk(&mut self, walk: &Walk, now_ms: u64, out: &mut Vec<RateSample>) -> StepStats {
        let mut stats = StepStats::default();
        let mut seen: HashSet<String> = HashSet::with_capacity(walk.rows.len());
        let after_failure = std::mem::take(&mut self.after_failure);
        // Checked once per walk (every counter would see it too, but a renumbering or a failed
        // poll resets them first, and the restart should still be counted).
        let restarted = self.last_uptime.is_some_and(|(cs, ms)| {
            now_ms > ms && agent_restarted(cs, walk.sys_uptime_cs, now_ms - ms)
        });
        self.last_uptime = Some((walk.sys_uptime_cs, now_ms));
        for row in &walk.rows {
            if !self
                .selection
                .matches(row.index, row.name.as_deref(), row.descr.as_deref())
            {
                continue;
            }
            let mut name = row.display_name();
            if seen.contains(&name) {
                name = format!("{name}#{}", row.index);
                if seen.contains(&name) {
                    continue; // the same ifIndex twice in one walk: ignore the repeat
                }
            }
            seen.insert(name.clone());
            stats.interfaces += 1;
            let rx = row.reading(row.hc_in, row.in32, walk.sys_uptime_cs, now_ms);
            let tx = row.reading(row.hc_out, row.out32, walk.sys_uptime_cs, now_ms);
            if row.hc_in.is_some() && row.hc_out.is_some() {
                stats.hc_interfaces += 1;
            }
            let max_gap = self.max_gap_ms;
            let state = match self.ifaces.get_mut(&name) {
                Some(s) => s,
                None => {
                    let mut s = IfState {
                        index: row.index,
                        rx: CounterState::default(),
                        tx: CounterState::default(),
                        last_ts_ms: now_ms,
                    };
                    if let Some(r) = rx {
                        s.rx.update(r, max_gap);
                    }
                    if let Some(r) = tx {
                        s.tx.update(r, max_gap);
                    }
                    self.ifaces.insert(name, s);
                    continue;
                }
            };
            let mut force_unknown = after_failure || restarted;
            if state.index != row.index {
                stats.renumbered += 1;
                state.index = row.index;
                force_unknown = true;
            }
            if force_unknown {
                state.rx.reset();
                state.tx.reset();
            }
            let mut rate = |c: &mut CounterState, r: Option<Reading>| -> Option<f64> {
                let Some(r) = r else {
                    c.reset();
                    return None;
                };
                match c.update(r, max_gap) {
                    Step::Rate { bps, wrapped } => {
                        stats.wraps += u64::from(wrapped);
                        Some(bps)
                    }
                    Step::Unknown(_) | Step::Baseline => None,
                }
            };
            let in_bps = rate(&mut state.rx, rx);
            let out_bps = rate(&mut state.tx, tx);
            let sample = RateSample {
                target: self.target.clone(),
                if_index: row.index,
                if_name: name,
                ts_ms: now_ms,
                step_ms: now_ms.saturating_sub(state.last_ts_ms),
                in_bps,
                out_bps,
            };
            state.last_ts_ms = now_ms;
            stats.samples += 1;
            stats.unknown += u64::from(in_bps.is_none() || out_bps.is_none());
            out.push(sample);
        }
        // Interfaces gone from the agent (or no longer selected) are forgotten; if one comes
        // back it starts from a new baseline.
        self.ifaces.retain(|name, _| seen.contains(name));
        stats.restarts = u64::from(restarted);
        stats
    }

    /// A poll failed at `now_ms`: one unknown sample per known interface, and the next walk's
    /// step is unknown as well (its counters would span two steps).
    pub fn on_failure(&mut self, now_ms: u64, out: &mut Vec<RateSample>) -> StepStats {
        let mut stats = StepStats::default();
        self.after_failure = true;
        for (name, s) in &mut self.ifaces {
            out.push(RateSample {
                target: self.target.clone(),
                if_index: s.index,
                if_name: name.clone(),
                ts_ms: now_ms,
                step_ms: now_ms.saturating_sub(s.last_ts_ms),
                in_bps: None,
                out_bps: None,
            });
            s.last_ts_ms = now_ms;
            stats.samples += 1;
            stats.unknown += 1;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::snmp::config::RawInterface;

    const GAP: u64 = 25_000;

    /// A fake agent with a fake clock: interfaces with byte counters, an uptime.
    struct Agent {
        boot_ms: u64,
        rows: Vec<IfRow>,
    }

    impl Agent {
        fn new(names: &[&str]) -> Agent {
            Agent {
                boot_ms: 0,
                rows: names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| IfRow {
                        index: i as u32 + 1,
                        name: Some(n.to_string()),
                        descr: Some(format!("descr {n}")),
                        hc_in: Some(0),
                        hc_out: Some(0),
                        in32: Some(0),
                        out32: Some(0),
                    })
                    .collect(),
            }
        }

        fn send(&mut self, name: &str, rx: u64, tx: u64) {
            for r in &mut self.rows {
                if r.name.as_deref() == Some(name) {
                    r.hc_in = r.hc_in.map(|v| v + rx);
                    r.hc_out = r.hc_out.map(|v| v + tx);
                    r.in32 = r.in32.map(|v| v.wrapping_add(rx as u32));
                    r.out32 = r.out32.map(|v| v.wrapping_add(tx as u32));
                }
            }
        }

        fn walk(&self, now_ms: u64) -> Walk {
            Walk {
                sys_uptime_cs: ((now_ms - self.boot_ms) / 10) as u32,
                rows: self.rows.clone(),
            }
        }
    }

    fn poll(t: &mut TargetState, a: &Agent, now_ms: u64) -> (Vec<RateSample>, StepStats) {
        let mut out = Vec::new();
        let s = t.on_walk(&a.walk(now_ms), now_ms, &mut out);
        (out, s)
    }

    fn by_name<'a>(s: &'a [RateSample], name: &str) -> &'a RateSample {
        s.iter()
            .find(|x| x.if_name == name)
            .unwrap_or_else(|| panic!("no sample for {name} in {s:?}"))
    }

    #[test]
    fn first_walk_is_a_baseline_then_one_sample_per_interface_per_step() {
        let mut a = Agent::new(&["lo", "eth0"]);
        let mut t = TargetState::new("r1", Selection::All, GAP);
        let (s, st) = poll(&mut t, &a, 10_000);
        assert!(s.is_empty());
        assert_eq!(st.interfaces, 2);
        a.send("eth0", 12_500, 1_250);
        let (s, st) = poll(&mut t, &a, 20_000);
        assert_eq!(s.len(), 2);
        assert_eq!(st.unknown, 0);
        let e = by_name(&s, "eth0");
        assert_eq!((e.target.as_str(), e.if_index), ("r1", 2));
        assert_eq!((e.ts_ms, e.step_ms), (20_000, 10_000));
        assert_eq!(e.in_bps, Some(10_000.0));
        assert_eq!(e.out_bps, Some(1_000.0));
        assert_eq!(by_name(&s, "lo").in_bps, Some(0.0));
    }

    #[test]
    fn selection_by_name_and_index() {
        let a = Agent::new(&["lo", "eth0", "eth1"]);
        let sel = Selection::Only(vec![
            RawInterface::Name("eth1".into()),
            RawInterface::Index(1),
        ]);
        let mut t = TargetState::new("r1", sel, GAP);
        poll(&mut t, &a, 10_000);
        let (s, _) = poll(&mut t, &a, 20_000);
        let mut names: Vec<_> = s.iter().map(|x| x.if_name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["eth1", "lo"]);
    }

    #[test]
    fn falls_back_to_32_bit_counters_and_undoes_their_wrap() {
        let mut a = Agent::new(&["eth0"]);
        a.rows[0].hc_in = None;
        a.rows[0].hc_out = None;
        a.rows[0].in32 = Some(u32::MAX - 99);
        let mut t = TargetState::new("r1", Selection::All, GAP);
        let (_, st) = poll(&mut t, &a, 10_000);
        assert_eq!(st.hc_interfaces, 0);
        a.send("eth0", 1_350, 0); // wraps: 100 bytes to 2^32, 1250 after
        let (s, st) = poll(&mut t, &a, 20_000);
        assert_eq!(s[0].in_bps, Some(1_080.0));
        assert_eq!(st.wraps, 1);
    }

    #[test]
    fn agent_restart_marks_the_step_unknown_instead_of_a_spike() {
        let mut a = Agent::new(&["eth0"]);
        a.send("eth0", 3_000_000_000, 0);
        let mut t = TargetState::new("r1", Selection::All, GAP);
        poll(&mut t, &a, 10_000);
        // The router reboots at 15 s: uptime restarts and every counter is back at zero.
        a = Agent::new(&["eth0"]);
        a.boot_ms = 15_000;
        a.send("eth0", 1_000, 0);
        let (s, st) = poll(&mut t, &a, 20_000);
        assert_eq!((s[0].in_bps, s[0].out_bps), (None, None));
        assert_eq!(st.restarts, 1);
        a.send("eth0", 12_500, 0);
        let (s, st) = poll(&mut t, &a, 30_000);
        assert_eq!(s[0].in_bps, Some(10_000.0));
        assert_eq!(st.restarts, 0);
    }

    #[test]
    fn failed_poll_gives_unknown_steps_then_rates_resume() {
        let mut a = Agent::new(&["eth0"]);
        let mut t = TargetState::new("r1", Selection::All, GAP);
        poll(&mut t, &a, 10_000);
        let mut out = Vec::new();
        let st = t.on_failure(20_000, &mut out);
        assert_eq!((st.samples, st.unknown), (1, 1));
        assert_eq!(
            (out[0].ts_ms, out[0].step_ms, out[0].in_bps),
            (20_000, 10_000, None)
        );
        a.send("eth0", 50_000, 0);
        // The step after the failure spans the lost poll: unknown too, not an average.
        let (s, _) = poll(&mut t, &a, 30_000);
        assert_eq!((s[0].step_ms, s[0].in_bps), (10_000, None));
        a.send("eth0", 1_250, 0);
        let (s, _) = poll(&mut t, &a, 40_000);
        assert_eq!(s[0].in_bps, Some(1_000.0));
    }

    #[test]
    fn a_stalled_poller_is_a_gap_not_an_average() {
        let mut a = Agent::new(&["eth0"]);
        let mut t = TargetState::new("r1", Selection::All, GAP);
        poll(&mut t, &a, 10_000);
        a.send("eth0", 1_000_000, 0);
        let (s, _) = poll(&mut t, &a, 60_000);
        assert_eq!((s[0].step_ms, s[0].in_bps), (50_000, None));
    }

    #[test]
    fn renumbered_interface_is_followed_by_name() {
        let mut a = Agent::new(&["lo", "eth0", "eth1"]);
        let mut t = TargetState::new("r1", Selection::All, GAP);
        poll(&mut t, &a, 10_000);
        a.send("eth1", 12_500, 0);
        let (s, _) = poll(&mut t, &a, 20_000);
        assert_eq!(by_name(&s, "eth1").if_index, 3);
        // eth0 is removed and eth1 re-created as ifIndex 7 with fresh counters.
        a.rows.remove(1);
        a.rows[1].index = 7;
        a.rows[1].hc_in = Some(500);
        let (s, st) = poll(&mut t, &a, 30_000);
        assert_eq!(st.renumbered, 1);
        assert_eq!(s.len(), 2, "eth0 is gone: {s:?}");
        let e = by_name(&s, "eth1");
        assert_eq!((e.if_index, e.in_bps), (7, None));
        a.send("eth1", 25_000, 0);
        let (s, st) = poll(&mut t, &a, 40_000);
        assert_eq!(st.renumbered, 0);
        let e = by_name(&s, "eth1");
        assert_eq!((e.if_index, e.in_bps), (7, Some(20_000.0)));
    }

    #[test]
    fn names_fall_back_and_duplicates_are_told_apart() {
        let mut a = Agent::new(&["x", "y", "z"]);
        a.rows[0].name = None; // ifDescr then
        a.rows[1].name = Some(String::new());
        a.rows[1].descr = None; // if<index>
        a.rows[2].name = Some("descr x".into()); // collides with row 0's ifDescr
        let mut t = TargetState::new("r1", Selection::All, GAP);
        poll(&mut t, &a, 10_000);
        let (s, _) = poll(&mut t, &a, 20_000);
        let mut names: Vec<_> = s.iter().map(|x| x.if_name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["descr x", "descr x#3", "if2"]);
    }
}
