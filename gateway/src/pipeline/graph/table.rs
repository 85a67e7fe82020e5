//! The temporal graph, online and bounded: endpoints (`IP:port`) in a fixed-capacity table
//! with least-recently-used eviction (counted), each with a ring of its [`K`] most recent
//! interactions. Every storage is allocated when the table is made (or grows to its capacity
//! once); after that an edge allocates nothing: the hash map's capacity is reserved up front
//! and slots of evicted endpoints are reused.
//!
//! [`EndpointTable::observe`] is the one step per edge: it decides who opened the connection,
//! writes the edge's [`INPUT_WIDTH`] row (gathered before the edge joins the histories, so
//! the row sees only earlier interactions), then records the edge at both endpoints.

use std::collections::HashMap;
use std::net::IpAddr;

use netwarden_firmware::FlowRecord;

use super::edge::{
    edge_features, has_ports, icmp_is_reply, EdgeFeatures, EDGE_WIDTH, ENDPOINT_WIDTH, INPUT_WIDTH,
    K, SLOT_WIDTH,
};

/// An endpoint of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// One interaction remembered at an endpoint.
#[derive(Debug, Clone, Copy)]
struct Interaction {
    features: EdgeFeatures,
    first_ms: u64,
    peer_ip: u32,
    peer_port: u16,
    /// The endpoint was the record's source.
    was_src: bool,
}

const EMPTY: Interaction = Interaction {
    features: [0.0; EDGE_WIDTH],
    first_ms: 0,
    peer_ip: 0,
    peer_port: 0,
    was_src: false,
};

#[derive(Debug, Clone)]
struct Node {
    key: Endpoint,
    ring: [Interaction; K],
    /// Next ring position to write.
    head: u8,
    len: u8,
    interactions: u64,
    first_seen_ms: u64,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

/// Counters of the table (reported on /metrics by the graph pipeline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub edges: u64,
    pub endpoints: u64,
    pub evictions: u64,
}

/// Which side of an edge opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    Src,
    Dst,
}

/// The index's hash: foldhash, seeded per process. Keys are `IP:port`s that outside hosts
/// choose (a spoofed flood makes them up), so the hash must not be predictable: the fixed-key
/// SipHash this replaced was, and it cost three times as much per lookup.
type Hasher = foldhash::fast::RandomState;

/// The bounded temporal graph.
#[derive(Debug)]
pub struct EndpointTable {
    index: HashMap<Endpoint, u32, Hasher>,
    nodes: Vec<Node>,
    capacity: usize,
    /// Most and least recently used.
    head: u32,
    tail: u32,
    stats: TableStats,
}

/// A 32-bit digest of an address: enough to tell peers apart in a feature, and 4 bytes a slot.
fn ip_digest(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(v) => u32::from(v),
        IpAddr::V6(v) => {
            let b = v.octets();
            let mut h: u32 = 0x811c_9dc5;
            for x in b {
                h = (h ^ u32::from(x)).wrapping_mul(0x0100_0193);
            }
            h
        }
    }
}

impl EndpointTable {
    /// A table for at most `capacity` endpoints (at least 2). The node storage grows to
    /// `capacity` once and is reused from then on; the index is reserved in full now.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        let mut index = HashMap::with_hasher(Hasher::default());
        index.reserve(capacity);
        EndpointTable {
            index,
            nodes: Vec::with_capacity(capacity),
            capacity,
            head: NIL,
            tail: NIL,
            stats: TableStats::default(),
        }
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            endpoints: self.index.len() as u64,
            ..self.stats
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Who opened the connection `r` belongs to: the destination when the reverse record was
    /// seen first (this one is the reply), when a TCP/UDP record runs from a low (service) port
    /// to a high one, or when an ICMP record is a reply; otherwise the source.
    fn initiator(&self, r: &FlowRecord) -> Initiator {
        let dst = Endpoint {
            addr: r.dst_addr,
            port: r.dst_port,
        };
        if let Some(&i) = self.index.get(&dst) {
            let n = &self.nodes[i as usize];
            let (src_ip, src_port) = (ip_digest(r.src_addr), r.src_port);
            let reverse = n.ring[..usize::from(n.len)]
                .iter()
                .find(|x| x.was_src && x.peer_ip == src_ip && x.peer_port == src_port);
            if let Some(rev) = reverse {
                // Same connection seen from the other side: whoever started earlier opened it;
                // the reverse record's own flag already says who that was.
                return if rev.first_ms <= r.first_ms {
                    if rev.features[EDGE_WIDTH - 1] > 0.5 {
                        Initiator::Dst
                    } else {
                        Initiator::Src
                    }
                } else {
                    Initiator::Src
                };
            }
        }
        if has_ports(r.protocol) {
            if r.src_port < 1024 && r.dst_port >= 1024 {
                return Initiator::Dst;
            }
        } else if icmp_is_reply(r) {
            return Initiator::Dst;
        }
        Initiator::Src
    }

