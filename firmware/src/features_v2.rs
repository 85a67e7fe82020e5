//! The `flow-v2` schema: `flow-v1`, plus the conversation's other direction and its service's
//! context.
//!
//! NetFlow exporters (and the packet meter's `BiFlow::records()`) report each direction of a
//! conversation as its own record. One SYN record says little; "a SYN that nobody answered, the
//! 200th unanswered one to that service in ten seconds, from a host that never used it while
//! the site was learning" says a lot. So `flow-v2` pairs the two directions and adds:
//! - the other direction: whether it was reported at all (the other side answered), its packets
//!   and bytes, this record's share of the conversation's bytes, whether the other side sent a
//!   SYN/ACK, and whether either side reset;
//! - the service (initiator, target, service port, protocol; the initiator is who opened the
//!   connection, [`crate::orient`]) in its 10 s window: conversations, and the share of them
//!   that failed (no answer, or a reset);
//! - novelty: 1 when the initiator never used this service during the learning period (event
//!   time before `learn_until_ms`); 0 during learning, and always 0 when there is none.
//!
//! **Pairing and event time.** Records arrive in the exporter's expiry order (softflowd exports
//! most flows at expiry or end of input), so the reverse direction may come later. A record
//! whose reverse has not arrived waits in a fixed table keyed by its 5-tuple (ICMP: ports left
//! out, since a reply's type differs from the request's) until the reverse comes (both are
//! emitted), or until `wait_ms` of *arrival* time has passed (emitted alone), or the table is
//! full (the longest-waiting one is emitted alone, counted). The arrival clock is the caller's:
//! the time the record reached the gateway (datagram time in replays). softflowd and the meter
//! send both directions of an expired flow together, so nearly every pair completes at once;
//! the wait only delays records that are never answered (a probe to a filtered port, a UDP
//! flood), by at most `wait_ms` plus the gap to the next [`FlowV2::expire`] call.
//!
//! All state is fixed-capacity (heapless maps chosen by the caller); nothing allocates.

use core::net::IpAddr;
use heapless::index_map::FnvIndexMap;

use crate::features::{addr_hash, mix, FlowFeatures, FLOW_WIDTH, WINDOW_MS};
use crate::flow::{tcp_flags, FlowRecord};
use crate::orient::orient;

/// Schema name recorded in model manifests.
pub const FLOW_V2_SCHEMA: &str = "flow-v2";

/// Feature names, in vector order: `flow-v1`'s eight, then the conversation and service ones.
pub const FLOW_V2_FEATURES: [&str; 17] = [
    "bidirectional_packets",
    "bidirectional_bytes",
    "bidirectional_duration_ms",
    "bidirectional_mean_ps",
    "tcp_syn_without_ack",
    "src_flows_window",
    "src_distinct_dst_ports_window",
    "src_distinct_dst_addrs_window",
    "reverse_seen",
    "reverse_packets",
    "reverse_bytes",
    "bytes_share",
    "reverse_syn_ack",
    "tcp_rst_either",
    "svc_conversations_window",
    "svc_failed_share_window",
    "svc_novel",
];

/// Number of features in `flow-v2`.
pub const FLOW_V2_WIDTH: usize = FLOW_V2_FEATURES.len();

/// Raw `flow-v2` values in [`FLOW_V2_FEATURES`] order.
pub type FlowV2Features = [f32; FLOW_V2_WIDTH];

const _: () = assert!(FLOW_WIDTH < FLOW_V2_WIDTH);

/// Default wait for the reverse direction, in ms of arrival time.
pub const DEFAULT_PAIR_WAIT_MS: u64 = 500;

/// Bits of the novelty filter (8 KiB).
const NOVELTY_WORDS: usize = 1024;

/// Bytes of the novelty filter as [`FlowV2::save_novelty`] writes it (little-endian words).
pub const NOVELTY_BYTES: usize = NOVELTY_WORDS * 8;

/// A directed 5-tuple; ICMP ports are zeroed so that a request and its reply (or error) match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PairKey {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
}

impl PairKey {
    fn of(r: &FlowRecord) -> Self {
        let icmp = matches!(r.protocol, 1 | 58);
        PairKey {
            src: r.src_addr,
            dst: r.dst_addr,
            sport: if icmp { 0 } else { r.src_port },
            dport: if icmp { 0 } else { r.dst_port },
            proto: r.protocol,
        }
    }

