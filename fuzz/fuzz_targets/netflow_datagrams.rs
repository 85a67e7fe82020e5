//! NetFlow v5/v9/IPFIX datagrams through the gateway's decode path
//! (`sources/netflow/decode.rs`), several datagrams per input so that template state, pending
//! flows and sequence tracking carry from one datagram to the next.
//!
//! Input framing: repeated `[exporter selector: u8] [length: u16 BE] [payload]`; a short tail
//! is fed as one last datagram. Four exporters, so per-exporter template scoping is exercised.
//! A second decoder shares a template book (`sources/netflow/templates.rs`) and gets every
//! datagram from another source port, so templates are read back from the book; at the end
//! the book's saved form is restored into a fresh one.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use netwarden::sources::netflow::templates::TemplateBook;
use netwarden::sources::netflow::NetflowDecoder;

fn clock() -> u64 {
    1_000_000
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = NetflowDecoder::new(2);
    let book = Arc::new(TemplateBook::new(60_000, 8, clock));
    let mut booked = NetflowDecoder::with_template_book(2, book.clone());
    let mut out = Vec::new();
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
        decoder.decode(from, payload, &mut out);
        out.clear();
        booked.decode(SocketAddr::new(from.ip(), 4739), payload, &mut out);
        out.clear();
        rest = tail;
    }
    let _ = decoder.totals();
    let saved = book
        .take_changes()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)));
    let _ = TemplateBook::new(60_000, 8, clock).restore(saved);
});
