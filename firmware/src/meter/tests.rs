use super::*;
use crate::synth::{write_frame, SynthLink, SynthPacket};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8, payload: u16) -> SynthPacket {
    SynthPacket {
        src,
        dst,
        protocol: 6,
        src_port: sport,
        dst_port: dport,
        tcp_flags: flags,
        payload_len: payload,
        vlan: None,
    }
}

fn frame(p: &SynthPacket) -> ([u8; 1600], usize) {
    let mut buf = [0u8; 1600];
    let n = write_frame(SynthLink::Ethernet, p, &mut buf).expect("fits");
    (buf, n)
}

/// Feeds packets at the given times, collecting what is emitted.
fn run<const N: usize>(
    meter: &mut Meter<N>,
    packets: &[(u64, SynthPacket)],
    out: &mut std::vec::Vec<BiFlow>,
) {
    for (ts, p) in packets {
        let (buf, n) = frame(p);
        meter
            .observe(LinkType::Ethernet, *ts, &buf[..n], &mut |f| out.push(*f))
            .expect("metered");
    }
}

fn config(idle: u64, active: u64) -> MeterConfig {
    MeterConfig {
        idle_timeout_ms: idle,
        active_timeout_ms: active,
        sweep_interval_ms: 0,
    }
}

#[test]
fn a_tcp_conversation_is_one_flow_oriented_by_its_first_packet() {
    let (c, s) = (v4(1), v4(2));
    let mut m: Meter<16> = Meter::new(MeterConfig::DEFAULT);
    let mut out = std::vec::Vec::new();
    run(
        &mut m,
        &[
            (1000, tcp(c, 40000, s, 80, SYN, 0)),
            (1001, tcp(s, 80, c, 40000, SYN | ACK, 0)),
            (1002, tcp(c, 40000, s, 80, ACK, 0)),
            (1003, tcp(c, 40000, s, 80, PSH | ACK, 100)),
            (1010, tcp(s, 80, c, 40000, PSH | ACK, 1000)),
            (1020, tcp(c, 40000, s, 80, FIN | ACK, 0)),
        ],
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(m.len(), 1);
    m.flush(&mut |f| out.push(*f));
    assert_eq!(out.len(), 1);
    let f = out[0];
    assert_eq!(
        (f.src_addr, f.src_port, f.dst_addr, f.dst_port),
        (c, 40000, s, 80)
    );
    assert_eq!((f.protocol, f.end, f.vlan_id), (6, FlowEnd::Flush, None));
    assert_eq!((f.src2dst.packets, f.dst2src.packets), (4, 2));
    // IP bytes: 40-byte headers plus payloads.
    assert_eq!(f.src2dst.bytes, 4 * 40 + 100);
    assert_eq!(f.dst2src.bytes, 2 * 40 + 1000);
    assert_eq!(f.bidirectional_first_seen_ms(), 1000);
    assert_eq!(f.bidirectional_last_seen_ms(), 1020);
    assert_eq!(f.dst2src.first_seen_ms, 1001);
    assert_eq!(f.src2dst.tcp_flags, SYN | ACK | PSH | FIN);
    // flag_packets order: fin syn rst psh ack urg ece cwr.
    assert_eq!(f.src2dst.flag_packets, [1, 1, 0, 1, 3, 0, 0, 0]);
    assert_eq!(f.dst2src.flag_packets, [0, 1, 0, 1, 2, 0, 0, 0]);
    assert_eq!(f.bidirectional_flag_packets(4), 5);
    assert_eq!((f.src2dst.min_ps, f.src2dst.max_ps), (40, 140));

    let (fwd, rev) = f.records();
    let rev = rev.expect("server answered");
    assert_eq!(
        (fwd.src_addr, fwd.dst_port, fwd.packets, fwd.bytes),
        (c, 80, 4, 260)
    );
    assert_eq!(
        (fwd.first_ms, fwd.last_ms, fwd.tcp_flags),
        (1000, 1020, 0x1b)
    );
    assert_eq!((rev.src_addr, rev.src_port, rev.dst_port), (s, 80, 40000));
    assert_eq!(
        (rev.packets, rev.bytes, rev.first_ms, rev.last_ms),
        (2, 1080, 1001, 1010)
    );

    let cols = f.nfstream_values();
    let col = |name: &str| {
        cols[NFSTREAM_COLUMNS
            .iter()
            .position(|c| *c == name)
            .expect(name)]
    };
    assert_eq!(col("bidirectional_packets"), 6.0);
    assert_eq!(col("bidirectional_bytes"), 1340.0);
    assert_eq!(col("bidirectional_duration_ms"), 20.0);
    assert_eq!(col("src2dst_syn_packets"), 1.0);
    assert_eq!(col("dst2src_ack_packets"), 2.0);
    assert_eq!(col("bidirectional_max_ps"), 1040.0);
    assert_eq!(col("expiration_id"), -1.0);
    let s = m.stats();
    assert_eq!(
        (s.frames, s.packets, s.bytes, s.flows_created, s.flushed),
        (6, 6, 1340, 1, 1)
    );
}

#[test]
fn idle_and_active_timeouts_end_flows_and_later_packets_open_new_ones() {
    let (c, s) = (v4(1), v4(2));
    let mut m: Meter<16> = Meter::new(config(1000, 5000));
    let mut out = std::vec::Vec::new();
    // Idle: 1,000 ms of silence.
    run(
        &mut m,
        &[(0, tcp(c, 1, s, 2, 0, 0)), (999, tcp(s, 2, c, 1, 0, 0))],
        &mut out,
    );
    assert!(out.is_empty());
    run(&mut m, &[(1999, tcp(s, 2, c, 1, 0, 0))], &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].end, out[0].bidirectional_packets()),
        (FlowEnd::Idle, 2)
    );
    // The new flow is oriented by its own first packet (the server's).
    assert_eq!(m.len(), 1);
    // Active: a packet every 900 ms keeps it alive until 5,000 ms after its start.
    let pkts: std::vec::Vec<_> = (1..=6)
        .map(|i| (1999 + i * 900, tcp(c, 1, s, 2, 0, 0)))
        .collect();
    run(&mut m, &pkts, &mut out);
    assert_eq!(out.len(), 2);
    let a = out[1];
    assert_eq!(a.end, FlowEnd::Active);
    assert_eq!((a.src_addr, a.src_port), (s, 2));
    assert_eq!((a.src2dst.packets, a.dst2src.packets), (1, 5));
    let st = m.stats();
    assert_eq!(
        (st.expired_idle, st.expired_active, st.flows_created),
        (1, 1, 3)
    );
    // expire() ends what is idle at the given time, without a packet.
    m.expire(1999 + 6 * 900 + 1000, &mut |f| out.push(*f));
    assert_eq!(out.len(), 3);
    assert!(m.is_empty());
}

