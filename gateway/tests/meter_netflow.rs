//! Metered traffic and the same traffic exported as NetFlow v5 give the gateway the same flow
//! records and the same `flow-v1` feature vectors.
//!
//! The NetFlow side does not use the meter: the test folds the packets per direction itself (as
//! a NetFlow exporter does: packets, IP bytes, first/last seen, OR of TCP flags, ICMP type and
//! code in the destination port), encodes v5 datagrams with uptime-relative times and decodes
//! them with the gateway's own `NetflowDecoder`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use netwarden::sources::netflow::NetflowDecoder;
use netwarden_firmware::features::HostWindows;
use netwarden_firmware::meter::{Meter, MeterConfig};
use netwarden_firmware::synth::{write_frame, SynthLink, SynthPacket};
use netwarden_firmware::wire::LinkType;
use netwarden_firmware::FlowRecord;

const T0: u64 = 1_700_000_000_000;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn pkt(src: u8, sport: u16, dst: u8, dport: u16, proto: u8, flags: u8, len: u16) -> SynthPacket {
    SynthPacket {
        src: ip(src),
        dst: ip(dst),
        protocol: proto,
        src_port: sport,
        dst_port: dport,
        tcp_flags: flags,
        payload_len: len,
        vlan: None,
    }
}

/// A web fetch, a DNS exchange, pings with replies, and a SYN scan answered by resets.
fn traffic() -> Vec<(u64, SynthPacket)> {
    let (syn, ack, psh, fin, rst) = (0x02, 0x10, 0x08, 0x01, 0x04);
    let mut t = vec![
        (0, pkt(10, 51000, 20, 80, 6, syn, 0)),
        (3, pkt(20, 80, 10, 51000, 6, syn | ack, 0)),
        (4, pkt(10, 51000, 20, 80, 6, ack, 0)),
        (5, pkt(10, 51000, 20, 80, 6, psh | ack, 310)),
        (40, pkt(20, 80, 10, 51000, 6, ack, 1448)),
        (41, pkt(20, 80, 10, 51000, 6, psh | ack, 900)),
        (42, pkt(10, 51000, 20, 80, 6, ack, 0)),
        (60, pkt(10, 51000, 20, 80, 6, fin | ack, 0)),
        (61, pkt(20, 80, 10, 51000, 6, fin | ack, 0)),
        (62, pkt(10, 51000, 20, 80, 6, ack, 0)),
        (100, pkt(10, 40001, 53, 53, 17, 0, 33)),
        (112, pkt(53, 53, 10, 40001, 17, 0, 120)),
    ];
    for i in 0..3 {
        t.push((200 + 1000 * i, pkt(10, 0, 30, 8 << 8, 1, 0, 56)));
        t.push((201 + 1000 * i, pkt(30, 0, 10, 0, 1, 0, 56)));
    }
    for port in 1..=40u16 {
        let at = 5000 + u64::from(port) * 2;
        t.push((at, pkt(66, 60000, 20, port, 6, syn, 0)));
        if port % 3 != 0 {
            t.push((at + 1, pkt(20, port, 66, 60000, 6, rst | ack, 0)));
        }
    }
    t.into_iter().map(|(ms, p)| (T0 + ms, p)).collect()
}

fn metered(traffic: &[(u64, SynthPacket)]) -> Vec<FlowRecord> {
    let mut meter: Meter<128> = Meter::new(MeterConfig::DEFAULT);
    let mut flows = Vec::new();
    let mut buf = [0u8; 2048];
    for (ts, p) in traffic {
        let n = write_frame(SynthLink::Ethernet, p, &mut buf).expect("fits");
        meter
            .observe(LinkType::Ethernet, *ts, &buf[..n], &mut |f| flows.push(*f))
            .expect("metered");
    }
    meter.flush(&mut |f| flows.push(*f));
    assert_eq!(meter.stats().packets, traffic.len() as u64);
    let mut records = Vec::new();
    for f in &flows {
        let (fwd, rev) = f.records();
        records.push(fwd);
        records.extend(rev);
    }
    records
}

