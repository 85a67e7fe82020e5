//! The normalised flow record: what every source (NetFlow v5/v9/IPFIX, later the packet meter)
//! is turned into before features are computed.

use core::net::{IpAddr, Ipv4Addr};

/// TCP flag bits as carried in NetFlow's `tcp_flags` / IPFIX `tcpControlBits`.
pub mod tcp_flags {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
}

/// One unidirectional flow as an exporter (or the meter) reported it.
///
/// Times are Unix epoch milliseconds; `last_ms >= first_ms` is not guaranteed by exporters, so
/// consumers use [`FlowRecord::duration_ms`], which saturates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    pub src_addr: IpAddr,
    pub dst_addr: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub packets: u64,
    pub bytes: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    /// Cumulative OR of the TCP flags seen (0 when not TCP or not exported).
    pub tcp_flags: u16,
}

impl FlowRecord {
    pub const PROTO_TCP: u8 = 6;

    /// An all-zero IPv4 record; sources fill in what they have.
    pub const fn empty() -> Self {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            packets: 0,
            bytes: 0,
            first_ms: 0,
            last_ms: 0,
            tcp_flags: 0,
        }
    }

    pub fn duration_ms(&self) -> u64 {
        self.last_ms.saturating_sub(self.first_ms)
    }
}

impl Default for FlowRecord {
    fn default() -> Self {
        Self::empty()
    }
}
