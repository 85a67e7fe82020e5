//! Synthetic frames: what the meter's tests, benchmark, fuzz seeds, the pcap generator
//! (`nw-gen-pcap`) and the Cortex-M demo image feed it. Written with smoltcp's setters into a
//! caller's buffer; no allocation.

use core::net::IpAddr;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet, IpAddress,
    IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket,
};

/// One packet to write. For ICMP (v4 and v6), `dst_port` carries `type << 8 | code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flag bits (FIN = 0x01 ... CWR = 0x80).
    pub tcp_flags: u8,
    /// Transport payload bytes (zeros).
    pub payload_len: u16,
    /// 802.1Q tag (Ethernet only).
    pub vlan: Option<u16>,
}

/// Link layers [`write_frame`] can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthLink {
    Ethernet,
    Raw,
}

/// Writes `p` as a frame into `buf`; its length, or `None` if `buf` is too small or the
/// addresses mix IPv4 and IPv6.
pub fn write_frame(link: SynthLink, p: &SynthPacket, buf: &mut [u8]) -> Option<usize> {
    let l4_header = match p.protocol {
        6 => 20,
        17 => 8,
        1 | 58 => 8,
        _ => 0,
    };
    let l4_len = l4_header + usize::from(p.payload_len);
    let ip_header = if p.src.is_ipv4() { 20 } else { 40 };
    let l2 = match (link, p.vlan) {
        (SynthLink::Raw, _) => 0,
        (SynthLink::Ethernet, None) => 14,
        (SynthLink::Ethernet, Some(_)) => 18,
    };
    let total = l2 + ip_header + l4_len;
    if buf.len() < total || ip_header + l4_len > usize::from(u16::MAX) {
        return None;
    }
    let buf = &mut buf[..total];
    buf.fill(0);
    let ethertype = if p.src.is_ipv4() {
        EthernetProtocol::Ipv4
    } else {
        EthernetProtocol::Ipv6
    };
    if link == SynthLink::Ethernet {
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_src_addr(EthernetAddress([0x02, 0, 0, 0, 0, 1]));
        eth.set_dst_addr(EthernetAddress([0x02, 0, 0, 0, 0, 2]));
        match p.vlan {
            None => eth.set_ethertype(ethertype),
            Some(id) => {
                eth.set_ethertype(EthernetProtocol::Unknown(0x8100));
                buf[14..16].copy_from_slice(&(id & 0x0fff).to_be_bytes());
                buf[16..18].copy_from_slice(&u16::from(ethertype).to_be_bytes());
            }
        }
    }
    let (ip, l4) = buf[l2..].split_at_mut(ip_header);
    let proto = IpProtocol::from(p.protocol);
    let (src, dst) = match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut v4 = Ipv4Packet::new_unchecked(&mut ip[..]);
            v4.set_version(4);
            v4.set_header_len(20);
            v4.set_total_len((20 + l4_len) as u16);
            v4.set_hop_limit(64);
            v4.set_next_header(proto);
            v4.set_src_addr(s);
            v4.set_dst_addr(d);
            v4.fill_checksum();
            (IpAddress::Ipv4(s), IpAddress::Ipv4(d))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut v6 = Ipv6Packet::new_unchecked(&mut ip[..]);
            v6.set_version(6);
            v6.set_payload_len(l4_len as u16);
            v6.set_hop_limit(64);
            v6.set_next_header(proto);
            v6.set_src_addr(s);
            v6.set_dst_addr(d);
            (IpAddress::Ipv6(s), IpAddress::Ipv6(d))
        }
        _ => return None,
    };
    match p.protocol {
        6 => {
            let mut tcp = TcpPacket::new_unchecked(&mut l4[..]);
            tcp.set_src_port(p.src_port);
            tcp.set_dst_port(p.dst_port);
            tcp.set_header_len(20);
            tcp.set_window_len(64_240);
            let f = |bit: u8| p.tcp_flags & bit != 0;
            tcp.set_fin(f(0x01));
            tcp.set_syn(f(0x02));
            tcp.set_rst(f(0x04));
            tcp.set_psh(f(0x08));
            tcp.set_ack(f(0x10));
            tcp.set_urg(f(0x20));
            tcp.set_ece(f(0x40));
            tcp.set_cwr(f(0x80));
            tcp.fill_checksum(&src, &dst);
        }
        17 => {
            let mut udp = UdpPacket::new_unchecked(&mut l4[..]);
            udp.set_src_port(p.src_port);
            udp.set_dst_port(p.dst_port);
            udp.set_len(l4_len as u16);
            udp.fill_checksum(&src, &dst);
        }
        1 => {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut l4[..]);
            icmp.set_msg_type(Icmpv4Message::from((p.dst_port >> 8) as u8));
            icmp.set_msg_code(p.dst_port as u8);
            icmp.fill_checksum();
        }
        58 => {
            // Type and code only; the checksum stays 0 (nothing here verifies it).
            l4[0] = (p.dst_port >> 8) as u8;
            l4[1] = p.dst_port as u8;
        }
        _ => {}
    }
    Some(total)
}