    /// Who opened the connection, judged again once later records are in the table (the
    /// pipeline asks when it scores a batch, for the alert's roles; the row keeps what was
    /// known on arrival, as in training). A TCP record with SYN but no ACK opened it; else,
    /// when the reverse record is known, the earlier of the two opened it, and at the same
    /// start time the one whose record is a bare SYN; else, with both ports above 1024, the
    /// side of the higher (ephemeral) port; else [`Self::initiator`]'s port rules.
    pub fn opened_by(&self, r: &FlowRecord) -> Initiator {
        let syn_only = |flags: u16, proto: u8| proto == 6 && flags & 0x02 != 0 && flags & 0x10 == 0;
        if syn_only(r.tcp_flags, r.protocol) {
            return Initiator::Src;
        }
        let dst = Endpoint {
            addr: r.dst_addr,
            port: r.dst_port,
        };
        if let Some(&i) = self.index.get(&dst) {
            let n = &self.nodes[i as usize];
            let (src_ip, src_port) = (ip_digest(r.src_addr), r.src_port);
            let reverse = n.ring[..usize::from(n.len)]
                .iter()
                .find(|x| x.was_src && x.peer_ip == src_ip && x.peer_port == src_port);
            if let Some(rev) = reverse {
                // Edge features: index 4 is "tcp", 7 "syn", 8 "ack".
                let rev_syn_only =
                    rev.features[4] > 0.5 && rev.features[7] > 0.5 && rev.features[8] < 0.5;
                if rev.first_ms < r.first_ms || (rev.first_ms == r.first_ms && rev_syn_only) {
                    return Initiator::Dst;
                }
                if rev.first_ms > r.first_ms {
                    return Initiator::Src;
                }
            }
        }
        // Both ports above 1024 (a connect scan of 8080, a shell dialling 4444): the lower
        // port is the service, so its side did not open the connection.
        if has_ports(r.protocol) && r.src_port >= 1024 && r.dst_port >= 1024 {
            return if r.src_port < r.dst_port {
                Initiator::Dst
            } else {
                Initiator::Src
            };
        }
        self.initiator(r)
    }

    /// Adds edge `r`: writes its row into `out` ([`INPUT_WIDTH`] values) and returns who
    /// opened the connection.
    pub fn observe(&mut self, r: &FlowRecord, out: &mut [f32; INPUT_WIDTH]) -> Initiator {
        let initiator = self.initiator(r);
        let features = edge_features(r, initiator == Initiator::Src);
        let src = Endpoint {
            addr: r.src_addr,
            port: r.src_port,
        };
        let dst = Endpoint {
            addr: r.dst_addr,
            port: r.dst_port,
        };
        out[..EDGE_WIDTH].copy_from_slice(&features);
        let (s_out, d_out) = out[EDGE_WIDTH..].split_at_mut(ENDPOINT_WIDTH);
        self.gather(src, r.first_ms, ip_digest(r.dst_addr), s_out);
        self.gather(dst, r.first_ms, ip_digest(r.src_addr), d_out);
        self.stats.edges += 1;
        let at = Interaction {
            features,
            first_ms: r.first_ms,
            peer_ip: ip_digest(r.dst_addr),
            peer_port: r.dst_port,
            was_src: true,
        };
        self.record(src, r.first_ms, at);
        self.record(
            dst,
            r.first_ms,
            Interaction {
                peer_ip: ip_digest(r.src_addr),
                peer_port: r.src_port,
                was_src: false,
                ..at
            },
        );
        initiator
    }

