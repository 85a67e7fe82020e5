//! The hot path (template plans) against netflow_parser alone on the same datagrams
//! (`sources/netflow/differential.rs`): every record, every summary and every exporter counter
//! must agree. Framing as `netflow_datagrams`: repeated `[exporter selector: u8] [length: u16
//! BE] [payload]`, so templates learnt from one datagram decode the next. Seeds: the same
//! NetFlow captures (fuzz/make-seeds.py).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use netwarden::sources::netflow::differential::Differential;

fuzz_target!(|data: &[u8]| {
    let mut d = Differential::new(2);
    let mut rest = data;
    while !rest.is_empty() {
        let (exporter, payload, tail) = match rest {
            [sel, hi, lo, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                (*sel, &tail[..len], &tail[len..])
            }
            _ => (0, rest, &[][..]),
        };
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, exporter % 4)), 2055);
        if let Err(e) = d.feed(from, payload) {
            panic!("hot path and netflow_parser disagree: {e}");
        }
        rest = tail;
    }
});
