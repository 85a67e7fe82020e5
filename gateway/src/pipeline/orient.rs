//! Who opened the connection: NetFlow sends each direction of a conversation as its own record,
//! so a record's source is as often the host that answered as the one that asked. A scan's
//! victim answers every probe with a RST or a SYN/ACK, and an alert on those records must name
//! the scanner, not the victim.
//!
//! The rules, first match wins (each looks at one record; nothing here remembers the other
//! direction, because records arrive in the exporter's expiry order, replies often first):
//! 1. TCP with SYN and no ACK: the source opened it (a client's SYN, a scanner's probe).
//! 2. TCP without SYN but with RST, at most two packets: a refusal, so the source answered.
//! 3. TCP whose flags are SYN and ACK without PSH, FIN or RST, at most two packets: a bare
//!    handshake reply (an open port answering a probe), so the source answered.
//! 4. ICMP/ICMPv6 (type in the high byte of the destination port, as exporters send it): an
//!    echo reply or an error (unreachable, time exceeded, ...) answers the destination; any
//!    other type is the source's.
//! 5. Ports: the side on a well-known port (< 1024) is the server when the other is not; between
//!    two high ports an ephemeral one (>= 32768) marks the client. Otherwise the source.

use std::net::IpAddr;

use netwarden_firmware::FlowRecord;

const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const PSH: u16 = 0x08;
const ACK: u16 = 0x10;

const TCP: u8 = 6;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// A record seen from the side of the host that opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oriented {
    pub initiator: IpAddr,
    pub target: IpAddr,
    /// The target's port (the service), or the ICMP type/code word for ICMP.
    pub service_port: u16,
    /// True when the record's source is the target: the record is an answer.
    pub reply: bool,
}

/// Orients `r` (see the module's rules).
pub fn orient(r: &FlowRecord) -> Oriented {
    let reply = is_reply(r);
    if reply {
        Oriented {
            initiator: r.dst_addr,
            target: r.src_addr,
            service_port: r.src_port,
            reply,
        }
    } else {
        Oriented {
            initiator: r.src_addr,
            target: r.dst_addr,
            service_port: r.dst_port,
            reply,
        }
    }
}

fn is_reply(r: &FlowRecord) -> bool {
    match r.protocol {
        TCP => {
            let f = r.tcp_flags;
            if f & SYN != 0 && f & ACK == 0 {
                return false;
            }
            if f & SYN == 0 && f & RST != 0 && r.packets <= 2 {
                return true;
            }
            if f & (SYN | ACK) == SYN | ACK && f & (PSH | FIN | RST) == 0 && r.packets <= 2 {
                return true;
            }
            by_ports(r.src_port, r.dst_port)
        }
        ICMP => matches!(r.dst_port >> 8, 0 | 3 | 4 | 5 | 11 | 12 | 14 | 16 | 18),
        ICMPV6 => matches!(r.dst_port >> 8, 1..=4 | 129),
        _ => by_ports(r.src_port, r.dst_port),
    }
}

/// True when the ports say the source is the server.
fn by_ports(src: u16, dst: u16) -> bool {
    if src == dst {
        return false;
    }
    if src < 1024 && dst >= 1024 {
        return true;
    }
    if dst < 1024 {
        return false;
    }
    dst >= 32768 && src < 32768
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::net::Ipv4Addr;

    fn rec(proto: u8, sport: u16, dport: u16, flags: u16, packets: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: sport,
            dst_port: dport,
            protocol: proto,
            packets,
            bytes: 40 * packets,
            first_ms: 0,
            last_ms: 0,
            tcp_flags: flags,
        }
    }

    #[rstest]
    // A scanner's SYN probe to a closed and to an open port, and the probe then reset.
    #[case(rec(TCP, 45_000, 443, SYN, 1), false)]
    #[case(rec(TCP, 45_000, 8080, SYN | RST, 2), false)]
    // The victim's RST/ACK refusal and its SYN/ACK from an open high port to a low source port.
    #[case(rec(TCP, 443, 45_000, RST | ACK, 1), true)]
    #[case(rec(TCP, 8080, 1_500, SYN | ACK, 1), true)]
    // A whole connection: both directions carry SYN and ACK; ports decide.
    #[case(rec(TCP, 51_000, 22, SYN | ACK | PSH | FIN, 12), false)]
    #[case(rec(TCP, 22, 51_000, SYN | ACK | PSH | FIN, 10), true)]
    // A long flow split by the active timeout (no SYN) between two high ports.
    #[case(rec(TCP, 40_000, 5_432, ACK | PSH, 300), false)]
    #[case(rec(TCP, 5_432, 40_000, ACK | PSH, 300), true)]
    // UDP: DNS query and answer.
    #[case(rec(17, 53_000, 53, 0, 1), false)]
    #[case(rec(17, 53, 53_000, 0, 1), true)]
    // ICMP: echo request, echo reply, port unreachable (type 3 code 3).
    #[case(rec(ICMP, 0, 8 << 8, 0, 1), false)]
    #[case(rec(ICMP, 0, 0, 0, 1), true)]
    #[case(rec(ICMP, 0, 3 << 8 | 3, 0, 1), true)]
    #[case(rec(ICMPV6, 0, 129 << 8, 0, 1), true)]
    fn initiator_is_who_opened_the_connection(#[case] r: FlowRecord, #[case] reply: bool) {
        let o = orient(&r);
        assert_eq!(o.reply, reply, "{r:?}");
        if reply {
            assert_eq!((o.initiator, o.target), (r.dst_addr, r.src_addr));
            assert_eq!(o.service_port, r.src_port);
        } else {
            assert_eq!((o.initiator, o.target), (r.src_addr, r.dst_addr));
            assert_eq!(o.service_port, r.dst_port);
        }
    }
}
