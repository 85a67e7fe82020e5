//! Incidents, not flow alarms: one alert per incident (initiator, target, pattern), opened at
//! the first evidence and updated as evidence comes in, instead of re-raised.
//!
//! Any detector can feed the tracker: it turns what it saw into an [`Evidence`] (who opened the
//! connections, to whom, which [`Pattern`], when, how much) and gets back an [`Emit`] when the
//! operator should hear about it: the incident was opened, or it changed enough to say so.
//! Everything else is folded into the incident's counts.
//!
//! An incident is open while evidence keeps coming: evidence more than `idle` of event time
//! (the alerting de-duplication window, 60 s by default) after an incident's latest evidence
//! opens a new one with a new id. Records arrive in the exporter's expiry order, not by time,
//! so the tracker keeps an incident until the latest event time seen is `idle` plus `late`
//! (10 min) past its evidence, and evidence that comes late still joins it. While it is open, an update goes out when
//! - its severity rises, or its pattern becomes specific (`unusual_flow` evidence later seen to
//!   be a `port_scan` upgrades the incident; it keeps its id);
//! - its evidence count reaches 4, 16, 64, ... (each 4x the last);
//! - evidence resumes after at least `quiet` without any (a new burst), or `every` has passed
//!   since the last alert about it.
//!
//! Evidence whose pattern is only `unusual_flow` (a single odd flow, or an answer whose
//! initiator's behaviour this detector cannot see) joins the pair's most recent open incident
//! of any pattern.
//!
//! Memory is bounded: at most `max_open` incidents; past that the stalest is dropped (counted).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use netwarden_firmware::Severity;

use crate::records::Incident;

/// What an incident looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Many ports of one target.
    PortScan,
    /// Many targets (the incident has no single target).
    HostSweep,
    /// Many tiny flows to few ports.
    Flood,
    /// Many full connections to few ports (password guessing, polling gone wrong).
    RepeatedConnections,
    /// A flow carrying a lot of data (exfiltration, or an unusual backup).
    LargeTransfer,
    /// Anomalous, nothing more specific.
    UnusualFlow,
    /// Password guessing against a login service (the graph detector's pattern head).
    BruteForce,
    /// A host dialling out to a listener that hands out a shell (the graph detector).
    ReverseShell,
    /// A host uploading to an outside listener (the graph detector).
    Exfiltration,
}

impl Pattern {
    pub const fn as_str(self) -> &'static str {
        match self {
            Pattern::PortScan => "port_scan",
            Pattern::HostSweep => "host_sweep",
            Pattern::Flood => "flood",
            Pattern::RepeatedConnections => "repeated_connections",
            Pattern::LargeTransfer => "large_transfer",
            Pattern::UnusualFlow => "unusual_flow",
            Pattern::BruteForce => "brute_force",
            Pattern::ReverseShell => "reverse_shell",
            Pattern::Exfiltration => "exfiltration",
        }
    }
}

/// One piece of evidence, oriented: `initiator` opened the connection(s), `target` received
/// them (`None` for a sweep over many targets).
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    pub initiator: IpAddr,
    pub target: Option<IpAddr>,
    pub pattern: Pattern,
    /// Event time of the evidence (e.g. a flow's first and last packet).
    pub first_ms: u64,
    pub last_ms: u64,
    pub severity: Severity,
    pub score: f32,
    /// The target's service port, when there is one.
    pub port: Option<u16>,
    pub packets: u64,
    pub bytes: u64,
}

/// Why the tracker wants an alert now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Opened,
    Escalated,
    Classified,
    Grew,
    Resumed,
    Periodic,
}

/// An alert-worthy change: the incident as it stands, and how much evidence was folded into it
/// since the last alert about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    pub incident: Incident,
    pub reason: Reason,
    pub severity: Severity,
    pub folded_since_last: u64,
}

