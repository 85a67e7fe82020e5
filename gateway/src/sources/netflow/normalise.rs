//! One parsed record's fields as a normalised `FlowRecord`: the information elements used (by
//! IANA/v9 element id), and the times, from the exporter's uptime (wrapping) or absolute.

use std::net::IpAddr;

use netflow_parser::static_versions::v5::V5;
use netflow_parser::variable_versions::ipfix::lookup::IANAIPFixField;
use netflow_parser::variable_versions::v9::{FlowSetBody as V9Body, V9};
use netflow_parser::{FieldValue, V9Field};
use netwarden_firmware::FlowRecord;

use super::decode::ExporterDomain;
use crate::records::ExporterStats;

/// A normalised record goes to `out`; one without both addresses is counted incomplete.
pub(super) fn push(
    rec: Option<FlowRecord>,
    src: ExporterDomain,
    out: &mut Vec<(ExporterDomain, FlowRecord)>,
    stats: &mut ExporterStats,
) {
    match rec {
        Some(r) => out.push((src, r)),
        None => stats.records_incomplete += 1,
    }
}

/// Uptime `at` (ms) as epoch ms, given that uptime `now_up` was epoch `now_ms`.
/// Wrapping: an `at` from before a u32 wrap of the uptime still lands in the past.
fn uptime_to_epoch(now_ms: u64, now_up: u32, at: u32) -> u64 {
    now_ms.saturating_sub(u64::from(now_up.wrapping_sub(at)))
}

pub(super) fn normalise_v5(
    p: &V5,
    src: ExporterDomain,
    out: &mut Vec<(ExporterDomain, FlowRecord)>,
    stats: &mut ExporterStats,
) -> usize {
    let now_ms = u64::from(p.header.unix_secs) * 1000 + u64::from(p.header.unix_nsecs) / 1_000_000;
    let up = p.header.sys_up_time;
    for f in &p.flowsets {
        let rec = FlowRecord {
            src_addr: IpAddr::V4(f.src_addr),
            dst_addr: IpAddr::V4(f.dst_addr),
            src_port: f.src_port,
            dst_port: f.dst_port,
            protocol: f.protocol_number,
            packets: u64::from(f.d_pkts),
            bytes: u64::from(f.d_octets),
            first_ms: uptime_to_epoch(now_ms, up, f.first),
            last_ms: uptime_to_epoch(now_ms, up, f.last),
            tcp_flags: u16::from(f.tcp_flags),
        };
        push(Some(rec), src, out, stats);
    }
    p.flowsets.len()
}

pub(super) fn normalise_v9(
    p: &V9,
    src: ExporterDomain,
    out: &mut Vec<(ExporterDomain, FlowRecord)>,
    stats: &mut ExporterStats,
) {
    let now_ms = u64::from(p.header.unix_secs) * 1000;
    let up = p.header.sys_up_time;
    for set in &p.flowsets {
        match &set.body {
            V9Body::Data(d) => {
                for rec in &d.fields {
                    let mut f = Fields::default();
                    for (field, value) in rec {
                        f.set(v9_id(field), value);
                    }
                    push(f.into_record_uptime(now_ms, up), src, out, stats);
                }
            }
            V9Body::NoTemplate(_) => stats.template_misses += 1,
            _ => {}
        }
    }
}

fn v9_id(field: &V9Field) -> u16 {
    u16::from(*field)
}