    fn reversed(self) -> Self {
        PairKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// A record waiting for its reverse, with its `flow-v1` part (computed on arrival) and the
/// caller's payload (the gateway's exporter).
#[derive(Debug, Clone)]
struct Waiting<T> {
    rec: FlowRecord,
    v1: FlowFeatures,
    arrived_ms: u64,
    payload: T,
}

#[derive(Debug, Clone, Copy, Default)]
struct Service {
    window: u64,
    conversations: u32,
    failed: u32,
}

/// Counters of what the tables did and had to give up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowV2Stats {
    /// Records emitted with their reverse.
    pub paired: u64,
    /// Records emitted alone after the wait (or at [`FlowV2::drain`]).
    pub unpaired: u64,
    /// Waiting records emitted alone because the pairing table was full.
    pub pair_evictions: u64,
    /// Waiting records emitted alone because a second record of the same direction came.
    pub pair_duplicates: u64,
    /// Services dropped from the full service table.
    pub service_evictions: u64,
}

/// The `flow-v2` featuriser's own state: the pairing table (`P` waiting records), the service
/// windows (`S` services) and the novelty filter. The caller keeps the [`HostWindows`](crate::features::HostWindows) that
/// give each record its `flow-v1` part on arrival. `T` travels with each record.
#[derive(Debug)]
pub struct FlowV2<T, const P: usize, const S: usize> {
    pairs: FnvIndexMap<PairKey, Waiting<T>, P>,
    services: FnvIndexMap<u64, Service, S>,
    novelty: [u64; NOVELTY_WORDS],
    learn_until_ms: Option<u64>,
    wait_ms: u64,
    /// No waiting record is due before this (arrival clock); may be early, never late.
    next_due_ms: u64,
    stats: FlowV2Stats,
}

impl<T: Clone, const P: usize, const S: usize> Default for FlowV2<T, P, S> {
    fn default() -> Self {
        Self::new(DEFAULT_PAIR_WAIT_MS)
    }
}

impl<T: Clone, const P: usize, const S: usize> FlowV2<T, P, S> {
    pub const fn new(wait_ms: u64) -> Self {
        FlowV2 {
            pairs: FnvIndexMap::new(),
            services: FnvIndexMap::new(),
            novelty: [0; NOVELTY_WORDS],
            learn_until_ms: None,
            wait_ms,
            next_due_ms: u64::MAX,
            stats: FlowV2Stats {
                paired: 0,
                unpaired: 0,
                pair_evictions: 0,
                pair_duplicates: 0,
                service_evictions: 0,
            },
        }
    }

    /// Services used before `until_ms` (event time) are learnt; later ones are novel unless
    /// learnt. `None`: no learning period, novelty is always 0.
    pub fn set_learn_until(&mut self, until_ms: Option<u64>) {
        self.learn_until_ms = until_ms;
    }

    pub fn stats(&self) -> FlowV2Stats {
        self.stats
    }

    /// Changes the wait for the reverse direction (`[detector] pair_wait`); records already
    /// waiting are judged by the new wait at the next [`FlowV2::expire`].
    pub fn set_wait_ms(&mut self, wait_ms: u64) {
        self.wait_ms = wait_ms;
        self.next_due_ms = 0;
    }

    /// The wait for the reverse direction, in ms of arrival time.
    pub fn wait_ms(&self) -> u64 {
        self.wait_ms
    }

    /// The end of novelty learning, when set.
    pub fn learn_until(&self) -> Option<u64> {
        self.learn_until_ms
    }