#[test]
fn observe_sweeps_the_table_once_per_interval_of_packet_time() {
    let mut m: Meter<16> = Meter::new(MeterConfig {
        idle_timeout_ms: 1000,
        active_timeout_ms: 0,
        sweep_interval_ms: 500,
    });
    let mut out = std::vec::Vec::new();
    run(
        &mut m,
        &[
            (0, tcp(v4(1), 1, v4(2), 2, 0, 0)),
            (100, tcp(v4(3), 1, v4(4), 2, 0, 0)),
        ],
        &mut out,
    );
    run(&mut m, &[(1050, tcp(v4(5), 1, v4(6), 2, 0, 0))], &mut out);
    // The sweep at 1,050 ends the first flow (idle since 0) but not the second (since 100).
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].src_addr, v4(1));
    run(&mut m, &[(1101, tcp(v4(5), 1, v4(6), 2, 0, 0))], &mut out);
    assert_eq!(out.len(), 1, "next sweep not before 1,550");
    run(&mut m, &[(1600, tcp(v4(5), 1, v4(6), 2, 0, 0))], &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn a_full_table_evicts_the_least_recently_seen_candidate_and_counts_it() {
    let mut m: Meter<4> = Meter::new(MeterConfig::DEFAULT);
    let mut out = std::vec::Vec::new();
    for (i, ts) in [(1u8, 10u64), (2, 5), (3, 30), (4, 40)] {
        run(&mut m, &[(ts, tcp(v4(i), 1, v4(100), 2, 0, 0))], &mut out);
    }
    assert_eq!(m.len(), 4);
    run(&mut m, &[(50, tcp(v4(5), 1, v4(100), 2, 0, 0))], &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].src_addr, out[0].end), (v4(2), FlowEnd::Evicted));
    assert_eq!(m.len(), 4);
    let s = m.stats();
    assert_eq!((s.evicted, s.flows_created, s.packets), (1, 5, 5));
}

