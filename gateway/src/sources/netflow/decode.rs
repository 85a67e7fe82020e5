//! Decoding export datagrams into normalised flow records, with per-exporter accounting.
//!
//! Template state lives in netflow_parser's `AutoScopedParser`: one cache per exporter address
//! and v9 source id / IPFIX observation domain, so one router's templates never decode
//! another's data. Pending-flow buffering keeps data that arrives before its template.
//!
//! Times: v5 and v9 carry first/last as the exporter's uptime in ms; they are turned into epoch
//! ms with wrapping u32 arithmetic against the header's uptime and export time, so an uptime
//! that wrapped (every 49.7 days) still gives the right answer. IPFIX may carry absolute
//! seconds/ms/NTP times or uptime relative to `systemInitTimeMilliseconds`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use netflow_parser::static_versions::v5::V5;
use netflow_parser::variable_versions::ipfix::lookup::{IANAIPFixField, IPFixField};
use netflow_parser::variable_versions::ipfix::{FlowSetBody as IpfixBody, IPFix};
use netflow_parser::variable_versions::v9::{FlowSetBody as V9Body, V9};
use netflow_parser::{
    AutoScopedParser, FieldValue, NetflowError, NetflowPacket, NetflowParser, PendingFlowsConfig,
    V9Field,
};
use netwarden_firmware::FlowRecord;

use super::sequence::{Advance, SeqOutcome, SequenceTracker};
use crate::records::ExporterStats;

/// Where a record came from: the exporter's address and its v9 source id, IPFIX observation
/// domain, or v5 engine type/id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExporterDomain {
    pub exporter: SocketAddr,
    pub domain: u32,
}

/// What one datagram gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    pub records: usize,
    pub error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StreamKey {
    V5 {
        exporter: SocketAddr,
        engine: u16,
    },
    V9 {
        exporter: SocketAddr,
        source_id: u32,
    },
    Ipfix {
        exporter: SocketAddr,
        domain: u32,
    },
}

/// Exporters beyond the cap are counted together under this label.
pub const OTHER_EXPORTERS: &str = "other";

/// Decodes datagrams from any number of exporters.
#[derive(Debug)]
pub struct NetflowDecoder {
    parser: AutoScopedParser,
    sequences: SequenceTracker<StreamKey>,
    stats: HashMap<SocketAddr, ExporterStats>,
    other: ExporterStats,
    max_exporters: usize,
    /// `systemInitTimeMilliseconds` learnt from IPFIX options data, per stream.
    ipfix_sys_init: HashMap<(SocketAddr, u32), u64>,
}

impl NetflowDecoder {
    pub fn new(max_exporters: usize) -> Self {
        let mut pending = PendingFlowsConfig::default();
        // Bounded per exporter: a router that never sends its template costs at most this.
        pending.max_total_bytes = 2 << 20;
        let builder = NetflowParser::builder().with_pending_flows(pending);
        let parser = AutoScopedParser::try_with_builder(builder)
            .and_then(|p| p.with_max_sources(max_exporters.max(1)))
            .unwrap_or_default();
        NetflowDecoder {
            parser,
            sequences: SequenceTracker::new(max_exporters.max(1) * 4),
            stats: HashMap::new(),
            other: ExporterStats::default(),
            max_exporters: max_exporters.max(1),
            ipfix_sys_init: HashMap::new(),
        }
    }

    /// Per-exporter counters, plus the overflow bucket under [`OTHER_EXPORTERS`].
    pub fn stats(&self) -> impl Iterator<Item = (String, &ExporterStats)> {
        self.stats
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain((self.other.datagrams > 0).then(|| (OTHER_EXPORTERS.to_string(), &self.other)))
    }

    /// Sum over all exporters.
    pub fn totals(&self) -> ExporterStats {
        let mut t = self.other.clone();
        for s in self.stats.values() {
            t.add(s);
        }
        t
    }

