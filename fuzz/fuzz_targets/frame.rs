//! Captured frames through the packet meter (`firmware/src/meter/`): the frame parser
//! (`wire::packet_meta`, every link type) and the flow table, several frames per input so that
//! timeouts, sweeps and evictions from a small (8-flow) table happen.
//!
//! Input framing: repeated `[link: u8] [time step: u8] [length: u16 BE] [frame]`; the time
//! advances by `step * 16` ms before each frame. A short tail is fed as one last Ethernet frame.
//! Checks, besides "no panic": a frame is metered exactly when the parser accepts it, and the
//! flows emitted by timeouts, eviction and the final flush hold every metered packet and byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden_firmware::meter::{Meter, MeterConfig};
use netwarden_firmware::wire::{packet_meta, udp_datagram};

#[path = "common/frames.rs"]
mod frames;

fuzz_target!(|data: &[u8]| {
    let mut meter: Meter<8> = Meter::new(MeterConfig {
        idle_timeout_ms: 1_000,
        active_timeout_ms: 5_000,
        sweep_interval_ms: 500,
    });
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut emit = |f: &netwarden_firmware::BiFlow| {
        packets += f.bidirectional_packets();
        bytes += f.bidirectional_bytes();
    };
    let mut ts = 1_700_000_000_000u64;
    for (link, step, frame) in frames::frames(data) {
        ts += u64::from(step) * 16;
        let parsed = packet_meta(link, frame);
        let metered = meter.observe(link, ts, frame, &mut emit);
        assert_eq!(parsed.is_ok(), metered.is_ok(), "{parsed:?} vs {metered:?}");
        let _ = udp_datagram(link, frame);
    }
    meter.flush(&mut emit);
    let stats = meter.stats();
    assert_eq!((packets, bytes), (stats.packets, stats.bytes));
    assert_eq!(stats.frames, stats.packets + stats.refused());
    assert_eq!(stats.flows_created, stats.emitted());
});
