//! Capture files of export datagrams, the path of `netwarden features --netflow-pcap` and
//! `netwarden demo`: the pcap reader (`sources/netflow/export_pcap.rs`, pcap-file plus the
//! firmware's smoltcp link/IP/UDP views) and then every datagram through the decoder.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netwarden::sources::netflow::export_pcap::read_datagrams_from;
use netwarden::sources::netflow::NetflowDecoder;

fuzz_target!(|data: &[u8]| {
    let Ok((datagrams, _stats)) = read_datagrams_from(data, Path::new("fuzz.pcap"), None) else {
        return;
    };
    let mut decoder = NetflowDecoder::new(16);
    let mut out = Vec::new();
    for d in &datagrams {
        out.clear();
        decoder.decode(d.src, &d.payload, &mut out);
    }
});