/// What a unidirectional NetFlow exporter reports for the same packets.
fn exported(traffic: &[(u64, SynthPacket)]) -> Vec<FlowRecord> {
    let mut flows: BTreeMap<(IpAddr, IpAddr, u16, u16, u8), FlowRecord> = BTreeMap::new();
    for (ts, p) in traffic {
        let l4 = match p.protocol {
            6 => 20,
            _ => 8,
        };
        let sport = if p.protocol == 1 { 0 } else { p.src_port };
        let r = flows
            .entry((p.src, p.dst, sport, p.dst_port, p.protocol))
            .or_insert(FlowRecord {
                src_addr: p.src,
                dst_addr: p.dst,
                src_port: sport,
                dst_port: p.dst_port,
                protocol: p.protocol,
                first_ms: *ts,
                ..FlowRecord::empty()
            });
        r.packets += 1;
        r.bytes += 20 + l4 + u64::from(p.payload_len);
        r.last_ms = *ts;
        r.tcp_flags |= u16::from(p.tcp_flags);
    }
    flows.into_values().collect()
}

/// NetFlow v5 datagrams (30 records each) for `records`, exported at `export_ms` by a router
/// whose uptime is then `uptime`.
fn v5_datagrams(records: &[FlowRecord], export_ms: u64, uptime: u32) -> Vec<Vec<u8>> {
    let up = |ms: u64| uptime - (export_ms - ms) as u32;
    records
        .chunks(30)
        .enumerate()
        .map(|(i, chunk)| {
            let mut d = Vec::new();
            d.extend_from_slice(&5u16.to_be_bytes());
            d.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            d.extend_from_slice(&uptime.to_be_bytes());
            d.extend_from_slice(&((export_ms / 1000) as u32).to_be_bytes());
            d.extend_from_slice(&0u32.to_be_bytes());
            d.extend_from_slice(&((i * 30) as u32).to_be_bytes());
            d.extend_from_slice(&[0, 0, 0, 0]);
            for r in chunk {
                let (IpAddr::V4(s), IpAddr::V4(t)) = (r.src_addr, r.dst_addr) else {
                    panic!("v5 is IPv4 only");
                };
                d.extend_from_slice(&s.octets());
                d.extend_from_slice(&t.octets());
                d.extend_from_slice(&[0; 8]); // next hop, in/out if
                d.extend_from_slice(&(r.packets as u32).to_be_bytes());
                d.extend_from_slice(&(r.bytes as u32).to_be_bytes());
                d.extend_from_slice(&up(r.first_ms).to_be_bytes());
                d.extend_from_slice(&up(r.last_ms).to_be_bytes());
                d.extend_from_slice(&r.src_port.to_be_bytes());
                d.extend_from_slice(&r.dst_port.to_be_bytes());
                d.extend_from_slice(&[0, r.tcp_flags as u8, r.protocol, 0]);
                d.extend_from_slice(&[0; 8]);
            }
            d
        })
        .collect()
}

fn sorted(mut v: Vec<FlowRecord>) -> Vec<FlowRecord> {
    v.sort_by_key(|r| {
        (
            r.last_ms, r.first_ms, r.src_addr, r.dst_addr, r.src_port, r.dst_port,
        )
    });
    v
}

fn vectors(records: &[FlowRecord]) -> Vec<[f32; 8]> {
    let mut w: Box<HostWindows<64>> = Box::default();
    records.iter().map(|r| w.observe(r)).collect()
}

#[test]
fn metered_traffic_gives_the_same_records_and_features_as_netflow_v5() {
    let traffic = traffic();
    let from_meter = sorted(metered(&traffic));

    let export_ms = T0 + 10_000; // whole seconds: v5 headers carry secs + nsecs
    let mut decoder = NetflowDecoder::new(4);
    let exporter = SocketAddr::from(([127, 0, 0, 1], 2055));
    let mut decoded = Vec::new();
    for d in v5_datagrams(&exported(&traffic), export_ms, 3_600_000) {
        let s = decoder.decode(exporter, &d, &mut decoded);
        assert!(!s.error);
    }
    assert_eq!(decoder.totals().decode_errors(), 0);
    let from_netflow = sorted(decoded.into_iter().map(|(_, r)| r).collect());

    // 1 web + 1 DNS conversation (2 records each), 2 ping flows (request, reply: their ICMP
    // types differ), 40 scan probes of which 27 were answered.
    assert_eq!(from_meter.len(), 2 + 2 + 2 + 40 + 27);
    assert_eq!(from_meter, from_netflow);
    let (a, b) = (vectors(&from_meter), vectors(&from_netflow));
    assert_eq!(a, b);
    // And the vectors are not trivially equal: the scanner's last probe sees its window.
    let scan_last = from_meter
        .iter()
        .rposition(|r| r.src_addr == ip(66))
        .expect("scan");
    assert_eq!(a[scan_last][5], 40.0);
    assert!(a[scan_last][6] > 35.0, "{:?}", a[scan_last]);
    assert_eq!(a[scan_last][4], 1.0, "SYN without ACK");
}

