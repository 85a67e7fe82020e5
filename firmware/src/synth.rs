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