#[test]
fn vlan_ipv6_icmp_and_link_types() {
    let mut buf = [0u8; 256];
    // 802.1Q-tagged UDP over IPv6.
    let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let b = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    let udp6 = SynthPacket {
        src: a,
        dst: b,
        protocol: 17,
        src_port: 5353,
        dst_port: 53,
        tcp_flags: 0,
        payload_len: 12,
        vlan: Some(42),
    };
    let n = write_frame(SynthLink::Ethernet, &udp6, &mut buf).expect("fits");
    let meta = packet_meta(LinkType::Ethernet, &buf[..n]).expect("parses");
    assert_eq!(
        (meta.src_addr, meta.dst_addr, meta.src_port, meta.dst_port),
        (a, b, 5353, 53)
    );
    assert_eq!((meta.protocol, meta.ip_len, meta.vlan), (17, 60, Some(42)));

    // ICMP echo request: type 8 code 0 in the destination port, as softflowd exports it.
    let ping = SynthPacket {
        protocol: 1,
        src_port: 0,
        dst_port: 8 << 8,
        vlan: None,
        ..tcp(v4(1), 0, v4(2), 0, 0, 56)
    };
    let n = write_frame(SynthLink::Raw, &ping, &mut buf).expect("fits");
    let meta = packet_meta(LinkType::Raw, &buf[..n]).expect("parses");
    assert_eq!(
        (meta.protocol, meta.src_port, meta.dst_port, meta.ip_len),
        (1, 0, 0x0800, 84)
    );

    // ICMPv6 keeps ports 0 (softflowd does not encode its type).
    let ping6 = SynthPacket {
        protocol: 58,
        dst_port: 128 << 8,
        vlan: None,
        ..udp6
    };
    let n = write_frame(SynthLink::Raw, &ping6, &mut buf).expect("fits");
    let meta = packet_meta(LinkType::Raw, &buf[..n]).expect("parses");
    assert_eq!((meta.protocol, meta.src_port, meta.dst_port), (58, 0, 0));

    // Linux SLL: 16-byte header, protocol at 14..16.
    let n = write_frame(
        SynthLink::Raw,
        &tcp(v4(1), 1, v4(2), 2, SYN, 0),
        &mut buf[16..],
    )
    .expect("fits");
    buf[..16].fill(0);
    buf[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
    let meta = packet_meta(LinkType::LinuxSll, &buf[..16 + n]).expect("parses");
    assert_eq!((meta.src_port, meta.dst_port, meta.tcp_flags), (1, 2, SYN));
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let a = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let p = SynthPacket {
        src: a,
        dst: a,
        protocol: 17,
        src_port: 1000,
        dst_port: 2000,
        tcp_flags: 0,
        payload_len: 4,
        vlan: None,
    };
    let mut plain = [0u8; 128];
    let n = write_frame(SynthLink::Raw, &p, &mut plain).expect("fits");
    // Insert an 8-byte hop-by-hop header (next header UDP) after the fixed header.
    let mut buf = [0u8; 128];
    buf[..40].copy_from_slice(&plain[..40]);
    buf[6] = 0; // next header: hop-by-hop
    buf[4..6].copy_from_slice(&((n - 40 + 8) as u16).to_be_bytes());
    buf[40] = 17;
    buf[48..n + 8].copy_from_slice(&plain[40..n]);
    let meta = packet_meta(LinkType::Raw, &buf[..n + 8]).expect("parses");
    assert_eq!(
        (meta.protocol, meta.src_port, meta.dst_port, meta.fragment),
        (17, 1000, 2000, false)
    );
    assert_eq!(meta.ip_len as usize, n + 8);
    // A fragment header with a non-zero offset: no transport header, ports 0.
    buf[6] = 44;
    buf[40] = 17;
    buf[42..44].copy_from_slice(&(185u16 << 3).to_be_bytes());
    let meta = packet_meta(LinkType::Raw, &buf[..n + 8]).expect("parses");
    assert_eq!(
        (meta.protocol, meta.src_port, meta.dst_port, meta.fragment),
        (17, 0, 0, true)
    );
}

#[test]
fn snap_length_cuts_payload_but_bytes_come_from_the_ip_header() {
    let (buf, n) = frame(&tcp(v4(1), 1, v4(2), 2, ACK, 1400));
    assert_eq!(n, 14 + 40 + 1400);
    let meta = packet_meta(LinkType::Ethernet, &buf[..68]).expect("headers captured");
    assert_eq!(meta.ip_len, 1440);
}

#[test]
fn bad_frames_are_counted_errors_never_panics() {
    let mut m: Meter<8> = Meter::new(MeterConfig::DEFAULT);
    let mut emitted = 0;
    let (buf, n) = frame(&tcp(v4(1), 1, v4(2), 2, SYN, 10));
    for len in 0..n {
        let _ = m.observe(LinkType::Ethernet, 0, &buf[..len], &mut |_| emitted += 1);
        let _ = m.observe(
            LinkType::Raw,
            0,
            &buf[14..14 + len.min(n - 14)],
            &mut |_| emitted += 1,
        );
        let _ = m.observe(LinkType::LinuxSll, 0, &buf[..len], &mut |_| emitted += 1);
    }
    let s = m.stats();
    assert_eq!(s.frames, 3 * n as u64);
    assert_eq!(s.frames, s.packets + s.refused());
    assert!(s.truncated > 0 && s.packets > 0);
    let before = s;
    // ARP is not IP.
    let mut arp = buf;
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(
        m.observe(LinkType::Ethernet, 0, &arp[..60], &mut |_| ()),
        Err(FrameError::NotIp)
    );
    // IPv4 header length beyond the total length.
    let mut bad = buf;
    bad[14 + 2..14 + 4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        m.observe(LinkType::Ethernet, 0, &bad[..n], &mut |_| ()),
        Err(FrameError::Malformed)
    );
    let s = m.stats();
    assert_eq!(
        (s.not_ip - before.not_ip, s.malformed - before.malformed),
        (1, 1)
    );
    assert_eq!(emitted, 0);
}
