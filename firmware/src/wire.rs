//! Views over captured frames (smoltcp's `wire` parsers), far enough to reach a UDP payload or
//! a packet's 5-tuple.
//!
//! [`udp_datagram`] reads capture files of NetFlow/IPFIX exports (`netwarden features
//! --netflow-pcap`, `netwarden demo`); [`packet_meta`] is the packet meter's parser. Neither
//! copies, allocates or panics: every length is checked before a view's accessor reads it.

use core::net::{IpAddr, SocketAddr};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv4Packet, IpProtocol, Ipv4Packet, Ipv6ExtHeader,
    Ipv6FragmentHeader, Ipv6Packet, TcpPacket, UdpPacket,
};

/// Link types of capture files that we can read (values from the pcap `LINKTYPE_` registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    Raw,
    LinuxSll,
    LinuxSll2,
    Null,
}

impl LinkType {
    pub fn from_pcap(linktype: u32) -> Option<LinkType> {
        match linktype {
            1 => Some(LinkType::Ethernet),
            101 | 12 | 14 => Some(LinkType::Raw),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            0 => Some(LinkType::Null),
            _ => None,
        }
    }
}

/// Why a frame did not yield a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    Truncated,
    NotIp,
    NotUdp,
    /// An IP fragment other than a whole datagram; exports this large are not reassembled.
    Fragment,
    /// Header fields that contradict each other (IPv4 header length below 20 or above the
    /// total length, an IP version that does not match the link's protocol).
    Malformed,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::Truncated => "truncated frame",
            FrameError::NotIp => "not an IP packet",
            FrameError::NotUdp => "not a UDP datagram",
            FrameError::Fragment => "IP fragment",
            FrameError::Malformed => "malformed IP header",
        })
    }
}

impl core::error::Error for FrameError {}

/// A UDP datagram found in a frame; `payload` borrows from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: &'a [u8],
}

/// Finds the UDP datagram in a captured frame of the given link type.
pub fn udp_datagram(link: LinkType, frame: &[u8]) -> Result<UdpDatagram<'_>, FrameError> {
    let (ethertype, l3, _) = link_payload(link, frame)?;
    let (src_ip, dst_ip, l4): (IpAddr, IpAddr, &[u8]) = match ethertype {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(l3).map_err(|_| FrameError::Truncated)?;
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(FrameError::Fragment);
            }
            if ip.next_header() != IpProtocol::Udp {
                return Err(FrameError::NotUdp);
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(l3).map_err(|_| FrameError::Truncated)?;
            if ip.next_header() != IpProtocol::Udp {
                // Extension headers before UDP are rare for exports; treat as not UDP.
                return Err(FrameError::NotUdp);
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        _ => return Err(FrameError::NotIp),
    };
    let udp = UdpPacket::new_checked(l4).map_err(|_| FrameError::Truncated)?;
    Ok(UdpDatagram {
        src: SocketAddr::new(src_ip, udp.src_port()),
        dst: SocketAddr::new(dst_ip, udp.dst_port()),
        payload: udp.payload(),
    })
}

/// Strips the link layer: the ethertype of what follows, the bytes from the network header on,
/// and the outermost 802.1Q VLAN id if the frame was tagged.
pub(crate) fn link_payload(
    link: LinkType,
    frame: &[u8],
) -> Result<(EthernetProtocol, &[u8], Option<u16>), FrameError> {
    Ok(match link {
        LinkType::Ethernet => {
            let eth = EthernetFrame::new_checked(frame).map_err(|_| FrameError::Truncated)?;
            let mut ethertype = eth.ethertype();
            let mut payload = eth.payload();
            let mut vlan = None;
            // 802.1Q / 802.1ad tags: skip up to two.
            for _ in 0..2 {
                let raw: u16 = ethertype.into();
                if raw != 0x8100 && raw != 0x88a8 {
                    break;
                }
                let &[t0, t1, e0, e1, ..] = payload else {
                    return Err(FrameError::Truncated);
                };
                vlan.get_or_insert(u16::from_be_bytes([t0, t1]) & 0x0fff);
                ethertype = EthernetProtocol::from(u16::from_be_bytes([e0, e1]));
                payload = &payload[4..];
            }
            (ethertype, payload, vlan)
        }
        LinkType::LinuxSll => {
            if frame.len() < 16 {
                return Err(FrameError::Truncated);
            }
            (
                EthernetProtocol::from(u16::from_be_bytes([frame[14], frame[15]])),
                &frame[16..],
                None,
            )
        }
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(FrameError::Truncated);
            }
            (
                EthernetProtocol::from(u16::from_be_bytes([frame[0], frame[1]])),
                &frame[20..],
                None,
            )
        }
        LinkType::Null => {
            if frame.len() < 4 {
                return Err(FrameError::Truncated);
            }
            (ip_version_ethertype(&frame[4..])?, &frame[4..], None)
        }
        LinkType::Raw => (ip_version_ethertype(frame)?, frame, None),
    })
}