/// Timings and bounds of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    pub idle: Duration,
    pub quiet: Duration,
    pub every: Duration,
    /// How late evidence may come (exporters send a record when its flow ends, up to their
    /// active timeout later) and still join an incident that has been quiet for `idle`.
    pub late: Duration,
    pub max_open: usize,
}

impl TrackerConfig {
    /// The daemon's rules, with incidents ending after `idle` without evidence.
    pub fn with_idle(idle: Duration) -> Self {
        TrackerConfig {
            idle,
            quiet: Duration::from_secs(5),
            every: Duration::from_secs(300),
            late: Duration::from_secs(600),
            max_open: 16_384,
        }
    }
}

/// Ports kept exactly per incident; beyond, the count is estimated (linear counting over
/// [`PORT_BITS`] bits), so a scan of every port costs 512 bytes, not 64k entries (saturated above about 34,000).
const MAX_PORTS: usize = 64;
const PORT_BITS: usize = 4096;
const LISTED_PORTS: usize = 16;

#[derive(Debug)]
struct Open {
    id: String,
    update: u32,
    pattern: Pattern,
    severity: Severity,
    first_ms: u64,
    last_ms: u64,
    flows: u64,
    packets: u64,
    bytes: u64,
    ports: BTreeSet<u16>,
    port_bits: [u64; PORT_BITS / 64],
    max_score: f32,
    next_count: u64,
    last_emit_ms: u64,
    folded: u64,
}

type Key = (IpAddr, Option<IpAddr>);

/// The open incidents of one detector; pure logic, the caller supplies ids.
#[derive(Debug)]
pub struct IncidentTracker {
    cfg: TrackerConfig,
    /// Hashed with foldhash, seeded per process (the keys are hosts outside parties choose).
    open: HashMap<Key, Vec<Open>, foldhash::fast::RandomState>,
    count: usize,
    now_ms: u64,
    next_sweep_ms: u64,
    /// Incidents dropped because `max_open` were open.
    pub dropped: u64,
}

