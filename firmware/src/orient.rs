//! Who opened the connection (shared by the gateway's incidents and the `flow-v2` service
//! context): NetFlow sends each direction of a conversation as its own record,
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

use core::net::IpAddr;

use crate::flow::FlowRecord;

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