    /// Decodes one datagram from `exporter`, appending its flow records to `out`.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        data: &[u8],
        out: &mut Vec<(ExporterDomain, FlowRecord)>,
    ) -> DecodeSummary {
        let mut local = ExporterStats {
            datagrams: 1,
            ..ExporterStats::default()
        };
        // netflow_parser's scoped parser reports an unknown version as "incomplete"; tell the
        // two apart here (and skip the parser for what is plainly not NetFlow).
        match data {
            [hi, lo, ..] if matches!(u16::from_be_bytes([*hi, *lo]), 5 | 7 | 9 | 10) => {}
            [_, _, ..] => local.decode_errors_unsupported_version += 1,
            _ => local.decode_errors_truncated += 1,
        }
        if local.decode_errors() > 0 {
            self.exporter_stats(exporter).add(&local);
            return DecodeSummary {
                records: 0,
                error: true,
            };
        }
        let result = self.parser.parse_from_source(exporter, data);
        let before = out.len();
        for packet in &result.packets {
            match packet {
                NetflowPacket::V5(v5) => {
                    local.v5_datagrams += 1;
                    let engine =
                        u16::from(v5.header.engine_type) << 8 | u16::from(v5.header.engine_id);
                    let n = normalise_v5(
                        v5,
                        ExporterDomain {
                            exporter,
                            domain: u32::from(engine),
                        },
                        out,
                        &mut local,
                    );
                    let key = StreamKey::V5 { exporter, engine };
                    let outcome = self.sequences.observe(
                        &key,
                        v5.header.flow_sequence,
                        Some(Advance::same(n as u32)),
                    );
                    account(&mut local, outcome);
                }
                NetflowPacket::V9(v9) => {
                    local.v9_datagrams += 1;
                    normalise_v9(
                        v9,
                        ExporterDomain {
                            exporter,
                            domain: v9.header.source_id,
                        },
                        out,
                        &mut local,
                    );
                    let decoded = v9
                        .flowsets
                        .iter()
                        .filter(|s| matches!(s.body, V9Body::Data(_) | V9Body::OptionsData(_)))
                        .count();
                    let wire = wire_data_sets(data);
                    local.template_misses += wire.saturating_sub(decoded) as u64;
                    let key = StreamKey::V9 {
                        exporter,
                        source_id: v9.header.source_id,
                    };
                    let outcome = self.sequences.observe(
                        &key,
                        v9.header.sequence_number,
                        Some(Advance::same(1)),
                    );
                    account(&mut local, outcome);
                }
                NetflowPacket::IPFix(ipfix) => {
                    local.ipfix_datagrams += 1;
                    let domain = ipfix.header.observation_domain_id;
                    let (advance, complete) = self.normalise_ipfix(
                        ipfix,
                        wire_data_sets(data),
                        exporter,
                        out,
                        &mut local,
                    );
                    // Data that waited for its template belongs to earlier messages' counts:
                    // this message cannot be judged, it only sets the next baseline.
                    let advance = complete.then_some(advance);
                    let key = StreamKey::Ipfix { exporter, domain };
                    let outcome =
                        self.sequences
                            .observe(&key, ipfix.header.sequence_number, advance);
                    account(&mut local, outcome);
                }
                _ => local.decode_errors_unsupported_version += 1,
            }
        }
        let error = match &result.error {
            None => false,
            Some(e) => {
                match e {
                    NetflowError::Incomplete { .. } => local.decode_errors_truncated += 1,
                    NetflowError::Partial { message } if message.contains("Eof") => {
                        local.decode_errors_truncated += 1
                    }
                    NetflowError::UnsupportedVersion { .. }
                    | NetflowError::FilteredVersion { .. } => {
                        local.decode_errors_unsupported_version += 1
                    }
                    _ => local.decode_errors_malformed += 1,
                }
                true
            }
        };
        local.records = (out.len() - before) as u64 + local.records_incomplete;
        self.exporter_stats(exporter).add(&local);
        DecodeSummary {
            records: out.len() - before,
            error,
        }
    }

    fn exporter_stats(&mut self, exporter: SocketAddr) -> &mut ExporterStats {
        if !self.stats.contains_key(&exporter) && self.stats.len() >= self.max_exporters {
            return &mut self.other;
        }
        self.stats.entry(exporter).or_default()
    }

    /// Returns (data records this message carried, options records included, and whether every
    /// data set decoded).
    fn normalise_ipfix(
        &mut self,
        p: &IPFix,
        wire_sets: usize,
        exporter: SocketAddr,
        out: &mut Vec<(ExporterDomain, FlowRecord)>,
        stats: &mut ExporterStats,
    ) -> (Advance, bool) {
        let src = ExporterDomain {
            exporter,
            domain: p.header.observation_domain_id,
        };
        let export_ms = u64::from(p.header.export_time) * 1000;
        let domain = p.header.observation_domain_id;
        let mut n = 0;
        let mut complete = true;
        // Options data first: it may carry systemInitTimeMilliseconds for this stream.
        for set in &p.flowsets {
            if let IpfixBody::OptionsData(od) = &set.body {
                for rec in &od.fields {
                    for (field, value) in rec {
                        if matches!(
                            field,
                            IPFixField::IANA(IANAIPFixField::SystemInitTimeMilliseconds)
                        ) {
                            if let Some(ms) = value.as_u64() {
                                self.ipfix_sys_init.insert((exporter, domain), ms);
                            }
                        }
                    }
                }
            }
        }
        // RFC 7011: the sequence number counts all data records, options data included.
        let mut options = 0;
        for set in &p.flowsets {
            match &set.body {
                IpfixBody::OptionsData(d) => options += d.fields.len(),
                IpfixBody::V9OptionsData(d) => options += d.fields.len(),
                _ => {}
            }
        }
        let sys_init = self.ipfix_sys_init.get(&(exporter, domain)).copied();
        for set in &p.flowsets {
            match &set.body {
                IpfixBody::Data(d) => {
                    for rec in &d.fields {
                        n += 1;
                        let mut f = Fields::default();
                        for (field, value) in rec {
                            if let IPFixField::IANA(iana) = field {
                                f.set(iana_id(iana), value);
                            }
                        }
                        push(f.into_record_ipfix(export_ms, sys_init), src, out, stats);
                    }
                }
                IpfixBody::V9Data(d) => {
                    for rec in &d.fields {
                        n += 1;
                        let mut f = Fields::default();
                        for (field, value) in rec {
                            f.set(u16::from(*field), value);
                        }
                        push(f.into_record_ipfix(export_ms, sys_init), src, out, stats);
                    }
                }
                IpfixBody::NoTemplate(_) => {
                    stats.template_misses += 1;
                    complete = false;
                }
                _ => {}
            }
        }
        // With pending flows on, data waiting for its template leaves no trace in the output;
        // count data sets on the wire to notice it.
        let decoded_sets = p
            .flowsets
            .iter()
            .filter(|s| {
                matches!(
                    s.body,
                    IpfixBody::Data(_)
                        | IpfixBody::V9Data(_)
                        | IpfixBody::OptionsData(_)
                        | IpfixBody::V9OptionsData(_)
                )
            })
            .count();
        if wire_sets > decoded_sets {
            stats.template_misses += (wire_sets - decoded_sets) as u64;
            complete = false;
        } else if wire_sets < decoded_sets {
            // Pending data replayed: those records were counted by earlier sequence numbers.
            complete = false;
        }
        let advance = Advance {
            all: (n + options) as u32,
            without_options: n as u32,
        };
        (advance, complete)
    }
}