    /// Writes `ep`'s endpoint block: its counters, then its recent interactions, newest first.
    fn gather(&self, ep: Endpoint, t_ms: u64, other_ip: u32, out: &mut [f32]) {
        out.fill(0.0);
        let Some(&i) = self.index.get(&ep) else {
            return;
        };
        let n = &self.nodes[i as usize];
        out[0] = (n.interactions as f64).ln_1p() as f32;
        out[1] = (t_ms.saturating_sub(n.first_seen_ms) as f64 / 1000.0).ln_1p() as f32;
        let slots = &mut out[2..];
        for j in 0..usize::from(n.len) {
            let pos = (usize::from(n.head) + K - 1 - j) % K;
            let x = &n.ring[pos];
            let s = &mut slots[j * SLOT_WIDTH..(j + 1) * SLOT_WIDTH];
            s[..EDGE_WIDTH].copy_from_slice(&x.features);
            s[EDGE_WIDTH] = (t_ms.saturating_sub(x.first_ms) as f64).ln_1p() as f32;
            s[EDGE_WIDTH + 1] = if x.was_src { 1.0 } else { 0.0 };
            s[EDGE_WIDTH + 2] = if x.peer_ip == other_ip { 1.0 } else { 0.0 };
            s[EDGE_WIDTH + 3] = 1.0;
        }
    }

    fn record(&mut self, ep: Endpoint, t_ms: u64, x: Interaction) {
        let i = match self.index.get(&ep) {
            Some(&i) => {
                self.unlink(i);
                i
            }
            None => self.insert(ep, t_ms),
        };
        self.push_front(i);
        let n = &mut self.nodes[i as usize];
        n.ring[usize::from(n.head)] = x;
        n.head = ((usize::from(n.head) + 1) % K) as u8;
        n.len = (usize::from(n.len) + 1).min(K) as u8;
        n.interactions += 1;
    }