/// The element id of the IANA elements we use (netflow_parser offers no conversion back to
/// the number); 0 for the rest.
pub(super) fn iana_id(f: &IANAIPFixField) -> u16 {
    use IANAIPFixField as F;
    match f {
        F::OctetDeltaCount => ie::OCTETS,
        F::PacketDeltaCount => ie::PACKETS,
        F::ProtocolIdentifier => ie::PROTOCOL,
        F::TcpControlBits => ie::TCP_FLAGS,
        F::SourceTransportPort => ie::SRC_PORT,
        F::SourceIpv4address => ie::SRC_V4,
        F::DestinationTransportPort => ie::DST_PORT,
        F::DestinationIpv4address => ie::DST_V4,
        F::FlowEndSysUpTime => ie::LAST_UPTIME,
        F::FlowStartSysUpTime => ie::FIRST_UPTIME,
        F::SourceIpv6address => ie::SRC_V6,
        F::DestinationIpv6address => ie::DST_V6,
        F::OctetTotalCount => ie::OCTETS_TOTAL,
        F::PacketTotalCount => ie::PACKETS_TOTAL,
        F::FlowStartSeconds => ie::START_SECS,
        F::FlowEndSeconds => ie::END_SECS,
        F::FlowStartMilliseconds => ie::START_MS,
        F::FlowEndMilliseconds => ie::END_MS,
        F::FlowStartMicroseconds => ie::START_US,
        F::FlowEndMicroseconds => ie::END_US,
        F::FlowStartNanoseconds => ie::START_NS,
        F::FlowEndNanoseconds => ie::END_NS,
        F::SystemInitTimeMilliseconds => ie::SYS_INIT_MS,
        _ => 0,
    }
}

/// The information elements we use, by IANA/v9 element id (they agree for these).
pub(super) mod ie {
    pub const OCTETS: u16 = 1;
    pub const PACKETS: u16 = 2;
    pub const PROTOCOL: u16 = 4;
    pub const TCP_FLAGS: u16 = 6;
    pub const SRC_PORT: u16 = 7;
    pub const SRC_V4: u16 = 8;
    pub const DST_PORT: u16 = 11;
    pub const DST_V4: u16 = 12;
    pub const LAST_UPTIME: u16 = 21;
    pub const FIRST_UPTIME: u16 = 22;
    pub const SRC_V6: u16 = 27;
    pub const DST_V6: u16 = 28;
    pub const OCTETS_TOTAL: u16 = 85;
    pub const PACKETS_TOTAL: u16 = 86;
    pub const START_SECS: u16 = 150;
    pub const END_SECS: u16 = 151;
    pub const START_MS: u16 = 152;
    pub const END_MS: u16 = 153;
    pub const START_US: u16 = 154;
    pub const END_US: u16 = 155;
    pub const START_NS: u16 = 156;
    pub const END_NS: u16 = 157;
    pub const SYS_INIT_MS: u16 = 160;
}

/// Values collected from one template-based record.
#[derive(Debug, Default)]
pub(super) struct Fields {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    packets: Option<u64>,
    bytes: Option<u64>,
    first_up: Option<u64>,
    last_up: Option<u64>,
    first_abs: Option<u64>,
    last_abs: Option<u64>,
    sys_init: Option<u64>,
    tcp_flags: u16,
}

/// What the normaliser asks of a value: netflow_parser's `FieldValue`, or the hot path's
/// [`Value`](super::plan::Value) read straight from the bytes. One [`Fields::set`] serves both,
/// so the two decoders cannot disagree on what an element means.
pub(super) trait ElementValue {
    fn as_u64(&self) -> Option<u64>;
    fn as_u16(&self) -> Option<u16>;
    fn as_u8(&self) -> Option<u8>;
    fn ip(&self) -> Option<IpAddr>;
    /// TCP control bits when the value is typed as such.
    fn tcp_bits(&self) -> Option<u16>;
}

impl ElementValue for FieldValue {
    fn as_u64(&self) -> Option<u64> {
        FieldValue::as_u64(self)
    }
    fn as_u16(&self) -> Option<u16> {
        FieldValue::as_u16(self)
    }
    fn as_u8(&self) -> Option<u8> {
        FieldValue::as_u8(self)
    }
    fn ip(&self) -> Option<IpAddr> {
        match self {
            FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
            FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
            _ => None,
        }
    }
    fn tcp_bits(&self) -> Option<u16> {
        match self {
            FieldValue::TcpControlBits(bits, _) => Some(u16::from(*bits)),
            _ => None,
        }
    }
}

