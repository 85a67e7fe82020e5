//! The meter's hot path allocates nothing: a counting global allocator sees zero allocations on
//! this thread across `observe` (parsing, new flows, timeouts, sweeps, evictions from a full
//! table), `expire` and `flush`, over a synthetic capture of every supported kind of packet.
//!
//! The firmware crate is `no_std` and has no allocator at all on a microcontroller; this test
//! checks the same property for the host build the gateway uses.
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations_in;
use netwarden_firmware::meter::{Meter, MeterConfig};
use netwarden_firmware::synth::{write_frame, SynthLink, Traffic};
use netwarden_firmware::wire::LinkType;

#[test]
fn metering_allocates_nothing() {
    // Three phases: 150 flows that fit the table (192 flows at most; active timeouts), then
    // 1,000 that do not (evictions), then 150 again after a pause (idle timeouts found by the
    // sweep).
    let phase = |start_s: u64, frames: u64, flows: u32| Traffic {
        frames,
        flows,
        seed: start_s,
        start_us: start_s * 1_000_000,
        gap_us: 2_000,
    };
    let phases = [
        phase(1_700_000_000, 20_000, 150),
        phase(1_700_000_040, 20_000, 1_000),
        phase(1_700_000_100, 20_000, 150),
    ];
    // Frames are prepared outside the measured section.
    let mut frames = Vec::new();
    let mut buf = [0u8; 2048];
    for t in &phases {
        for k in 0..t.frames {
            let (ts_us, p) = t.packet(k);
            let n = write_frame(SynthLink::Ethernet, &p, &mut buf).expect("fits");
            frames.push((ts_us / 1000, buf[..n].to_vec()));
        }
    }
    let total = frames.len() as u64;
    frames.push((1_700_000_200_000, vec![0u8; 10])); // refused: truncated
    let mut meter: Box<Meter<256>> = Box::new(Meter::new(MeterConfig {
        idle_timeout_ms: 5_000,
        active_timeout_ms: 30_000,
        sweep_interval_ms: 1_000,
    }));
    let mut emitted = 0u64;
    let mut packets = 0u64;

    let (allocations, ()) = allocations_in(|| {
        let mut emit = |f: &netwarden_firmware::BiFlow| {
            emitted += 1;
            packets += f.bidirectional_packets();
        };
        for (ts, frame) in &frames {
            let _ = meter.observe(LinkType::Ethernet, *ts, frame, &mut emit);
        }
        meter.expire(u64::MAX / 2, &mut emit);
        meter.flush(&mut emit);
    });
    let s = meter.stats();
    // The run exercised what it claims to: evictions from the full table, idle and active
    // timeouts, a refused frame.
    assert!(
        s.evicted > 0 && s.expired_idle > 0 && s.expired_active > 0,
        "{s:?}"
    );
    assert_eq!(s.truncated, 1);
    assert_eq!(packets, total);
    assert_eq!(emitted, s.flows_created);
    assert_eq!(allocations, 0, "metering allocated {allocations} times");
}

#[test]
fn arp_accounting_allocates_nothing() {
    use netwarden_firmware::meter::arp::{ethernet_arp, ArpConfig, ArpMeter, ArpOp};
    use std::net::Ipv4Addr;
    // Requests and replies among 200 hosts (more than the 48 bindings the table holds, so it
    // evicts), flips of every address to one MAC, and a cut frame.
    let host = |i: u32| {
        (
            [2, 0, 0, 0, (i >> 8) as u8, i as u8],
            Ipv4Addr::from(0x0a00_0000 + i),
        )
    };
    let mut frames = Vec::new();
    for i in 1..=200u32 {
        let (a, b) = (host(i), host(i % 200 + 1));
        frames.push(ethernet_arp(a.0, [0xff; 6], ArpOp::Request, a, ([0; 6], b.1)).to_vec());
        frames.push(ethernet_arp(b.0, a.0, ArpOp::Reply, b, a).to_vec());
        // Unasked: "b is-at spoofer" to a third host.
        let (spoofer, c) = (host(999), host((i + 7) % 200 + 1));
        frames.push(ethernet_arp(spoofer.0, c.0, ArpOp::Reply, (spoofer.0, b.1), c).to_vec());
    }
    let cut = ethernet_arp(host(1).0, [0xff; 6], ArpOp::Request, host(1), host(2));
    frames.push(cut[..30].to_vec());
    let mut meter: Box<ArpMeter<64>> = Box::new(ArpMeter::new(ArpConfig::DEFAULT));
    let mut notable = 0u64;
    let (allocations, ()) = allocations_in(|| {
        for (k, frame) in frames.iter().enumerate() {
            if let Ok(e) = meter.observe(LinkType::Ethernet, 1_700_000_000_000 + k as u64, frame) {
                notable += u64::from(e.notable());
            }
        }
    });
    let s = meter.stats();
    assert!(s.bindings_evicted > 0 && s.bindings_changed > 0, "{s:?}");
    assert!(s.unsolicited_replies >= 200 && notable > 0, "{s:?}");
    assert_eq!(s.truncated, 1);
    assert_eq!(
        allocations, 0,
        "ARP accounting allocated {allocations} times"
    );
}