    /// The services learnt so far (the novelty filter), for saving with the learning state:
    /// without it a restart after the learning period would call every service novel.
    pub fn save_novelty(&self, out: &mut [u8; NOVELTY_BYTES]) {
        for (chunk, w) in out.chunks_exact_mut(8).zip(self.novelty.iter()) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Takes back what [`FlowV2::save_novelty`] wrote, OR-ed into what is learnt; `false` (and
    /// nothing changed) when `bytes` is not [`NOVELTY_BYTES`] long.
    pub fn restore_novelty(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() != NOVELTY_BYTES {
            return false;
        }
        for (w, chunk) in self.novelty.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w |= u64::from_le_bytes(b);
        }
        true
    }

    /// Bits set in the novelty filter: about the services learnt (collisions merge a few).
    pub fn novelty_learnt(&self) -> u32 {
        self.novelty.iter().map(|w| w.count_ones()).sum()
    }

    /// Records waiting for their reverse.
    pub fn waiting(&self) -> usize {
        self.pairs.len()
    }

    /// Takes one record that arrived at `now_ms`, with its `flow-v1` vector (computed on
    /// arrival, [`HostWindows::observe`](crate::features::HostWindows::observe)): pairs it with its waiting reverse (both are emitted
    /// to `out`, the earlier arrival first) or keeps it waiting.
    pub fn push(
        &mut self,
        rec: &FlowRecord,
        v1: FlowFeatures,
        payload: T,
        now_ms: u64,
        out: &mut impl FnMut(&FlowRecord, &FlowV2Features, T),
    ) {
        let key = PairKey::of(rec);
        let w = Waiting {
            rec: *rec,
            v1,
            arrived_ms: now_ms,
            payload,
        };
        if let Some(first) = self.pairs.swap_remove(&key.reversed()) {
            self.stats.paired += 2;
            self.emit(first, Some(w), out);
            return;
        }
        if let Some(old) = self.pairs.swap_remove(&key) {
            self.stats.pair_duplicates += 1;
            self.stats.unpaired += 1;
            self.emit(old, None, out);
        }
        if self.pairs.is_full() {
            let oldest = self
                .pairs
                .iter()
                .min_by_key(|(_, w)| w.arrived_ms)
                .map(|(k, _)| *k);
            if let Some(old) = oldest.and_then(|k| self.pairs.swap_remove(&k)) {
                self.stats.pair_evictions += 1;
                self.stats.unpaired += 1;
                self.emit(old, None, out);
            }
        }
        self.next_due_ms = self.next_due_ms.min(now_ms.saturating_add(self.wait_ms));
        // Cannot fail: there is room (a duplicate was removed, or the oldest evicted).
        let _ = self.pairs.insert(key, w);
    }

    /// Emits, alone, every record that has waited `wait_ms` or more at `now_ms` (arrival
    /// clock). Cheap to call often: the table is walked only when a record is due.
    pub fn expire(&mut self, now_ms: u64, out: &mut impl FnMut(&FlowRecord, &FlowV2Features, T)) {
        if now_ms < self.next_due_ms {
            return;
        }
        let wait = self.wait_ms;
        // In table order: the table is roughly in arrival order (a removal moves the last entry
        // into the hole), so the first due record is found near the front.
        while let Some(k) = self
            .pairs
            .iter()
            .find(|(_, w)| w.arrived_ms.saturating_add(wait) <= now_ms)
            .map(|(k, _)| *k)
        {
            if let Some(w) = self.pairs.swap_remove(&k) {
                self.stats.unpaired += 1;
                self.emit(w, None, out);
            }
        }
        self.next_due_ms = self
            .pairs
            .values()
            .map(|w| w.arrived_ms.saturating_add(wait))
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Emits every waiting record alone, oldest first (end of input).
    pub fn drain(&mut self, out: &mut impl FnMut(&FlowRecord, &FlowV2Features, T)) {
        while let Some(k) = self
            .pairs
            .iter()
            .min_by_key(|(_, w)| w.arrived_ms)
            .map(|(k, _)| *k)
        {
            if let Some(w) = self.pairs.swap_remove(&k) {
                self.stats.unpaired += 1;
                self.emit(w, None, out);
            }
        }
    }

    /// One conversation (one or both directions): updates its service and emits each record.
    fn emit(
        &mut self,
        a: Waiting<T>,
        b: Option<Waiting<T>>,
        out: &mut impl FnMut(&FlowRecord, &FlowV2Features, T),
    ) {
        // The initiator: a record that carries a bare SYN opened the conversation; otherwise
        // the earlier record's own orientation.
        let opener = match &b {
            Some(b) if is_bare_syn(&b.rec) && !is_bare_syn(&a.rec) => &b.rec,
            _ => &a.rec,
        };
        let o = orient(opener);
        let answered = b.as_ref().is_some_and(|b| b.rec.packets > 0);
        let tcp = a.rec.protocol == FlowRecord::PROTO_TCP;
        let flags = a.rec.tcp_flags | b.as_ref().map_or(0, |b| b.rec.tcp_flags);
        let rst = tcp && flags & tcp_flags::RST != 0;
        let failed = !answered || rst;
        // ICMP: the service is the protocol (a request's type is not its reply's, and which of
        // the two came first must not change the key).
        let icmp = matches!(a.rec.protocol, 1 | 58);
        let service_port = if icmp { 0 } else { o.service_port };
        let last = b
            .as_ref()
            .map_or(a.rec.last_ms, |b| b.rec.last_ms.max(a.rec.last_ms));
        let svc_key = mix(addr_hash(&o.initiator)
            ^ mix(addr_hash(&o.target) ^ mix(service_port as u64 | (a.rec.protocol as u64) << 16)));
        let (conversations, failed_share) = self.service(svc_key, last / WINDOW_MS, failed);
        let novel = self.novel(svc_key, a.rec.first_ms.min(last));
        let ctx = [conversations, failed_share, novel];
        let va = vector(&a.rec, &a.v1, b.as_ref().map(|b| &b.rec), rst, ctx);
        match b {
            Some(b) => {
                let vb = vector(&b.rec, &b.v1, Some(&a.rec), rst, ctx);
                out(&a.rec, &va, a.payload);
                out(&b.rec, &vb, b.payload);
            }
            None => out(&a.rec, &va, a.payload),
        }
    }

    /// Counts a conversation into its service's window; returns (conversations, failed share).
    fn service(&mut self, key: u64, window: u64, failed: bool) -> (f32, f32) {
        if !self.services.contains_key(&key) && self.services.is_full() {
            let before = self.services.len();
            self.services.retain(|_, s| s.window + 1 >= window);
            if self.services.len() == before {
                let oldest = self
                    .services
                    .iter()
                    .min_by_key(|(_, s)| s.window)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.services.swap_remove(&k);
                }
            }
            self.stats.service_evictions += (before - self.services.len()) as u64;
        }
        let s = match self.services.entry(key) {
            heapless::index_map::Entry::Occupied(e) => e.into_mut(),
            heapless::index_map::Entry::Vacant(e) => match e.insert(Service {
                window,
                ..Service::default()
            }) {
                Ok(s) => s,
                // Cannot happen: there is room after the eviction above.
                Err(_) => return (1.0, if failed { 1.0 } else { 0.0 }),
            },
        };
        if window > s.window {
            *s = Service {
                window,
                ..Service::default()
            };
        }
        s.conversations = s.conversations.saturating_add(1);
        s.failed = s.failed.saturating_add(failed as u32);
        (
            s.conversations as f32,
            s.failed as f32 / s.conversations as f32,
        )
    }

    /// Learns the service before the end of learning; afterwards 1.0 when it was never learnt.
    fn novel(&mut self, key: u64, event_ms: u64) -> f32 {
        let Some(until) = self.learn_until_ms else {
            return 0.0;
        };
        let bit = (key >> 48) as usize % (NOVELTY_WORDS * 64);
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if event_ms < until {
            self.novelty[word] |= mask;
            0.0
        } else if self.novelty[word] & mask == 0 {
            1.0
        } else {
            0.0
        }
    }
}

fn is_bare_syn(r: &FlowRecord) -> bool {
    r.protocol == FlowRecord::PROTO_TCP
        && r.tcp_flags & tcp_flags::SYN != 0
        && r.tcp_flags & tcp_flags::ACK == 0
}

/// One record's `flow-v2` vector: its `flow-v1` part, its reverse (if any) and the service
/// context `[conversations, failed share, novel]`.
pub fn vector(
    rec: &FlowRecord,
    v1: &FlowFeatures,
    reverse: Option<&FlowRecord>,
    rst_either: bool,
    ctx: [f32; 3],
) -> FlowV2Features {
    let mut v = [0.0; FLOW_V2_WIDTH];
    v[..FLOW_WIDTH].copy_from_slice(v1);
    let (rp, rb, syn_ack) = match reverse {
        Some(r) => (
            r.packets,
            r.bytes,
            r.protocol == FlowRecord::PROTO_TCP
                && r.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK)
                    == tcp_flags::SYN | tcp_flags::ACK,
        ),
        None => (0, 0, false),
    };
    let total = rec.bytes.saturating_add(rb);
    v[8] = if reverse.is_some() { 1.0 } else { 0.0 };
    v[9] = rp as f32;
    v[10] = rb as f32;
    v[11] = if total == 0 {
        1.0
    } else {
        (rec.bytes as f64 / total as f64) as f32
    };
    v[12] = if syn_ack { 1.0 } else { 0.0 };
    v[13] = if rst_either { 1.0 } else { 0.0 };
    v[14] = ctx[0];
    v[15] = ctx[1];
    v[16] = ctx[2];
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::HostWindows;
    use core::net::Ipv4Addr;
    use std::vec::Vec;

