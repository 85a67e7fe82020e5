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
//!
//! Turning one parsed record's fields into a `FlowRecord` (element ids, times) is in
//! [`super::normalise`].

use std::collections::HashMap;
use std::net::SocketAddr;

use netflow_parser::variable_versions::ipfix::lookup::{IANAIPFixField, IPFixField};
use netflow_parser::variable_versions::ipfix::{FlowSetBody as IpfixBody, IPFix};
use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;
use netflow_parser::{
    AutoScopedParser, NetflowError, NetflowPacket, NetflowParser, PendingFlowsConfig,
};
use netwarden_firmware::FlowRecord;

use super::normalise::{iana_id, normalise_v5, normalise_v9, push, Fields};
use super::plan::Plans;
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
pub(super) enum StreamKey {
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

/// Template plans kept per exporter on average (the cache is bounded by this x max_exporters).
const PLANS_PER_EXPORTER: usize = 64;

/// Exporters beyond the cap are counted together under this label.
pub const OTHER_EXPORTERS: &str = "other";

/// Decodes datagrams from any number of exporters.
#[derive(Debug)]
pub struct NetflowDecoder {
    parser: AutoScopedParser,
    pub(super) sequences: SequenceTracker<StreamKey>,
    stats: HashMap<SocketAddr, ExporterStats>,
    other: ExporterStats,
    max_exporters: usize,
    /// `systemInitTimeMilliseconds` learnt from IPFIX options data, per stream.
    pub(super) ipfix_sys_init: HashMap<(SocketAddr, u32), u64>,
    /// Templates netflow_parser accepted, as field-offset plans for the hot path
    /// ([`super::plan`]), per exporter and v9 source id / IPFIX observation domain.
    pub(super) plans: Plans<(SocketAddr, u32)>,
    hot_path: bool,
    /// Datagrams the hot path decoded (the rest went through netflow_parser).
    pub(super) hot_path_datagrams: u64,
}

impl NetflowDecoder {
    pub fn new(max_exporters: usize) -> Self {
        Self::build(max_exporters, None)
    }

    /// As [`NetflowDecoder::new`], keeping templates in `book` too ([`super::templates`]):
    /// they outlive a new source port, another shard and, saved by the runtime, a restart.
    pub fn with_template_book(
        max_exporters: usize,
        book: std::sync::Arc<super::templates::TemplateBook>,
    ) -> Self {
        Self::build(max_exporters, Some(book))
    }

    fn build(
        max_exporters: usize,
        book: Option<std::sync::Arc<super::templates::TemplateBook>>,
    ) -> Self {
        let mut pending = PendingFlowsConfig::default();
        // Bounded per exporter: a router that never sends its template costs at most this.
        pending.max_total_bytes = 2 << 20;
        let mut builder = NetflowParser::builder().with_pending_flows(pending);
        if let Some(book) = book {
            builder = builder.with_template_store(book);
        }
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
            plans: Plans::new(max_exporters.max(1) * PLANS_PER_EXPORTER),
            hot_path: true,
            hot_path_datagrams: 0,
        }
    }

    /// Every datagram through netflow_parser (the differential test's reference).
    pub fn without_hot_path(mut self) -> Self {
        self.hot_path = false;
        self
    }

    /// Datagrams decoded by the hot path so far.
    pub fn hot_path_datagrams(&self) -> u64 {
        self.hot_path_datagrams
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
        if self.hot_path {
            if let Some(summary) = self.decode_planned(exporter, data, out, &mut local) {
                self.exporter_stats(exporter).add(&local);
                return summary;
            }
        }
        let result = self.parser.parse_from_source(exporter, data);
        let before = out.len();
        for packet in &result.packets {
            self.learn_plans(exporter, packet);
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

pub(super) fn account(stats: &mut ExporterStats, outcome: SeqOutcome) {
    match outcome {
        SeqOutcome::Gap { missing } => stats.sequence_missing += u64::from(missing),
        SeqOutcome::Behind => stats.sequence_behind += 1,
        SeqOutcome::Baseline | SeqOutcome::InOrder => {}
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
