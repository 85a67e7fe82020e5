//! The `flow-v1` feature schema and the per-source-host windows behind it.
//!
//! A flow alone says little: one SYN to one port is normal, a thousand of them from one host in
//! ten seconds is a scan. So each flow's vector carries, besides its own counters, what its source
//! host did in the current window. Windows are tumbling, keyed on the flow's `last_ms` (event
//! time), so replaying the same records gives the same vectors, on the device and in training.
//!
//! Distinct destination ports and addresses are estimated by linear counting over a 512-bit
//! bitmap per host (64 bytes each): exact enough for small counts (1 -> 1.001) and still
//! resolving a 1,000-port scan, in fixed memory.

use core::net::IpAddr;
use heapless::index_map::FnvIndexMap;

use crate::flow::{tcp_flags, FlowRecord};

/// Schema name recorded in model manifests.
pub const FLOW_SCHEMA: &str = "flow-v1";

/// Feature names, in vector order. Changing this is a schema change (new `FLOW_SCHEMA`).
pub const FLOW_FEATURES: [&str; 8] = [
    "bidirectional_packets",
    "bidirectional_bytes",
    "bidirectional_duration_ms",
    "bidirectional_mean_ps",
    "tcp_syn_without_ack",
    "src_flows_window",
    "src_distinct_dst_ports_window",
    "src_distinct_dst_addrs_window",
];

/// Number of features in `flow-v1`.
pub const FLOW_WIDTH: usize = FLOW_FEATURES.len();

/// Raw (unscaled) feature values in [`FLOW_FEATURES`] order.
pub type FlowFeatures = [f32; FLOW_WIDTH];

/// Length of a host window.
pub const WINDOW_MS: u64 = 10_000;

const BITMAP_WORDS: usize = 8;
const BITMAP_BITS: u32 = (BITMAP_WORDS * 64) as u32;

/// A fixed-size distinct-count sketch (linear counting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bitmap([u64; BITMAP_WORDS]);

impl Bitmap {
    /// Sets the hash's bit; true when it was not set before (the estimate changed).
    fn insert(&mut self, hash: u64) -> bool {
        let bit = (hash >> 55) as usize; // top 9 bits: 0..512
        let word = &mut self.0[bit / 64];
        let mask = 1 << (bit % 64);
        let new = *word & mask == 0;
        *word |= mask;
        new
    }

    fn estimate(&self) -> f32 {
        let set: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        let zeros = BITMAP_BITS - set;
        let m = BITMAP_BITS as f64;
        // A full bitmap means "at least m ln m"; report that bound rather than infinity.
        let zeros = if zeros == 0 { 0.5 } else { zeros as f64 };
        (-m * libm::log(zeros / m)) as f32
    }
}

/// A 64-bit mix (splitmix64 finaliser): spreads small integers over the whole range.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub(crate) fn addr_hash(addr: &IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => mix(u32::from(*a) as u64),
        IpAddr::V6(a) => {
            let v = u128::from(*a);
            mix((v as u64) ^ mix((v >> 64) as u64))
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct HostWindow {
    window: u64,
    flows: u32,
    ports: Bitmap,
    addrs: Bitmap,
    /// The bitmaps' estimates, recomputed only when a bit is newly set (a logarithm per flow
    /// was a measurable share of the gateway's hot path).
    ports_est: f32,
    addrs_est: f32,
}

/// Counters of what the table had to give up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostWindowStats {
    /// Hosts evicted to make room (a stale one when possible, else the oldest).
    pub evictions: u64,
    /// Records whose `last_ms` fell in a window older than their host's current one; they are
    /// counted into the current window rather than reopening an old one.
    pub late_records: u64,
}

/// Per-source-host windows, `N` hosts at most (a power of two, as heapless requires).
#[derive(Debug)]
pub struct HostWindows<const N: usize> {
    hosts: FnvIndexMap<IpAddr, HostWindow, N>,
    stats: HostWindowStats,
}

impl<const N: usize> Default for HostWindows<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> HostWindows<N> {
    pub const fn new() -> Self {
        HostWindows {
            hosts: FnvIndexMap::new(),
            stats: HostWindowStats {
                evictions: 0,
                late_records: 0,
            },
        }
    }

    pub fn stats(&self) -> HostWindowStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Accounts `rec` to its source host's window and returns its `flow-v1` vector.
    pub fn observe(&mut self, rec: &FlowRecord) -> FlowFeatures {
        let window = rec.last_ms / WINDOW_MS;
        let host = self.host_mut(rec.src_addr, window);
        let late = window < host.window;
        if window > host.window {
            *host = HostWindow {
                window,
                ..HostWindow::default()
            };
        }
        host.flows = host.flows.saturating_add(1);
        if host
            .ports
            .insert(mix(rec.dst_port as u64 | (rec.protocol as u64) << 16))
        {
            host.ports_est = host.ports.estimate();
        }
        if host.addrs.insert(addr_hash(&rec.dst_addr)) {
            host.addrs_est = host.addrs.estimate();
        }
        let (flows, ports, addrs) = (host.flows, host.ports_est, host.addrs_est);
        if late {
            self.stats.late_records += 1;
        }
        flow_vector(rec, flows, ports, addrs)
    }