    /// The featuriser with its host windows, as the gateway holds them.
    struct F {
        hosts: HostWindows<64>,
        v2: FlowV2<u32, 8, 16>,
    }

    impl F {
        fn new(wait_ms: u64) -> Self {
            F {
                hosts: HostWindows::new(),
                v2: FlowV2::new(wait_ms),
            }
        }
        fn push(
            &mut self,
            r: &FlowRecord,
            p: u32,
            now: u64,
            out: &mut impl FnMut(&FlowRecord, &FlowV2Features, u32),
        ) {
            let v1 = self.hosts.observe(r);
            self.v2.push(r, v1, p, now, out);
        }
        fn expire(&mut self, now: u64, out: &mut impl FnMut(&FlowRecord, &FlowV2Features, u32)) {
            self.v2.expire(now, out);
        }
        fn drain(&mut self, out: &mut impl FnMut(&FlowRecord, &FlowV2Features, u32)) {
            self.v2.drain(out);
        }
        fn stats(&self) -> FlowV2Stats {
            self.v2.stats()
        }
        fn waiting(&self) -> usize {
            self.v2.waiting()
        }
        fn set_learn_until(&mut self, t: Option<u64>) {
            self.v2.set_learn_until(t);
        }
    }

    fn rec(src: u8, dst: u8, sport: u16, dport: u16, flags: u16, last_ms: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, dst)),
            src_port: sport,
            dst_port: dport,
            protocol: 6,
            packets: 2,
            bytes: 100,
            first_ms: last_ms.saturating_sub(10),
            last_ms,
            tcp_flags: flags,
        }
    }

    const SYN: u16 = tcp_flags::SYN;
    const SYNACK: u16 = tcp_flags::SYN | tcp_flags::ACK;
    const RSTACK: u16 = tcp_flags::RST | tcp_flags::ACK;

    fn collect(
        out: &mut Vec<(FlowRecord, FlowV2Features, u32)>,
    ) -> impl FnMut(&FlowRecord, &FlowV2Features, u32) + '_ {
        |r, v, p| out.push((*r, *v, p))
    }

    #[test]
    fn the_reverse_arriving_later_completes_the_pair() {
        let mut f = F::new(500);
        let mut got = Vec::new();
        let syn = rec(
            1,
            2,
            40_000,
            80,
            SYN | tcp_flags::ACK | tcp_flags::PSH,
            1_000,
        );
        let mut ans = rec(2, 1, 80, 40_000, SYNACK | tcp_flags::PSH, 1_000);
        ans.bytes = 900;
        f.push(&syn, 7, 5_000, &mut collect(&mut got));
        f.expire(5_400, &mut collect(&mut got));
        assert!(got.is_empty(), "still waiting at 400 ms");
        f.push(&ans, 8, 5_450, &mut collect(&mut got));
        assert_eq!(got.len(), 2);
        let (r0, v0, p0) = got[0];
        assert_eq!(
            (r0, p0),
            (syn, 7),
            "earlier arrival first, with its payload"
        );
        assert_eq!(&v0[8..14], &[1.0, 2.0, 900.0, 0.1, 1.0, 0.0]);
        assert_eq!(v0[14..], [1.0, 0.0, 0.0]); // one answered conversation, no learning
        let (_, v1, p1) = got[1];
        assert_eq!(p1, 8);
        assert_eq!(&v1[8..12], &[1.0, 2.0, 100.0, 0.9]);
        assert_eq!(
            v1[12], 1.0,
            "cumulative flags: the client sent SYN and ACK too"
        );
        assert_eq!(f.stats().paired, 2);
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn unanswered_records_leave_after_the_wait_and_fail_their_service() {
        let mut f = F::new(500);
        let mut got = Vec::new();
        for p in 0..3u16 {
            f.push(
                &rec(1, 2, 40_000 + p, 22, SYN, 1_000),
                0,
                10_000,
                &mut collect(&mut got),
            );
        }
        f.expire(10_499, &mut collect(&mut got));
        assert!(got.is_empty());
        f.expire(10_500, &mut collect(&mut got));
        assert_eq!(got.len(), 3);
        let last = got[2].1;
        assert_eq!(last[8], 0.0);
        assert_eq!(last[11], 1.0, "all the bytes are this side's");
        assert_eq!(&last[14..16], &[3.0, 1.0]);
        assert_eq!(f.stats().unpaired, 3);
        // A refused connection (RST) fails too; an answered one does not.
        let mut got = Vec::new();
        f.push(
            &rec(1, 2, 41_000, 22, SYN, 1_100),
            0,
            11_000,
            &mut collect(&mut got),
        );
        f.push(
            &rec(2, 1, 22, 41_000, RSTACK, 1_100),
            0,
            11_000,
            &mut collect(&mut got),
        );
        assert_eq!(got[0].1[13], 1.0);
        assert_eq!(&got[0].1[14..16], &[4.0, 1.0]);
        f.push(
            &rec(1, 2, 41_001, 22, SYNACK | tcp_flags::PSH, 1_200),
            0,
            11_000,
            &mut collect(&mut got),
        );
        f.push(
            &rec(2, 1, 22, 41_001, SYNACK | tcp_flags::PSH, 1_200),
            0,
            11_000,
            &mut collect(&mut got),
        );
        assert_eq!(&got[2].1[14..16], &[5.0, 0.8]);
    }

    #[test]
    fn a_reply_first_still_names_the_client_as_initiator() {
        // The server's record arrives first: the service is (client, server, 80), so it shares
        // its window with the client's other connections to port 80.
        let mut f = F::new(500);
        let mut got = Vec::new();
        f.push(
            &rec(2, 1, 80, 40_000, SYNACK, 1_000),
            0,
            1,
            &mut collect(&mut got),
        );
        f.push(
            &rec(1, 2, 40_000, 80, SYN | tcp_flags::ACK, 1_000),
            0,
            1,
            &mut collect(&mut got),
        );
        f.push(
            &rec(1, 2, 40_001, 80, SYN, 1_100),
            0,
            2,
            &mut collect(&mut got),
        );
        f.drain(&mut collect(&mut got));
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].1[14], 2.0);
    }

    #[test]
    fn a_full_pairing_table_emits_the_longest_waiting_record_and_counts() {
        let mut f = F::new(60_000);
        let mut got = Vec::new();
        for i in 0..8u16 {
            f.push(
                &rec(1, 2, 40_000 + i, 80, SYN, 1_000),
                i as u32,
                i as u64,
                &mut collect(&mut got),
            );
        }
        assert!(got.is_empty());
        f.push(
            &rec(1, 2, 50_000, 80, SYN, 1_000),
            99,
            100,
            &mut collect(&mut got),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, 0, "the first arrival went");
        assert_eq!(f.stats().pair_evictions, 1);
        assert_eq!(f.waiting(), 8);
        // A second record of a waiting direction pushes the first one out alone.
        f.push(
            &rec(1, 2, 50_000, 80, SYN, 2_000),
            100,
            101,
            &mut collect(&mut got),
        );
        assert_eq!((got.len(), got[1].2), (2, 99));
        assert_eq!(f.stats().pair_duplicates, 1);
        f.drain(&mut collect(&mut got));
        assert_eq!(got.len(), 10);
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn icmp_echo_pairs_with_its_reply() {
        let mut f = F::new(500);
        let mut got = Vec::new();
        let mut req = rec(1, 2, 0, 8 << 8, 0, 1_000);
        req.protocol = 1;
        let mut rep = rec(2, 1, 0, 0, 0, 1_000);
        rep.protocol = 1;
        f.push(&req, 0, 0, &mut collect(&mut got));
        f.push(&rep, 0, 0, &mut collect(&mut got));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1[8], 1.0);
        // The next exchange's reply is reported first: same service, second conversation.
        f.push(&rep, 0, 1, &mut collect(&mut got));
        f.push(&req, 0, 1, &mut collect(&mut got));
        assert_eq!(got.len(), 4);
        assert_eq!(got[2].1[14], 2.0);
    }

    #[test]
    fn novelty_is_learnt_by_event_time_and_off_without_learning() {
        let mut f = F::new(0);
        f.set_learn_until(Some(10_000));
        let mut got = Vec::new();
        let conv = |f: &mut F, got: &mut Vec<_>, dport: u16, t: u64| {
            let flags = SYNACK | tcp_flags::PSH;
            f.push(&rec(1, 2, 40_000, dport, flags, t), 0, t, &mut collect(got));
            f.push(&rec(2, 1, dport, 40_000, flags, t), 0, t, &mut collect(got));
        };
        conv(&mut f, &mut got, 80, 5_000); // learnt
        conv(&mut f, &mut got, 443, 20_000); // novel
        conv(&mut f, &mut got, 80, 21_000); // known
        conv(&mut f, &mut got, 22, 9_000); // late record from the learning period: learnt
        conv(&mut f, &mut got, 22, 22_000);
        let novel: Vec<f32> = got.iter().step_by(2).map(|g| g.1[16]).collect();
        assert_eq!(novel, [0.0, 1.0, 0.0, 0.0, 0.0]);
        let mut f = F::new(0);
        let mut got = Vec::new();
        conv(&mut f, &mut got, 443, 20_000);
        assert_eq!(got[0].1[16], 0.0);
    }

    #[test]
    fn saved_novelty_keeps_learnt_services_known_after_a_restart() {
        let conv = |f: &mut F, got: &mut Vec<_>, dport: u16, t: u64| {
            let flags = SYNACK | tcp_flags::PSH;
            f.push(&rec(1, 2, 40_000, dport, flags, t), 0, t, &mut collect(got));
            f.push(&rec(2, 1, dport, 40_000, flags, t), 0, t, &mut collect(got));
        };
        let mut f = F::new(0);
        f.set_learn_until(Some(10_000));
        let mut got = Vec::new();
        conv(&mut f, &mut got, 80, 5_000);
        conv(&mut f, &mut got, 22, 6_000);
        assert_eq!(f.v2.novelty_learnt(), 2);
        let mut saved = [0u8; NOVELTY_BYTES];
        f.v2.save_novelty(&mut saved);
        // A restart after the period: a fresh featuriser knows nothing until restored.
        let mut fresh = F::new(0);
        fresh.set_learn_until(Some(10_000));
        assert!(
            !fresh.v2.restore_novelty(&saved[..100]),
            "short input refused"
        );
        assert_eq!(fresh.v2.novelty_learnt(), 0);
        assert!(fresh.v2.restore_novelty(&saved));
        assert_eq!(fresh.v2.novelty_learnt(), 2);
        let mut got = Vec::new();
        conv(&mut fresh, &mut got, 80, 20_000);
        conv(&mut fresh, &mut got, 22, 21_000);
        conv(&mut fresh, &mut got, 443, 22_000);
        let novel: Vec<f32> = got.iter().step_by(2).map(|g| g.1[16]).collect();
        assert_eq!(novel, [0.0, 0.0, 1.0]);
    }

    #[test]
    fn a_full_service_table_evicts_and_counts() {
        let mut f: FlowV2<u32, 8, 4> = FlowV2::new(0);
        let mut got = Vec::new();
        for p in 0..5u16 {
            let r = rec(1, 2, 40_000, p + 1, SYN, 1_000);
            f.push(&r, [0.0; FLOW_WIDTH], 0, 0, &mut collect(&mut got));
            f.expire(1, &mut collect(&mut got));
        }
        assert_eq!(got.len(), 5);
        assert_eq!(f.stats().service_evictions, 1);
    }

    #[test]
    fn the_v1_part_is_flow_v1() {
        let mut f = F::new(0);
        let mut w: HostWindows<64> = HostWindows::new();
        let mut got = Vec::new();
        let r = rec(1, 2, 40_000, 80, SYN, 1_000);
        f.push(&r, 0, 0, &mut collect(&mut got));
        f.drain(&mut collect(&mut got));
        assert_eq!(got[0].1[..FLOW_WIDTH], w.observe(&r));
    }
}
