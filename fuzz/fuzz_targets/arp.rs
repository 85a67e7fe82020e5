//! Captured frames through the ARP side of the packet meter (`firmware/src/meter/arp.rs`:
//! `arp_frame`, every link type, and the binding table) and the gateway's ARP rules
//! (`gateway/src/pipeline/arp/`), several frames per input, with a small (8-slot) table so that
//! evictions, flips, restorations and rate windows happen.
//!
//! Input framing, as the `frame` target: repeated `[link: u8] [time step: u8] [length: u16 BE]
//! [frame]`; the time advances by `step * 256` ms before each frame (a step of 255 is about a
//! minute: solicit windows and rate windows pass). A short tail is fed as one Ethernet frame.
//! Checks, besides "no panic": a frame is accounted exactly when the parser accepts it, the
//! kinds add up, the table never holds more than its capacity and its evictions are counted.
//! Built `--no-default-features`, it fuzzes the firmware part alone (no gateway, no tract).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden_firmware::meter::arp::{arp_frame, ArpConfig, ArpMeter, BindingChange};

#[path = "common/frames.rs"]
mod frames;

fuzz_target!(|data: &[u8]| {
    let mut meter: ArpMeter<8> = ArpMeter::new(ArpConfig {
        solicit_window_ms: 2_000,
        max_bindings: 0,
    });
    #[cfg(feature = "gateway")]
    let mut rules = gateway::rules();
    let mut ts = 1_700_000_000_000u64;
    let mut accepted = 0u64;
    for (link, step, frame) in frames::frames(data) {
        ts += u64::from(step) * 256;
        let parsed = arp_frame(link, frame);
        let observed = meter.observe(link, ts, frame);
        assert_eq!(
            parsed.is_ok(),
            observed.is_ok(),
            "{parsed:?} vs {observed:?}"
        );
        if let Ok(e) = observed {
            accepted += 1;
            assert!(usize::from(e.sender_claims) <= meter.len());
            if let BindingChange::Changed { old } = e.binding {
                assert_ne!(old.mac, e.frame.sender_mac);
            }
            #[cfg(feature = "gateway")]
            gateway::ingest(&mut rules, e);
        }
        assert!(meter.len() <= meter.capacity());
    }
    let s = meter.stats();
    assert_eq!(s.packets, accepted);
    assert_eq!(s.packets, s.requests + s.replies + s.gratuitous + s.probes);
    assert_eq!(s.bindings_new - s.bindings_evicted, meter.len() as u64);
});

#[cfg(feature = "gateway")]
mod gateway {
    use std::sync::Arc;

    use netwarden::metrics::Metrics;
    use netwarden::pipeline::arp::{ArpDetector, ArpRules};
    use netwarden::records::FlowOrigin;
    use netwarden_firmware::meter::arp::ArpEvent;

    /// The gateway's rules with low thresholds, so that every rule fires on short inputs.
    pub fn rules() -> ArpDetector {
        ArpDetector::new(
            ArpRules {
                unsolicited_per_min: 3,
                max_ips_per_mac: 2,
                ..ArpRules::default()
            },
            "fuzz",
            "fuzz",
            Arc::new(Metrics::default()),
        )
        .with_clock(|| 0)
    }

    pub fn ingest(rules: &mut ArpDetector, e: ArpEvent) {
        let origin = FlowOrigin::Meter("capture:fuzz".into());
        rules.ingest(&origin, &[e], &mut |a| {
            let s = a.subject.arp().expect("an ARP alert has an ARP subject");
            assert!(!s.attacker_mac.is_empty());
        });
    }
}
