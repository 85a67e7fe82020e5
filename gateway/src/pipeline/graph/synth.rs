//! Synthetic edges for the graph bench and the allocation test: 20 % from 300 "servers" to
//! clients, the rest between some 250,000 random `IP:port` endpoints (10.0.0.0/18, 16 ports
//! each), so a table of 100,000 endpoints or fewer fills and evicts as on a busy network.
//! Deterministic for a seed (xorshift64); event time advances 2 ms per edge.

use std::net::{IpAddr, Ipv4Addr};

use netwarden_firmware::FlowRecord;

/// `n` edges from `seed` (non-zero).
pub fn edges(n: usize, seed: u64) -> Vec<FlowRecord> {
    let mut s: u64 = seed;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            let a = next();
            let b = next();
            let mut r = FlowRecord::empty();
            let host = |x: u64| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (x as u32 & 0x3fff)));
            if a % 5 == 0 {
                r.src_addr = host(b % 300);
                r.src_port = [22, 53, 80, 443, 5432][(b % 5) as usize];
                r.dst_addr = host(a >> 20);
                r.dst_port = 32768 + (a >> 40) as u16 % 28000;
            } else {
                r.src_addr = host(a >> 8);
                r.src_port = 1024 + (a >> 30) as u16 % 16;
                r.dst_addr = host(b >> 8);
                r.dst_port = 1024 + (b >> 30) as u16 % 16;
            }
            r.protocol = if a % 7 == 0 { 17 } else { 6 };
            r.packets = 1 + b % 40;
            r.bytes = r.packets * (40 + a % 1400);
            r.first_ms = 1_000_000 + i as u64 * 2;
            r.last_ms = r.first_ms + b % 5000;
            r.tcp_flags = if r.protocol == 6 { 0x1b } else { 0 };
            r
        })
        .collect()
}