/// Data sets (set id >= 256) a v9 or IPFIX message carries, from the raw set headers: with
/// pending-flow buffering on, data waiting for its template leaves no trace in the parsed
/// output, so this is how it is noticed.
fn wire_data_sets(data: &[u8]) -> usize {
    let header = match data {
        [0, 9, ..] => 20,
        [0, 10, ..] => 16,
        _ => return 0,
    };
    let mut rest = data.get(header..).unwrap_or_default();
    let mut n = 0;
    while let [a, b, c, d, ..] = rest {
        let (id, len) = (
            u16::from_be_bytes([*a, *b]),
            usize::from(u16::from_be_bytes([*c, *d])),
        );
        if len < 4 || len > rest.len() {
            break;
        }
        n += usize::from(id >= 256);
        rest = &rest[len..];
    }
    n
}

fn account(stats: &mut ExporterStats, outcome: SeqOutcome) {
    match outcome {
        SeqOutcome::Gap { missing } => stats.sequence_missing += u64::from(missing),
        SeqOutcome::Behind => stats.sequence_behind += 1,
        SeqOutcome::Baseline | SeqOutcome::InOrder => {}
    }
}

fn push(
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

fn normalise_v5(
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

fn normalise_v9(
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
fn iana_id(f: &IANAIPFixField) -> u16 {
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
mod ie {
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
struct Fields {
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

impl Fields {
    fn set(&mut self, id: u16, v: &FieldValue) {
        match id {
            ie::SRC_V4 | ie::SRC_V6 => self.src = ip(v),
            ie::DST_V4 | ie::DST_V6 => self.dst = ip(v),
            ie::SRC_PORT => self.src_port = v.as_u16().unwrap_or(0),
            ie::DST_PORT => self.dst_port = v.as_u16().unwrap_or(0),
            ie::PROTOCOL => self.protocol = v.as_u8().unwrap_or(0),
            ie::TCP_FLAGS => {
                self.tcp_flags = match v {
                    FieldValue::TcpControlBits(bits, _) => u16::from(*bits),
                    other => other.as_u16().unwrap_or(0),
                }
            }
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
    fn into_record_uptime(self, now_ms: u64, now_up: u32) -> Option<FlowRecord> {
        let mut r = self.base()?;
        let conv = |up: Option<u64>| up.map(|u| uptime_to_epoch(now_ms, now_up, u as u32));
        r.last_ms = self.last_abs.or(conv(self.last_up)).unwrap_or(now_ms);
        r.first_ms = self.first_abs.or(conv(self.first_up)).unwrap_or(r.last_ms);
        Some(r)
    }

    /// IPFIX: absolute times, else uptime + system init time, else the export time.
    fn into_record_ipfix(self, export_ms: u64, sys_init: Option<u64>) -> Option<FlowRecord> {
        let mut r = self.base()?;
        let init = self.sys_init.or(sys_init);
        let conv = |up: Option<u64>| match (init, up) {
            (Some(i), Some(u)) => Some(i + u),
            _ => None,
        };
        r.last_ms = self.last_abs.or(conv(self.last_up)).unwrap_or(export_ms);
        r.first_ms = self.first_abs.or(conv(self.first_up)).unwrap_or(r.last_ms);
        Some(r)
    }
}

fn ip(v: &FieldValue) -> Option<IpAddr> {
    match v {
        FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
        FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v5 datagram with `n` records, header uptime `up`, export time `secs`.
    pub(crate) fn v5_datagram(
        n: u16,
        seq: u32,
        up: u32,
        secs: u32,
        first: u32,
        last: u32,
    ) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&5u16.to_be_bytes());
        d.extend_from_slice(&n.to_be_bytes());
        d.extend_from_slice(&up.to_be_bytes());
        d.extend_from_slice(&secs.to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&seq.to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 0]);
        for i in 0..n {
            d.extend_from_slice(&[10, 0, 0, 1]);
            d.extend_from_slice(&[10, 0, 0, 2]);
            d.extend_from_slice(&[0; 4]); // next hop
            d.extend_from_slice(&[0; 4]); // in/out if
            d.extend_from_slice(&3u32.to_be_bytes());
            d.extend_from_slice(&180u32.to_be_bytes());
            d.extend_from_slice(&first.to_be_bytes());
            d.extend_from_slice(&last.to_be_bytes());
            d.extend_from_slice(&(40000 + i).to_be_bytes());
            d.extend_from_slice(&80u16.to_be_bytes());
            d.extend_from_slice(&[0, 0x12, 6, 0]); // pad, flags, proto, tos
            d.extend_from_slice(&[0; 8]); // AS, masks, pad
        }
        d
    }

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn v5_times_use_wrapping_uptime() {
        let mut dec = NetflowDecoder::new(8);
        let mut out = Vec::new();
        // Uptime wrapped: header at 1000 ms, flow started at u32::MAX - 999 (2000 ms earlier).
        let d = v5_datagram(1, 0, 1000, 1_700_000_000, u32::MAX - 999, 500);
        let s = dec.decode(addr(1), &d, &mut out);
        assert_eq!(s.records, 1);
        let r = out[0].1;
        assert_eq!(r.first_ms, 1_700_000_000_000 - 2000);
        assert_eq!(r.last_ms, 1_700_000_000_000 - 500);
        assert_eq!(
            (r.packets, r.bytes, r.protocol, r.dst_port, r.tcp_flags),
            (3, 180, 6, 80, 0x12)
        );
    }

    #[test]
    fn v5_sequence_gaps_are_counted_per_exporter() {
        let mut dec = NetflowDecoder::new(8);
        let mut out = Vec::new();
        dec.decode(addr(1), &v5_datagram(2, 100, 5000, 1, 0, 0), &mut out);
        dec.decode(addr(1), &v5_datagram(2, 102, 5000, 1, 0, 0), &mut out);
        dec.decode(addr(1), &v5_datagram(2, 110, 5000, 1, 0, 0), &mut out);
        dec.decode(addr(2), &v5_datagram(2, 7, 5000, 1, 0, 0), &mut out);
        let stats: HashMap<_, _> = dec.stats().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(stats["127.0.0.1:1"].sequence_missing, 6);
        assert_eq!(stats["127.0.0.1:1"].records, 6);
        assert_eq!(stats["127.0.0.1:2"].sequence_missing, 0);
    }

    #[test]
    fn bad_input_is_counted_per_exporter_and_never_panics() {
        let mut dec = NetflowDecoder::new(8);
        let mut out = Vec::new();
        let good = v5_datagram(3, 0, 5000, 1, 0, 0);
        for n in 0..good.len() {
            dec.decode(addr(9), &good[..n], &mut out);
        }
        dec.decode(addr(9), b"\x00\x63garbage garbage", &mut out);
        // v9 data set (id 300) without any template.
        let mut v9 = Vec::new();
        for x in [9u16, 1] {
            v9.extend_from_slice(&x.to_be_bytes());
        }
        v9.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        v9.extend_from_slice(&300u16.to_be_bytes());
        v9.extend_from_slice(&8u16.to_be_bytes());
        v9.extend_from_slice(&[1, 2, 3, 4]);
        dec.decode(addr(9), &v9, &mut out);
        dec.decode(addr(1), &good, &mut out);
        let stats: HashMap<_, _> = dec.stats().map(|(k, v)| (k, v.clone())).collect();
        let bad = &stats["127.0.0.1:9"];
        assert!(bad.decode_errors() >= 1, "{bad:?}");
        assert_eq!(bad.decode_errors_unsupported_version, 1);
        assert!(bad.template_misses >= 1, "{bad:?}");
        // The healthy exporter is untouched by the broken one.
        assert_eq!(stats["127.0.0.1:1"].records, 3);
        assert_eq!(stats["127.0.0.1:1"].decode_errors(), 0);
        assert_eq!(out.iter().filter(|(s, _)| s.exporter == addr(1)).count(), 3);
    }

    #[test]
    fn exporters_beyond_the_cap_share_one_bucket() {
        let mut dec = NetflowDecoder::new(2);
        let mut out = Vec::new();
        for p in 1..=5 {
            dec.decode(addr(p), &v5_datagram(1, 0, 5000, 1, 0, 0), &mut out);
        }
        let labels: Vec<_> = dec.stats().map(|(k, _)| k).collect();
        assert_eq!(labels.len(), 3);
        assert!(labels.contains(&OTHER_EXPORTERS.to_string()));
        assert_eq!(dec.totals().records, 5);
    }
}