    /// A node for a new endpoint: a fresh one while below capacity, else the least recently
    /// used one's, evicted (counted).
    fn insert(&mut self, ep: Endpoint, t_ms: u64) -> u32 {
        let fresh = Node {
            key: ep,
            ring: [EMPTY; K],
            head: 0,
            len: 0,
            interactions: 0,
            first_seen_ms: t_ms,
            prev: NIL,
            next: NIL,
        };
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push(fresh);
            (self.nodes.len() - 1) as u32
        } else {
            let i = self.tail;
            self.unlink(i);
            let old = self.nodes[i as usize].key;
            self.index.remove(&old);
            self.stats.evictions += 1;
            self.nodes[i as usize] = fresh;
            i
        };
        self.index.insert(ep, i);
        i
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        let n = &mut self.nodes[i as usize];
        n.prev = NIL;
        n.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            self.nodes[old as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::edge::{ENDPOINT_FEATURES, SLOT_EXTRA};
    use super::*;

    fn rec(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, first_ms: u64) -> FlowRecord {
        let mut r = FlowRecord::empty();
        r.src_addr = IpAddr::from(src);
        r.dst_addr = IpAddr::from(dst);
        r.src_port = sp;
        r.dst_port = dp;
        r.protocol = 6;
        r.packets = 3;
        r.bytes = 180;
        r.first_ms = first_ms;
        r.last_ms = first_ms + 10;
        r
    }

    fn slot(row: &[f32; INPUT_WIDTH], side: usize, k: usize) -> &[f32] {
        let base = EDGE_WIDTH + side * ENDPOINT_WIDTH + ENDPOINT_FEATURES.len() + k * SLOT_WIDTH;
        &row[base..base + SLOT_WIDTH]
    }

    #[test]
    fn a_row_sees_only_earlier_interactions_newest_first() {
        let mut t = EndpointTable::new(64);
        let mut row = [0f32; INPUT_WIDTH];
        let atk = [10, 0, 0, 66];
        let ssh = [10, 0, 0, 30];
        for (n, port) in (40000..40003).enumerate() {
            t.observe(&rec(atk, port, ssh, 22, 1000 * n as u64), &mut row);
        }
        // The fourth attempt: its source endpoint is new, the server's has three attempts.
        let ini = t.observe(&rec(atk, 40003, ssh, 22, 3500), &mut row);
        assert_eq!(ini, Initiator::Src);
        assert!(row[EDGE_WIDTH..EDGE_WIDTH + ENDPOINT_WIDTH]
            .iter()
            .all(|&v| v == 0.0));
        let d_ln_count = row[EDGE_WIDTH + ENDPOINT_WIDTH];
        assert!((d_ln_count - 4f32.ln()).abs() < 1e-6);
        let newest = slot(&row, 1, 0);
        let extra = &newest[EDGE_WIDTH..];
        assert_eq!(SLOT_EXTRA[0], "ln_dt_ms");
        assert!((extra[0] - 1501f32.ln()).abs() < 1e-5, "{}", extra[0]);
        assert_eq!(&extra[1..], &[0.0, 1.0, 1.0]);
        assert!((slot(&row, 1, 2)[EDGE_WIDTH] - 3501f32.ln()).abs() < 1e-5);
        assert!(slot(&row, 1, 3).iter().all(|&v| v == 0.0), "only 3 earlier");
    }

    #[test]
    fn the_reply_names_the_client_as_initiator() {
        let mut t = EndpointTable::new(64);
        let mut row = [0f32; INPUT_WIDTH];
        // Reverse shell: the server (a high port) calls out to the attacker's 4444.
        let out = rec([10, 0, 0, 10], 51000, [10, 0, 0, 66], 4444, 100);
        let back = rec([10, 0, 0, 66], 4444, [10, 0, 0, 10], 51000, 100);
        assert_eq!(t.observe(&out, &mut row), Initiator::Src);
        assert_eq!(t.observe(&back, &mut row), Initiator::Dst);
        assert_eq!(row[EDGE_WIDTH - 1], 0.0);
        // A reply seen before its request: the port rule.
        let mut t = EndpointTable::new(64);
        let reply = rec([10, 0, 0, 30], 22, [10, 0, 0, 66], 40000, 5);
        assert_eq!(t.observe(&reply, &mut row), Initiator::Dst);
    }

    #[test]
    fn a_flood_reply_seen_first_still_names_the_flooder() {
        // hping3 -S -p 5432 from low source ports: the victim's SYN-ACK comes first in the
        // export, both ports are above 1024.
        let mut t = EndpointTable::new(64);
        let mut row = [0f32; INPUT_WIDTH];
        let mut reply = rec([10, 0, 0, 20], 5432, [10, 0, 0, 66], 1657, 7);
        reply.tcp_flags = 0x12;
        let mut syn = rec([10, 0, 0, 66], 1657, [10, 0, 0, 20], 5432, 7);
        syn.tcp_flags = 0x06;
        // On arrival the reply looks like it opened the connection (the row keeps that) ...
        assert_eq!(t.observe(&reply, &mut row), Initiator::Src);
        t.observe(&syn, &mut row);
        // ... judged again with the request in the table, the roles are right.
        assert_eq!(t.opened_by(&reply), Initiator::Dst);
        assert_eq!(t.opened_by(&syn), Initiator::Src);
    }

    #[test]
    fn the_least_recently_used_endpoint_is_evicted_and_counted() {
        let mut t = EndpointTable::new(4);
        let mut row = [0f32; INPUT_WIDTH];
        let a = [10, 0, 0, 1];
        t.observe(&rec(a, 1000, a, 80, 0), &mut row); // a:1000, a:80
        t.observe(&rec(a, 1001, a, 81, 1), &mut row); // a:1001, a:81 (full)
        t.observe(&rec(a, 1000, a, 80, 2), &mut row); // touches a:1000, a:80
        t.observe(&rec(a, 1002, a, 82, 3), &mut row); // evicts a:1001 and a:81
        let s = t.stats();
        assert_eq!((s.edges, s.endpoints, s.evictions), (4, 4, 2));
        // a:80 kept its history (2 interactions).
        t.observe(&rec(a, 1003, a, 80, 4), &mut row);
        assert!((row[EDGE_WIDTH + ENDPOINT_WIDTH] - 3f32.ln()).abs() < 1e-6);
        // a:81 was forgotten: a fresh endpoint.
        t.observe(&rec(a, 1004, a, 81, 5), &mut row);
        assert_eq!(row[EDGE_WIDTH + ENDPOINT_WIDTH], 0.0);
    }

    #[test]
    fn the_ring_keeps_the_k_newest() {
        let mut t = EndpointTable::new(1024);
        let mut row = [0f32; INPUT_WIDTH];
        let s = [10, 0, 0, 2];
        let d = [10, 0, 0, 3];
        for n in 0..(K as u64 + 5) {
            t.observe(&rec(s, 2000 + n as u16, d, 53, n * 1000), &mut row);
        }
        // The last row saw K slots; the oldest gathered is K ms*1000 back.
        let oldest = slot(&row, 1, K - 1);
        assert_eq!(oldest[SLOT_WIDTH - 1], 1.0);
        assert!((oldest[EDGE_WIDTH] - ((K as f32) * 1000.0 + 1.0).ln()).abs() < 1e-4);
    }
}