/// What the packet meter needs from one IP packet: its 5-tuple, size and TCP flags.
///
/// Ports follow NetFlow exporters (softflowd): ICMP (v4) carries `type * 256 + code` in the
/// destination port and 0 in the source port; ICMPv6 and other protocols without ports carry
/// 0 in both; so do IP fragments other than the first, which have no transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    pub src_addr: IpAddr,
    pub dst_addr: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Bytes as NetFlow counts them: the IP header's length (IPv4 total length, IPv6 40 +
    /// payload length), whatever was captured of the packet and whatever padding followed it.
    pub ip_len: u32,
    /// The TCP header's 8 flag bits (FIN = 0x01 ... CWR = 0x80); 0 for other protocols.
    pub tcp_flags: u8,
    /// Outermost 802.1Q VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
    /// Part of a fragmented IP datagram (first fragment included).
    pub fragment: bool,
}

/// IPv6 extension headers followed before giving up on finding the transport header.
const MAX_IPV6_EXT_HEADERS: usize = 8;

/// Parses a captured frame down to its transport header (only the fixed part of the transport
/// header must have been captured; payload and options may be cut by the snap length).
pub fn packet_meta(link: LinkType, frame: &[u8]) -> Result<PacketMeta, FrameError> {
    let (ethertype, l3, vlan) = link_payload(link, frame)?;
    let (src_addr, dst_addr, protocol, ip_len, l4, fragment, first_fragment) = match ethertype {
        EthernetProtocol::Ipv4 => {
            if l3.len() < 20 {
                return Err(FrameError::Truncated);
            }
            // Lengths are checked here rather than by `new_checked`, which also wants the whole
            // packet captured; every accessor used below reads the fixed 20-byte header.
            let ip = Ipv4Packet::new_unchecked(l3);
            let header_len = usize::from(ip.header_len());
            let total_len = usize::from(ip.total_len());
            if ip.version() != 4 || header_len < 20 || total_len < header_len {
                return Err(FrameError::Malformed);
            }
            if l3.len() < header_len {
                return Err(FrameError::Truncated);
            }
            let fragment = ip.more_frags() || ip.frag_offset() != 0;
            (
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ip.next_header(),
                total_len as u32,
                &l3[header_len..total_len.min(l3.len())],
                fragment,
                ip.frag_offset() == 0,
            )
        }
        EthernetProtocol::Ipv6 => {
            if l3.len() < 40 {
                return Err(FrameError::Truncated);
            }
            let ip = Ipv6Packet::new_unchecked(l3);
            if ip.version() != 6 {
                return Err(FrameError::Malformed);
            }
            let end = (40 + usize::from(ip.payload_len())).min(l3.len());
            let mut rest = &l3[40..end];
            let mut next = ip.next_header();
            let mut fragment = false;
            let mut first_fragment = true;
            for _ in 0..MAX_IPV6_EXT_HEADERS {
                match next {
                    IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                        let ext =
                            Ipv6ExtHeader::new_checked(rest).map_err(|_| FrameError::Truncated)?;
                        next = ext.next_header();
                        rest = &rest[ext.payload().len() + 2..];
                    }
                    IpProtocol::Ipv6Frag => {
                        if rest.len() < 8 {
                            return Err(FrameError::Truncated);
                        }
                        let ext = Ipv6ExtHeader::new_unchecked(rest);
                        let frag = Ipv6FragmentHeader::new_checked(&rest[2..8])
                            .map_err(|_| FrameError::Truncated)?;
                        fragment = true;
                        first_fragment = frag.frag_offset() == 0;
                        next = ext.next_header();
                        rest = &rest[8..];
                        if !first_fragment {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            (
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                next,
                40 + u32::from(ip.payload_len()),
                rest,
                fragment,
                first_fragment,
            )
        }
        _ => return Err(FrameError::NotIp),
    };
    let mut meta = PacketMeta {
        src_addr,
        dst_addr,
        src_port: 0,
        dst_port: 0,
        protocol: protocol.into(),
        ip_len,
        tcp_flags: 0,
        vlan,
        fragment,
    };
    if !first_fragment {
        return Ok(meta);
    }
    // A first fragment shorter than the transport header keeps ports 0 (as softflowd does);
    // a whole packet that short is truncated.
    let short = |need: usize| l4.len() < need;
    match protocol {
        IpProtocol::Tcp => {
            if short(20) {
                return if fragment {
                    Ok(meta)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            let tcp = TcpPacket::new_unchecked(l4);
            meta.src_port = tcp.src_port();
            meta.dst_port = tcp.dst_port();
            meta.tcp_flags = tcp_flag_bits(&tcp);
        }
        IpProtocol::Udp => {
            if short(8) {
                return if fragment {
                    Ok(meta)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            let udp = UdpPacket::new_unchecked(l4);
            meta.src_port = udp.src_port();
            meta.dst_port = udp.dst_port();
        }
        IpProtocol::Icmp => {
            if short(4) {
                return if fragment {
                    Ok(meta)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            let icmp = Icmpv4Packet::new_unchecked(l4);
            meta.dst_port = u16::from(u8::from(icmp.msg_type())) << 8 | u16::from(icmp.msg_code());
        }
        _ => {}
    }
    Ok(meta)
}

fn tcp_flag_bits(tcp: &TcpPacket<&[u8]>) -> u8 {
    [
        tcp.fin(),
        tcp.syn(),
        tcp.rst(),
        tcp.psh(),
        tcp.ack(),
        tcp.urg(),
        tcp.ece(),
        tcp.cwr(),
    ]
    .iter()
    .enumerate()
    .fold(0, |bits, (i, &set)| bits | (u8::from(set) << i))
}

fn ip_version_ethertype(l3: &[u8]) -> Result<EthernetProtocol, FrameError> {
    match l3.first().map(|b| b >> 4) {
        Some(4) => Ok(EthernetProtocol::Ipv4),
        Some(6) => Ok(EthernetProtocol::Ipv6),
        Some(_) => Err(FrameError::NotIp),
        None => Err(FrameError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + UDP 127.0.0.1:4000 -> 127.0.0.1:2055 with payload "hi".
    fn frame() -> [u8; 44] {
        let mut f = [0u8; 44];
        f[12] = 0x08; // ethertype IPv4
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&30u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let udp = &mut f[34..42];
        udp[0..2].copy_from_slice(&4000u16.to_be_bytes());
        udp[2..4].copy_from_slice(&2055u16.to_be_bytes());
        udp[4..6].copy_from_slice(&10u16.to_be_bytes());
        f[42] = b'h';
        f[43] = b'i';
        f
    }

    #[test]
    fn finds_udp_payload_in_ethernet_frame() {
        let f = frame();
        let d = udp_datagram(LinkType::Ethernet, &f).expect("udp");
        assert_eq!(d.payload, b"hi");
        assert_eq!(d.src.port(), 4000);
        assert_eq!(d.dst.port(), 2055);
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        let f = frame();
        for n in 0..f.len() {
            let _ = udp_datagram(LinkType::Ethernet, &f[..n]);
            let _ = udp_datagram(LinkType::Raw, &f[14..14 + n.min(30)]);
            let _ = udp_datagram(LinkType::LinuxSll, &f[..n]);
        }
        assert_eq!(
            udp_datagram(LinkType::Ethernet, &f[..20]),
            Err(FrameError::Truncated)
        );
    }
}