/// The committed raw capture (`tests/data/pcap/scan-mixed.pcap`: HTTP, DNS-like UDP, pings and
/// an nmap SYN scan, snap length 128) metered here, against softflowd 1.1.0's NetFlow v5 export
/// of that same capture (`tests/data/netflow/softflowd-v5-scan-mixed.pcap`, made by
/// tests/data/make-fixtures.sh), decoded by the gateway: every directed 5-tuple must carry the
/// same packets, bytes and TCP flags. softflowd read the file in well under its timeouts and
/// flushed every flow at the end, so the meter runs without timeouts and flushes too.
#[test]
fn metered_capture_matches_softflowds_export_of_it() {
    use pcap_file::pcap::PcapReader;
    use std::path::Path;

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let raw = std::fs::File::open(data.join("pcap/scan-mixed.pcap")).expect("fixture");
    let mut reader = PcapReader::new(raw).expect("pcap");
    let link = LinkType::from_pcap(u32::from(reader.header().datalink)).expect("link type");
    let mut meter: Box<Meter<4096>> = Box::new(Meter::new(MeterConfig {
        idle_timeout_ms: 0,
        active_timeout_ms: 0,
        sweep_interval_ms: 0,
    }));
    let mut flows = Vec::new();
    let mut frames = 0u64;
    let frac_per_ms = match reader.header().ts_resolution {
        pcap_file::TsResolution::MicroSecond => 1_000,
        pcap_file::TsResolution::NanoSecond => 1_000_000,
    };
    // `next_packet` would refuse these records: pcap-file 2.0.0 wrongly rejects a record whose
    // original length exceeds the snap length, i.e. every frame cut by `-s 128`.
    while let Some(p) = reader.next_raw_packet() {
        let p = p.expect("packet");
        frames += 1;
        let ts = u64::from(p.ts_sec) * 1000 + u64::from(p.ts_frac) / frac_per_ms;
        let _ = meter.observe(link, ts, &p.data, &mut |f| flows.push(*f));
    }
    meter.flush(&mut |f| flows.push(*f));
    let stats = meter.stats();
    assert_eq!(stats.evicted, 0);

    type Key = (IpAddr, IpAddr, u16, u16, u8);
    let mut metered: BTreeMap<Key, (u64, u64, u16)> = BTreeMap::new();
    for f in &flows {
        let (fwd, rev) = f.records();
        for r in std::iter::once(fwd).chain(rev) {
            let e = metered
                .entry((r.src_addr, r.dst_addr, r.src_port, r.dst_port, r.protocol))
                .or_default();
            e.0 += r.packets;
            e.1 += r.bytes;
            e.2 |= r.tcp_flags;
        }
    }

    let (datagrams, _) = netwarden::sources::netflow::export_pcap::read_datagrams(
        &data.join("netflow/softflowd-v5-scan-mixed.pcap"),
        None,
    )
    .expect("export fixture");
    let mut decoder = NetflowDecoder::new(4);
    let mut decoded = Vec::new();
    for d in &datagrams {
        decoder.decode(d.src, &d.payload, &mut decoded);
    }
    let mut exported: BTreeMap<Key, (u64, u64, u16)> = BTreeMap::new();
    for (_, r) in &decoded {
        let e = exported
            .entry((r.src_addr, r.dst_addr, r.src_port, r.dst_port, r.protocol))
            .or_default();
        e.0 += r.packets;
        e.1 += r.bytes;
        e.2 |= r.tcp_flags;
    }

    let total = |m: &BTreeMap<Key, (u64, u64, u16)>| m.values().map(|v| v.0).sum::<u64>();
    assert!(exported.len() > 1000, "{} exported records", exported.len());
    assert_eq!(
        total(&exported),
        stats.packets,
        "packets metered vs exported"
    );
    let differ: Vec<_> = metered
        .iter()
        .filter(|(k, v)| exported.get(*k) != Some(*v))
        .take(5)
        .collect();
    assert!(differ.is_empty(), "first differences: {differ:?}");
    assert_eq!(metered.len(), exported.len());
    assert_eq!(stats.packets + stats.refused(), frames);
}
