//! Property tests: whatever the traffic, timeouts and table pressure, every metered packet and
//! byte ends up in exactly one emitted flow, on the right direction of the right 5-tuple.

use super::*;
use crate::synth::{write_frame, SynthLink, SynthPacket};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::vec::Vec;

/// One step of a run: a packet between two of a few hosts after `gap_ms`, a garbage frame, or
/// a call to `expire`.
#[derive(Debug, Clone)]
enum Step {
    Packet {
        gap_ms: u64,
        src: u8,
        dst: u8,
        proto: u8,
        sport: u16,
        dport: u16,
        flags: u8,
        len: u16,
        v6: bool,
        vlan: Option<u16>,
    },
    Garbage(Vec<u8>),
    Expire(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            prop_oneof![3 => 0u64..50, 1 => 0u64..3000],
            0u8..5,
            0u8..5,
            prop_oneof![Just(6u8), Just(17u8), Just(1u8), Just(58u8), Just(47u8)],
            0u16..3,
            0u16..3,
            any::<u8>(),
            0u16..1500,
            any::<bool>(),
            proptest::option::of(0u16..4),
        )
            .prop_map(|(gap_ms, src, dst, proto, sport, dport, flags, len, v6, vlan)| {
                Step::Packet { gap_ms, src, dst, proto, sport, dport, flags, len, v6, vlan }
            }),
        1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Step::Garbage),
        1 => (0u64..3000).prop_map(Step::Expire),
    ]
}

fn addr(host: u8, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, host))
    }
}

type Directed = (IpAddr, IpAddr, u16, u16, u8);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Count {
    packets: u64,
    bytes: u64,
}

fn check<const N: usize>(steps: &[Step], config: MeterConfig) -> Result<(), TestCaseError> {
    let mut meter: Meter<N> = Meter::new(config);
    let mut emitted: Vec<BiFlow> = Vec::new();
    let mut sent: BTreeMap<Directed, Count> = BTreeMap::new();
    let mut refused = 0u64;
    let mut now = 1_000_000u64;
    let mut buf = [0u8; 1600];
    for s in steps {
        match s {
            Step::Packet {
                gap_ms,
                src,
                dst,
                proto,
                sport,
                dport,
                flags,
                len,
                v6,
                vlan,
            } => {
                now += gap_ms;
                let p = SynthPacket {
                    src: addr(*src, *v6),
                    dst: addr(*dst, *v6),
                    protocol: *proto,
                    src_port: *sport,
                    dst_port: *dport,
                    tcp_flags: *flags,
                    payload_len: *len,
                    vlan: *vlan,
                };
                let n = write_frame(SynthLink::Ethernet, &p, &mut buf).expect("fits");
                let meta = packet_meta(LinkType::Ethernet, &buf[..n]).expect("synthetic parses");
                let r = meter.observe(LinkType::Ethernet, now, &buf[..n], &mut |f| {
                    emitted.push(*f)
                });
                prop_assert!(r.is_ok());
                let c = sent
                    .entry((
                        meta.src_addr,
                        meta.dst_addr,
                        meta.src_port,
                        meta.dst_port,
                        meta.protocol,
                    ))
                    .or_default();
                c.packets += 1;
                c.bytes += u64::from(meta.ip_len);
            }
            Step::Garbage(bytes) => {
                if meter
                    .observe(LinkType::Ethernet, now, bytes, &mut |f| emitted.push(*f))
                    .is_err()
                {
                    refused += 1;
                } else {
                    // Random bytes that happen to be a valid packet are metered like any other.
                    let meta = packet_meta(LinkType::Ethernet, bytes).expect("was metered");
                    let c = sent
                        .entry((
                            meta.src_addr,
                            meta.dst_addr,
                            meta.src_port,
                            meta.dst_port,
                            meta.protocol,
                        ))
                        .or_default();
                    c.packets += 1;
                    c.bytes += u64::from(meta.ip_len);
                }
            }
            Step::Expire(ahead) => meter.expire(now + ahead, &mut |f| emitted.push(*f)),
        }
        prop_assert!(meter.len() <= N);
    }
    meter.flush(&mut |f| emitted.push(*f));
    prop_assert!(meter.is_empty());

    let mut got: BTreeMap<Directed, Count> = BTreeMap::new();
    for f in &emitted {
        prop_assert!(
            f.src2dst.packets >= 1,
            "a flow starts with a src2dst packet: {:?}",
            f
        );
        if config.active_timeout_ms != 0 {
            prop_assert!(f.bidirectional_duration_ms() < config.active_timeout_ms);
        }
        let (fwd, rev) = f.records();
        for r in core::iter::once(fwd).chain(rev) {
            let c = got
                .entry((r.src_addr, r.dst_addr, r.src_port, r.dst_port, r.protocol))
                .or_default();
            c.packets += r.packets;
            c.bytes += r.bytes;
        }
    }
    prop_assert_eq!(&got, &sent);
    let st = meter.stats();
    prop_assert_eq!(st.refused(), refused);
    prop_assert_eq!(st.frames, st.packets + refused);
    prop_assert_eq!(st.packets, sent.values().map(|c| c.packets).sum::<u64>());
    prop_assert_eq!(st.bytes, sent.values().map(|c| c.bytes).sum::<u64>());
    prop_assert_eq!(st.emitted(), emitted.len() as u64);
    prop_assert_eq!(st.flows_created, emitted.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nothing_lost_or_double_counted_in_a_full_small_table(
        steps in proptest::collection::vec(step(), 1..300),
        idle in prop_oneof![Just(0u64), 100u64..2000],
        active in prop_oneof![Just(0u64), 500u64..5000],
        sweep in prop_oneof![Just(0u64), 1u64..1000],
    ) {
        let config = MeterConfig { idle_timeout_ms: idle, active_timeout_ms: active, sweep_interval_ms: sweep };
        check::<4>(&steps, config)?;
        check::<64>(&steps, config)?;
    }
}