impl ElementValue for super::plan::Value {
    fn as_u64(&self) -> Option<u64> {
        super::plan::Value::as_u64(*self)
    }
    fn as_u16(&self) -> Option<u16> {
        super::plan::Value::as_u16(*self)
    }
    fn as_u8(&self) -> Option<u8> {
        super::plan::Value::as_u8(*self)
    }
    fn ip(&self) -> Option<IpAddr> {
        match self {
            super::plan::Value::Ip(a) => Some(*a),
            _ => None,
        }
    }
    fn tcp_bits(&self) -> Option<u16> {
        match self {
            super::plan::Value::TcpBits(b) => Some(*b),
            _ => None,
        }
    }
}

impl Fields {
    pub(super) fn set(&mut self, id: u16, v: &impl ElementValue) {
        match id {
            ie::SRC_V4 | ie::SRC_V6 => self.src = v.ip(),
            ie::DST_V4 | ie::DST_V6 => self.dst = v.ip(),
            ie::SRC_PORT => self.src_port = v.as_u16().unwrap_or(0),
            ie::DST_PORT => self.dst_port = v.as_u16().unwrap_or(0),
            ie::PROTOCOL => self.protocol = v.as_u8().unwrap_or(0),
            ie::TCP_FLAGS => self.tcp_flags = v.tcp_bits().or(v.as_u16()).unwrap_or(0),
            ie::PACKETS => self.packets = v.as_u64(),
            ie::OCTETS => self.bytes = v.as_u64(),
            ie::PACKETS_TOTAL => self.packets = self.packets.or(v.as_u64()),
            ie::OCTETS_TOTAL => self.bytes = self.bytes.or(v.as_u64()),
            ie::FIRST_UPTIME => self.first_up = v.as_u64(),
            ie::LAST_UPTIME => self.last_up = v.as_u64(),
            // as_u64 turns seconds, ms and NTP formats into epoch ms.
            ie::START_SECS | ie::START_MS | ie::START_US | ie::START_NS => {
                self.first_abs = v.as_u64()
            }
            ie::END_SECS | ie::END_MS | ie::END_US | ie::END_NS => self.last_abs = v.as_u64(),
            ie::SYS_INIT_MS => self.sys_init = v.as_u64(),
            _ => {}
        }
    }

    fn base(&self) -> Option<FlowRecord> {
        Some(FlowRecord {
            src_addr: self.src?,
            dst_addr: self.dst?,
            src_port: self.src_port,
            dst_port: self.dst_port,
            protocol: self.protocol,
            packets: self.packets.unwrap_or(0),
            bytes: self.bytes.unwrap_or(0),
            first_ms: 0,
            last_ms: 0,
            tcp_flags: self.tcp_flags,
        })
    }

    /// v9: uptime-relative times against the header.
    pub(super) fn into_record_uptime(self, now_ms: u64, now_up: u32) -> Option<FlowRecord> {
        let mut r = self.base()?;
        let conv = |up: Option<u64>| up.map(|u| uptime_to_epoch(now_ms, now_up, u as u32));
        r.last_ms = self.last_abs.or(conv(self.last_up)).unwrap_or(now_ms);
        r.first_ms = self.first_abs.or(conv(self.first_up)).unwrap_or(r.last_ms);
        Some(r)
    }

    /// IPFIX: absolute times, else uptime + system init time, else the export time.
    pub(super) fn into_record_ipfix(
        self,
        export_ms: u64,
        sys_init: Option<u64>,
    ) -> Option<FlowRecord> {
        let mut r = self.base()?;
        let init = self.sys_init.or(sys_init);
        let conv = |up: Option<u64>| match (init, up) {
            // Saturating: both come from the wire (a crafted uptime must not overflow).
            (Some(i), Some(u)) => Some(i.saturating_add(u)),
            _ => None,
        };
        r.last_ms = self.last_abs.or(conv(self.last_up)).unwrap_or(export_ms);
        r.first_ms = self.first_abs.or(conv(self.first_up)).unwrap_or(r.last_ms);
        Some(r)
    }
}