/// A bounded, deterministic synthetic capture: `frames` frames spread over `flows`
/// conversations (about 60% TCP with a handshake and a closing FIN, 25% UDP, 15% ICMP echo;
/// about 20% of flows over IPv6 and 10% tagged with an 802.1Q VLAN), frame `k` at
/// `start_us + k * gap_us`. Frame `k` belongs to flow `k % flows`, so every flow is open for
/// most of the capture: a meter needs room for `flows` flows to see no eviction.
///
/// Used by `nw-gen-pcap` (tests/src/bin/gen_pcap.rs) to write pcaps for benchmarks and by the
/// meter's benchmark and allocation test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub frames: u64,
    pub flows: u32,
    pub seed: u64,
    pub start_us: u64,
    pub gap_us: u64,
}

/// splitmix64: a fixed, portable mixer so that the same spec gives the same bytes everywhere.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Traffic {
    /// Frame `k` (`k < frames`): its capture time in microseconds and its packet.
    pub fn packet(&self, k: u64) -> (u64, SynthPacket) {
        let flows = u64::from(self.flows.max(1));
        let flow = k % flows;
        let j = k / flows; // packet number within the flow
        let in_flow = self.frames / flows + u64::from(flow < self.frames % flows);
        let h = mix(self.seed ^ mix(flow));
        let r = mix(h ^ k);
        let v6 = (h >> 8).is_multiple_of(5);
        let vlan = (h >> 12)
            .is_multiple_of(10)
            .then_some(1 + ((h >> 16) % 100) as u16);
        // Clients are unique per flow (10.0.0.0/8 or 2001:db8:1::/64), so 5-tuples are too.
        let client = flow as u32;
        let server = (h >> 24) as u8 % 200 + 1;
        let (client_ip, server_ip) = if v6 {
            (
                IpAddr::V6(core::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    1,
                    0,
                    0,
                    0,
                    (client >> 16) as u16,
                    client as u16,
                )),
                IpAddr::V6(core::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    2,
                    0,
                    0,
                    0,
                    0,
                    u16::from(server),
                )),
            )
        } else {
            (
                IpAddr::V4(core::net::Ipv4Addr::from(
                    0x0a00_0000 | ((client + 1) & 0x00ff_ffff),
                )),
                IpAddr::V4(core::net::Ipv4Addr::new(192, 0, 2, server)),
            )
        };
        let client_port = 32_768 + (flow % 28_000) as u16;
        let pick = |opts: &[u16]| opts[(h >> 40) as usize % opts.len()];
        let kind = h % 20;
        let mut p = SynthPacket {
            src: client_ip,
            dst: server_ip,
            protocol: 6,
            src_port: client_port,
            dst_port: 0,
            tcp_flags: 0,
            payload_len: 0,
            vlan,
        };
        let reply;
        match kind {
            0..=11 => {
                p.dst_port = pick(&[80, 443, 22, 8080, 25]);
                let (flags, back, payload) = match j {
                    0 => (0x02, false, 0),                          // SYN
                    1 => (0x12, true, 0),                           // SYN ACK
                    2 => (0x10, false, 0),                          // ACK
                    _ if j + 1 == in_flow => (0x11, r & 1 == 1, 0), // FIN ACK
                    _ => {
                        let len = ((r >> 8) % 1401) as u16;
                        (if len > 0 { 0x18 } else { 0x10 }, r & 1 == 1, len)
                    }
                };
                p.tcp_flags = flags;
                p.payload_len = payload;
                reply = back;
            }
            12..=16 => {
                p.protocol = 17;
                p.dst_port = pick(&[53, 123, 161, 5353, 514]);
                p.payload_len = 20 + ((r >> 8) % 500) as u16;
                reply = j % 2 == 1;
            }
            _ => {
                reply = j % 2 == 1;
                p.protocol = if v6 { 58 } else { 1 };
                p.src_port = 0;
                p.dst_port = match (v6, reply) {
                    (false, false) => 8 << 8,
                    (false, true) => 0,
                    (true, false) => 128 << 8,
                    (true, true) => 129 << 8,
                };
                p.payload_len = 56;
            }
        }
        if reply {
            core::mem::swap(&mut p.src, &mut p.dst);
            if p.protocol == 6 || p.protocol == 17 {
                core::mem::swap(&mut p.src_port, &mut p.dst_port);
            }
        }
        (self.start_us + k * self.gap_us, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{packet_meta, LinkType};

    #[test]
    fn traffic_is_deterministic_and_every_frame_parses() {
        let t = Traffic {
            frames: 5_000,
            flows: 300,
            seed: 7,
            start_us: 1_700_000_000_000_000,
            gap_us: 10,
        };
        let mut buf = [0u8; 1600];
        let (mut v6, mut vlan, mut tcp, mut udp, mut icmp) = (0, 0, 0, 0, 0);
        for k in 0..t.frames {
            let (ts, p) = t.packet(k);
            assert_eq!((ts, p), t.packet(k));
            let n = write_frame(SynthLink::Ethernet, &p, &mut buf).expect("fits");
            let m = packet_meta(LinkType::Ethernet, &buf[..n]).expect("parses");
            assert_eq!(
                (m.src_addr, m.dst_addr, m.protocol),
                (p.src, p.dst, p.protocol)
            );
            v6 += u32::from(m.src_addr.is_ipv6());
            vlan += u32::from(m.vlan.is_some());
            match m.protocol {
                6 => tcp += 1,
                17 => udp += 1,
                _ => icmp += 1,
            }
        }
        for (n, lo, hi) in [
            (v6, 500, 1_600),
            (vlan, 200, 1_000),
            (tcp, 2_300, 3_700),
            (udp, 700, 1_900),
            (icmp, 300, 1_300),
        ] {
            assert!((lo..=hi).contains(&n), "{n} not in {lo}..={hi}");
        }
    }
}
