//! Views over captured frames, far enough to reach a UDP payload.
//!
//! Used to read capture files of NetFlow/IPFIX exports (`netwarden features --netflow-pcap`,
//! `netwarden demo`) with the same header parsers (smoltcp's) the packet meter will use.

use core::net::{IpAddr, SocketAddr};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, UdpPacket,
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
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::Truncated => "truncated frame",
            FrameError::NotIp => "not an IP packet",
            FrameError::NotUdp => "not a UDP datagram",
            FrameError::Fragment => "IP fragment",
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
    let (ethertype, l3) = match link {
        LinkType::Ethernet => {
            let eth = EthernetFrame::new_checked(frame).map_err(|_| FrameError::Truncated)?;
            let mut ethertype = eth.ethertype();
            let mut payload = eth.payload();
            // 802.1Q / 802.1ad tags: skip up to two.
            for _ in 0..2 {
                let raw: u16 = ethertype.into();
                if raw != 0x8100 && raw != 0x88a8 {
                    break;
                }
                if payload.len() < 4 {
                    return Err(FrameError::Truncated);
                }
                ethertype = EthernetProtocol::from(u16::from_be_bytes([payload[2], payload[3]]));
                payload = &payload[4..];
            }
            (ethertype, payload)
        }
        LinkType::LinuxSll => {
            if frame.len() < 16 {
                return Err(FrameError::Truncated);
            }
            (
                EthernetProtocol::from(u16::from_be_bytes([frame[14], frame[15]])),
                &frame[16..],
            )
        }
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(FrameError::Truncated);
            }
            (
                EthernetProtocol::from(u16::from_be_bytes([frame[0], frame[1]])),
                &frame[20..],
            )
        }
        LinkType::Null => {
            if frame.len() < 4 {
                return Err(FrameError::Truncated);
            }
            (ip_version_ethertype(&frame[4..])?, &frame[4..])
        }
        LinkType::Raw => (ip_version_ethertype(frame)?, frame),
    };
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