impl IncidentTracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        IncidentTracker {
            cfg,
            open: HashMap::default(),
            count: 0,
            now_ms: 0,
            next_sweep_ms: 0,
            dropped: 0,
        }
    }

    /// Incidents open now.
    pub fn open_count(&self) -> usize {
        self.count
    }

    /// Adds `ev` to its incident (opening one if needed); `Some` when an alert should go out.
    /// `id` is called only when an incident opens.
    pub fn observe(&mut self, ev: &Evidence, id: impl FnOnce() -> String) -> Option<Emit> {
        self.now_ms = self.now_ms.max(ev.last_ms);
        if self.now_ms >= self.next_sweep_ms {
            self.sweep();
        }
        let idle = self.idle_ms();
        let key = (ev.initiator, ev.target);
        let list = self.open.entry(key).or_default();
        // Within `idle` of the incident's evidence, on either side (records come late).
        let near = |o: &Open| {
            ev.last_ms < o.last_ms.saturating_add(idle)
                && ev.last_ms.saturating_add(idle) > o.first_ms
        };
        let at = list
            .iter()
            .position(|o| o.pattern == ev.pattern && near(o))
            .or_else(|| {
                if ev.pattern == Pattern::UnusualFlow {
                    (0..list.len())
                        .filter(|&i| near(&list[i]))
                        .max_by_key(|&i| list[i].last_ms)
                } else {
                    list.iter()
                        .position(|o| o.pattern == Pattern::UnusualFlow && near(o))
                }
            });
        let emit = match at {
            Some(i) => add(&mut list[i], ev, &self.cfg),
            None => {
                let o = Open {
                    id: id(),
                    update: 0,
                    pattern: ev.pattern,
                    severity: ev.severity,
                    first_ms: ev.first_ms.min(ev.last_ms),
                    last_ms: ev.last_ms,
                    flows: 1,
                    packets: ev.packets,
                    bytes: ev.bytes,
                    ports: ev.port.into_iter().collect(),
                    port_bits: ev.port.map_or([0; PORT_BITS / 64], |p| {
                        let mut b = [0; PORT_BITS / 64];
                        set_port_bit(&mut b, p);
                        b
                    }),
                    max_score: ev.score,
                    next_count: 4,
                    last_emit_ms: ev.last_ms,
                    folded: 0,
                };
                let emit = Emit {
                    incident: view(key, &o),
                    reason: Reason::Opened,
                    severity: o.severity,
                    folded_since_last: 0,
                };
                list.push(o);
                self.count += 1;
                Some(emit)
            }
        };
        if self.count > self.cfg.max_open {
            self.drop_stalest();
        }
        emit
    }

    fn idle_ms(&self) -> u64 {
        (self.cfg.idle.as_millis() as u64).max(1)
    }

    /// Forgets incidents without evidence for `idle` plus `late` before the latest event time.
    fn sweep(&mut self) {
        let now = self.now_ms;
        let idle = self
            .idle_ms()
            .saturating_add(self.cfg.late.as_millis() as u64);
        self.open.retain(|_, list| {
            list.retain(|o| now.saturating_sub(o.last_ms) < idle);
            !list.is_empty()
        });
        self.count = self.open.values().map(Vec::len).sum();
        self.next_sweep_ms = now.saturating_add(idle / 4 + 1);
    }

    /// Over `max_open`: drops the stalest eighth at once (one selection), so a flood of new
    /// incidents (spoofed sources) costs one pass per `max_open / 8` of them, not a scan each.
    fn drop_stalest(&mut self) {
        self.sweep();
        if self.count <= self.cfg.max_open {
            return;
        }
        let mut times: Vec<u64> = self
            .open
            .values()
            .flat_map(|l| l.iter().map(|o| o.last_ms))
            .collect();
        let target = self.cfg.max_open - self.cfg.max_open / 8;
        let excess = self.count.saturating_sub(target);
        // The excess-th stalest time: a selection, not a sort (a flood calls this often).
        let cut = match excess.checked_sub(1) {
            Some(n) if n < times.len() => *times.select_nth_unstable(n).1,
            _ => u64::MAX,
        };
        let mut left = excess;
        self.open.retain(|_, list| {
            list.retain(|o| {
                if left > 0 && o.last_ms <= cut {
                    left -= 1;
                    false
                } else {
                    true
                }
            });
            !list.is_empty()
        });
        let dropped = excess - left;
        self.count -= dropped;
        self.dropped += dropped as u64;
    }
}

/// Folds `ev` into `o`; `Some` when that deserves an alert.
fn add(o: &mut Open, ev: &Evidence, cfg: &TrackerConfig) -> Option<Emit> {
    let gap = ev.last_ms.saturating_sub(o.last_ms);
    o.flows += 1;
    o.packets += ev.packets;
    o.bytes += ev.bytes;
    o.first_ms = o.first_ms.min(ev.first_ms.min(ev.last_ms));
    o.last_ms = o.last_ms.max(ev.last_ms);
    o.max_score = o.max_score.max(ev.score);
    if let Some(p) = ev.port {
        if o.ports.len() < MAX_PORTS {
            o.ports.insert(p);
        }
        set_port_bit(&mut o.port_bits, p);
    }
    let mut reason = None;
    if o.pattern == Pattern::UnusualFlow && ev.pattern != Pattern::UnusualFlow {
        o.pattern = ev.pattern;
        reason = Some(Reason::Classified);
    }
    if ev.severity > o.severity {
        o.severity = ev.severity;
        reason = reason.or(Some(Reason::Escalated));
    }
    if o.flows >= o.next_count {
        o.next_count = o.next_count.saturating_mul(4);
        reason = reason.or(Some(Reason::Grew));
    }
    if gap >= cfg.quiet.as_millis() as u64 {
        reason = reason.or(Some(Reason::Resumed));
    }
    if ev.last_ms.saturating_sub(o.last_emit_ms) >= cfg.every.as_millis() as u64 {
        reason = reason.or(Some(Reason::Periodic));
    }
    let Some(reason) = reason else {
        o.folded += 1;
        return None;
    };
    o.update += 1;
    o.last_emit_ms = o.last_emit_ms.max(ev.last_ms);
    let folded = std::mem::take(&mut o.folded);
    Some(Emit {
        incident: view((ev.initiator, ev.target), o),
        reason,
        severity: o.severity,
        folded_since_last: folded,
    })
}

