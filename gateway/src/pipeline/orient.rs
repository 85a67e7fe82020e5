//! Who opened the connection: the rules live in the firmware core
//! (`netwarden_firmware::orient`), because `flow-v2`'s service context needs them too; this
//! module re-exports them for the incidents and keeps their table of cases.

pub use netwarden_firmware::orient::{orient, Oriented};

#[cfg(test)]
mod tests {
    use super::*;
    use netwarden_firmware::FlowRecord;
    use std::net::IpAddr;

    const SYN: u16 = 0x02;
    const RST: u16 = 0x04;
    const PSH: u16 = 0x08;
    const ACK: u16 = 0x10;
    const FIN: u16 = 0x01;
    const TCP: u8 = 6;
    const ICMP: u8 = 1;
    const ICMPV6: u8 = 58;
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