    /// The window entry for `addr`, inserting (and evicting if full) as needed.
    fn host_mut(&mut self, addr: IpAddr, window: u64) -> &mut HostWindow {
        if !self.hosts.contains_key(&addr) {
            if self.hosts.is_full() {
                self.evict(window);
            }
            // Cannot fail: there is room after evict() (N > 0 is enforced by heapless).
            let _ = self.hosts.insert(
                addr,
                HostWindow {
                    window,
                    ..HostWindow::default()
                },
            );
        }
        match self.hosts.get_mut(&addr) {
            Some(h) => h,
            None => unreachable_host(),
        }
    }

    /// Drops every host whose window is over; if none is, the one with the oldest window.
    fn evict(&mut self, window: u64) {
        let before = self.hosts.len();
        self.hosts.retain(|_, h| h.window + 1 >= window);
        let mut removed = before - self.hosts.len();
        if removed == 0 {
            let oldest = self
                .hosts
                .iter()
                .min_by_key(|(_, h)| h.window)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.hosts.remove(&k);
                removed = 1;
            }
        }
        self.stats.evictions += removed as u64;
    }
}

#[cold]
fn unreachable_host() -> ! {
    // host_mut inserts before it looks up, and the map has room after evict().
    unreachable!("host window missing right after insert")
}

/// The `flow-v1` vector of one record given its host context.
pub fn flow_vector(
    rec: &FlowRecord,
    src_flows: u32,
    distinct_ports: f32,
    distinct_addrs: f32,
) -> FlowFeatures {
    let packets = rec.packets as f32;
    let bytes = rec.bytes as f32;
    let mean_ps = if rec.packets == 0 {
        0.0
    } else {
        (rec.bytes as f64 / rec.packets as f64) as f32
    };
    let syn_no_ack = rec.protocol == FlowRecord::PROTO_TCP
        && rec.tcp_flags & tcp_flags::SYN != 0
        && rec.tcp_flags & tcp_flags::ACK == 0;
    [
        packets,
        bytes,
        rec.duration_ms() as f32,
        mean_ps,
        if syn_no_ack { 1.0 } else { 0.0 },
        src_flows as f32,
        distinct_ports,
        distinct_addrs,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn rec(src: u8, dst: u8, dport: u16, last_ms: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 1, dst)),
            src_port: 40000,
            dst_port: dport,
            protocol: 6,
            packets: 1,
            bytes: 44,
            first_ms: last_ms,
            last_ms,
            tcp_flags: tcp_flags::SYN,
        }
    }

    #[test]
    fn scan_raises_distinct_port_count_but_not_for_other_hosts() {
        let mut w: HostWindows<64> = HostWindows::new();
        let mut last = [0.0; FLOW_WIDTH];
        for p in 1..=1000u16 {
            last = w.observe(&rec(1, 2, p, 1_000_000 + p as u64));
        }
        assert_eq!(last[5], 1000.0);
        assert!(last[6] > 800.0 && last[6] < 1300.0, "estimate {}", last[6]);
        assert!((last[7] - 1.0).abs() < 0.01);
        assert_eq!(last[4], 1.0);
        let other = w.observe(&rec(9, 2, 80, 1_000_500));
        assert_eq!(other[5], 1.0);
        assert!((other[6] - 1.0).abs() < 0.01);
    }

    #[test]
    fn a_new_window_starts_from_zero_and_late_records_are_counted() {
        let mut w: HostWindows<8> = HostWindows::new();
        w.observe(&rec(1, 2, 80, 0));
        w.observe(&rec(1, 2, 81, 1));
        let v = w.observe(&rec(1, 2, 82, WINDOW_MS));
        assert_eq!(v[5], 1.0);
        let late = w.observe(&rec(1, 2, 83, 5));
        assert_eq!(late[5], 2.0);
        assert_eq!(w.stats().late_records, 1);
    }

    #[test]
    fn full_table_evicts_stale_hosts_first_and_counts() {
        let mut w: HostWindows<4> = HostWindows::new();
        for h in 0..4 {
            w.observe(&rec(h, 2, 80, 0));
        }
        assert_eq!(w.len(), 4);
        // Two windows later every host is stale: all four go.
        w.observe(&rec(100, 2, 80, 3 * WINDOW_MS));
        assert_eq!(w.stats().evictions, 4);
        assert_eq!(w.len(), 1);
        // Fill again within one window: the oldest-window host is evicted, one at a time.
        for h in 0..3 {
            w.observe(&rec(h, 2, 80, 3 * WINDOW_MS));
        }
        w.observe(&rec(50, 2, 80, 3 * WINDOW_MS));
        assert_eq!(w.stats().evictions, 5);
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn vector_counters_and_flags() {
        let mut r = rec(1, 2, 80, 2000);
        r.first_ms = 1500;
        r.packets = 4;
        r.bytes = 400;
        r.tcp_flags = tcp_flags::SYN | tcp_flags::ACK;
        let v = flow_vector(&r, 3, 2.0, 1.0);
        assert_eq!(v, [4.0, 400.0, 500.0, 100.0, 0.0, 3.0, 2.0, 1.0]);
        r.protocol = 17;
        r.tcp_flags = tcp_flags::SYN;
        assert_eq!(flow_vector(&r, 1, 1.0, 1.0)[4], 0.0);
    }
}