fn set_port_bit(bits: &mut [u64; PORT_BITS / 64], port: u16) {
    // A mixing hash (murmur3's finaliser): linear counting assumes random bit positions, and
    // a scan's sequential ports must not land without collisions (that biases it upwards).
    let mut h = u32::from(port).wrapping_add(0x9E37_79B9);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    let h = h as usize % PORT_BITS;
    bits[h / 64] |= 1 << (h % 64);
}

/// Exact while the set holds every port seen, else the linear-counting estimate (never below
/// the exact count), rounded to an integer.
fn ports_distinct(o: &Open) -> u32 {
    let exact = o.ports.len();
    if exact < MAX_PORTS {
        return exact as u32;
    }
    let zeros: u32 = o.port_bits.iter().map(|w| w.count_zeros()).sum();
    let m = PORT_BITS as f64;
    let est = if zeros == 0 {
        m * m.ln()
    } else {
        -m * (f64::from(zeros) / m).ln()
    };
    (est.round() as u32).max(exact as u32).min(65_536)
}

fn view(key: Key, o: &Open) -> Incident {
    Incident {
        id: o.id.clone(),
        update: o.update,
        pattern: o.pattern.as_str().to_string(),
        initiator: key.0.to_string(),
        target: key.1.map(|t| t.to_string()),
        first_ms: o.first_ms,
        last_ms: o.last_ms,
        flows: o.flows,
        packets: o.packets,
        bytes: o.bytes,
        ports_distinct: ports_distinct(o),
        ports: o.ports.iter().take(LISTED_PORTS).copied().collect(),
        max_score: o.max_score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn ev(pattern: Pattern, t: u64, port: u16) -> Evidence {
        Evidence {
            initiator: ip(66),
            target: Some(ip(2)),
            pattern,
            first_ms: t,
            last_ms: t,
            severity: Severity::Medium,
            score: 1.0,
            port: Some(port),
            packets: 1,
            bytes: 44,
        }
    }

    fn tracker() -> (IncidentTracker, impl FnMut() -> String) {
        let mut n = 0;
        let ids = move || {
            n += 1;
            format!("inc{n}")
        };
        (
            IncidentTracker::new(TrackerConfig::with_idle(Duration::from_secs(60))),
            ids,
        )
    }

    #[test]
    fn a_scan_is_one_incident_with_growing_counts() {
        let (mut t, mut ids) = tracker();
        let mut emits = Vec::new();
        // 1,000 probes, 10 ms apart, out of order in pairs (expiry order).
        for i in 0..1000u64 {
            let at = 1_000 + (i ^ 1) * 10;
            emits.extend(t.observe(&ev(Pattern::PortScan, at, i as u16 + 1), &mut ids));
        }
        assert_eq!(emits[0].reason, Reason::Opened);
        assert!(emits.iter().all(|e| e.incident.id == "inc1"), "{emits:?}");
        // Opened, then 4, 16, 64, 256 evidence: five alerts for a thousand flows.
        let counts: Vec<u64> = emits.iter().map(|e| e.incident.flows).collect();
        assert_eq!(counts, [1, 4, 16, 64, 256]);
        let last = emits.last().expect("emits");
        assert_eq!(last.incident.update, 4);
        // 256 ports: estimated (linear counting), within a few percent.
        let est = last.incident.ports_distinct;
        assert!((245..=267).contains(&est), "{est}");
        assert_eq!(last.incident.ports.len(), LISTED_PORTS);
        assert_eq!(last.folded_since_last, 256 - 64 - 1);
        assert_eq!(t.open_count(), 1);
    }

    #[test]
    fn unusual_evidence_joins_and_is_upgraded_and_a_new_pattern_is_a_new_incident() {
        let (mut t, mut ids) = tracker();
        let first = t
            .observe(&ev(Pattern::UnusualFlow, 0, 80), &mut ids)
            .expect("opened");
        assert_eq!(first.incident.pattern, "unusual_flow");
        let up = t
            .observe(&ev(Pattern::PortScan, 10, 81), &mut ids)
            .expect("classified");
        assert_eq!(up.reason, Reason::Classified);
        assert_eq!(
            (up.incident.id.as_str(), up.incident.pattern.as_str()),
            ("inc1", "port_scan")
        );
        // An answer (unusual only) joins the scan.
        assert_eq!(t.observe(&ev(Pattern::UnusualFlow, 20, 82), &mut ids), None);
        // A flood from the same initiator to the same target is another incident.
        let flood = t
            .observe(&ev(Pattern::Flood, 30, 80), &mut ids)
            .expect("flood");
        assert_eq!(
            (flood.incident.id.as_str(), flood.reason),
            ("inc2", Reason::Opened)
        );
        assert_eq!(t.open_count(), 2);
    }

    #[test]
    fn escalation_and_resumption_update_and_idle_ends_the_incident() {
        let (mut t, mut ids) = tracker();
        t.observe(&ev(Pattern::PortScan, 0, 1), &mut ids)
            .expect("open");
        assert_eq!(t.observe(&ev(Pattern::PortScan, 100, 2), &mut ids), None);
        let mut high = ev(Pattern::PortScan, 200, 3);
        high.severity = Severity::High;
        let e = t.observe(&high, &mut ids).expect("escalated");
        assert_eq!(
            (e.reason, e.severity, e.folded_since_last),
            (Reason::Escalated, Severity::High, 1)
        );
        let e = t
            .observe(&ev(Pattern::PortScan, 300, 4), &mut ids)
            .expect("4 flows");
        assert_eq!(e.reason, Reason::Grew);
        // Quiet for 10 s, then more: a new burst of the same incident.
        let e = t
            .observe(&ev(Pattern::PortScan, 10_200, 5), &mut ids)
            .expect("resumed");
        assert_eq!(
            (e.reason, e.incident.id.as_str()),
            (Reason::Resumed, "inc1")
        );
        assert_eq!(e.incident.first_ms, 0);
        assert_eq!(e.incident.last_ms, 10_200);
        // 60 s without evidence: a new incident.
        let e = t
            .observe(&ev(Pattern::PortScan, 70_300, 6), &mut ids)
            .expect("new");
        assert_eq!((e.reason, e.incident.id.as_str()), (Reason::Opened, "inc2"));
        // A record of the first burst that the exporter sent late still joins the first.
        assert_eq!(t.observe(&ev(Pattern::PortScan, 10_250, 7), &mut ids), None);
        assert_eq!(t.open_count(), 2);
    }

    #[test]
    fn open_incidents_are_bounded() {
        let mut cfg = TrackerConfig::with_idle(Duration::from_secs(60));
        cfg.max_open = 8;
        let mut t = IncidentTracker::new(cfg);
        let mut n = 0;
        for i in 0..100u8 {
            let mut e = ev(Pattern::UnusualFlow, u64::from(i), 80);
            e.initiator = ip(i);
            assert!(t
                .observe(&e, || {
                    n += 1;
                    n.to_string()
                })
                .is_some());
        }
        assert!(
            t.open_count() <= 8 && t.open_count() >= 7,
            "{}",
            t.open_count()
        );
        assert_eq!(t.dropped as usize + t.open_count(), 100);
    }
}
