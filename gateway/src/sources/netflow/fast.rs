//! The decoder's two routes: datagrams of data sets whose templates have [`Plan`]s go the hot
//! path ([`super::plan`]); everything else goes to netflow_parser, and the templates it
//! accepts on the way become plans.

use std::net::SocketAddr;

use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;
use netflow_parser::NetflowPacket;
use netwarden_firmware::FlowRecord;

use super::decode::{account, DecodeSummary, ExporterDomain, NetflowDecoder, StreamKey};
use super::normalise::{push, Fields};
use super::plan::{Family, Plan};
use super::sequence::Advance;
use crate::records::ExporterStats;

/// A v9 or IPFIX datagram's framing, checked: header fields and `(set id, body)` of each set.
struct Framing<'a> {
    family: Family,
    domain: u32,
    /// v9: uptime at export; unused for IPFIX.
    uptime: u32,
    export_secs: u32,
    seq: u32,
    sets: &'a [u8],
}

impl<'a> Framing<'a> {
    /// `None` unless the datagram is exactly a header and whole sets of at least 4 bytes.
    fn of(data: &'a [u8]) -> Option<Framing<'a>> {
        let u32_at = |at: usize| {
            data.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let f = match data {
            [0, 9, ..] if data.len() > 20 => Framing {
                family: Family::V9,
                uptime: u32_at(4)?,
                export_secs: u32_at(8)?,
                seq: u32_at(12)?,
                domain: u32_at(16)?,
                sets: &data[20..],
            },
            [0, 10, hi, lo, ..] if data.len() > 16 => {
                if usize::from(u16::from_be_bytes([*hi, *lo])) != data.len() {
                    return None;
                }
                Framing {
                    family: Family::Ipfix,
                    uptime: 0,
                    export_secs: u32_at(4)?,
                    seq: u32_at(8)?,
                    domain: u32_at(12)?,
                    sets: &data[16..],
                }
            }
            _ => return None,
        };
        f.all_sets().then_some(f)
    }

    fn sets(&self) -> impl Iterator<Item = (u16, &'a [u8])> {
        let mut rest = self.sets;
        std::iter::from_fn(move || {
            let [a, b, c, d, ..] = rest else { return None };
            let id = u16::from_be_bytes([*a, *b]);
            let len = usize::from(u16::from_be_bytes([*c, *d]));
            if len < 4 || len > rest.len() {
                return None;
            }
            let body = &rest[4..len];
            rest = &rest[len..];
            Some((id, body))
        })
    }

    /// Whether the sets tile the datagram exactly.
    fn all_sets(&self) -> bool {
        let covered: usize = self.sets().map(|(_, body)| body.len() + 4).sum();
        covered == self.sets.len()
    }
}

impl NetflowDecoder {
    /// The hot path: `None` when any set is not a data set with a plan (nothing was counted or
    /// emitted then; the caller goes the netflow_parser way).
    pub(super) fn decode_planned(
        &mut self,
        exporter: SocketAddr,
        data: &[u8],
        out: &mut Vec<(ExporterDomain, FlowRecord)>,
        local: &mut ExporterStats,
    ) -> Option<DecodeSummary> {
        let frame = Framing::of(data)?;
        let key = (exporter, frame.domain);
        if !frame
            .sets()
            .all(|(id, _)| id >= 256 && self.plans.get(key, frame.family, id).is_some())
        {
            return None;
        }
        let src = ExporterDomain {
            exporter,
            domain: frame.domain,
        };
        let before = out.len();
        let mut n = 0u32;
        let sys_init = match frame.family {
            Family::Ipfix => self.ipfix_sys_init.get(&key).copied(),
            Family::V9 => None,
        };
        for (id, body) in frame.sets() {
            let Some(plan) = self.plans.get(key, frame.family, id) else {
                continue;
            };
            for i in 0..plan.records_in(body.len()) {
                let mut f = Fields::default();
                plan.fill(plan.record(body, i), &mut f);
                n += 1;
                let rec = match frame.family {
                    Family::V9 => {
                        f.into_record_uptime(u64::from(frame.export_secs) * 1000, frame.uptime)
                    }
                    Family::Ipfix => {
                        f.into_record_ipfix(u64::from(frame.export_secs) * 1000, sys_init)
                    }
                };
                push(rec, src, out, local);
            }
        }
        let (stream, advance) = match frame.family {
            Family::V9 => {
                local.v9_datagrams += 1;
                let stream = StreamKey::V9 {
                    exporter,
                    source_id: frame.domain,
                };
                (stream, Advance::same(1))
            }
            Family::Ipfix => {
                local.ipfix_datagrams += 1;
                let stream = StreamKey::Ipfix {
                    exporter,
                    domain: frame.domain,
                };
                (stream, Advance::same(n))
            }
        };
        let outcome = self.sequences.observe(&stream, frame.seq, Some(advance));
        account(local, outcome);
        local.records = (out.len() - before) as u64 + local.records_incomplete;
        self.hot_path_datagrams += 1;
        Some(DecodeSummary {
            records: out.len() - before,
            error: false,
        })
    }

    /// Turns the templates netflow_parser accepted in `packet` into plans (or drops the plan of
    /// an id that now names an options template, a withdrawn one, or one the hot path cannot
    /// follow).
    pub(super) fn learn_plans(&mut self, exporter: SocketAddr, packet: &NetflowPacket) {
        match packet {
            NetflowPacket::V9(v9) => {
                let key = (exporter, v9.header.source_id);
                for set in &v9.flowsets {
                    match &set.body {
                        V9Body::Template(ts) => {
                            for t in &ts.templates {
                                let fields = t
                                    .fields
                                    .iter()
                                    .map(|f| (f.field_type_number, f.field_length, false));
                                let plan = Plan::new(Family::V9, fields);
                                self.plans.learn(key, Family::V9, t.template_id, plan);
                            }
                        }
                        V9Body::OptionsTemplate(ts) => {
                            for t in &ts.templates {
                                self.plans.learn(key, Family::V9, t.template_id, None);
                            }
                        }
                        _ => {}
                    }
                }
            }
            NetflowPacket::IPFix(p) => {
                let key = (exporter, p.header.observation_domain_id);
                let mut learn = |id: u16, plan: Option<Plan>| {
                    self.plans.learn(key, Family::Ipfix, id, plan);
                };
                let plan_of = |t: &netflow_parser::variable_versions::ipfix::Template| {
                    Plan::new(
                        Family::Ipfix,
                        t.fields.iter().map(|f| {
                            (
                                f.field_type_number,
                                f.field_length,
                                f.enterprise_number.is_some(),
                            )
                        }),
                    )
                };
                for set in &p.flowsets {
                    match &set.body {
                        IpfixBody::Template(t) => learn(t.template_id, plan_of(t)),
                        IpfixBody::Templates(ts) => {
                            ts.iter().for_each(|t| learn(t.template_id, plan_of(t)))
                        }
                        IpfixBody::OptionsTemplate(t) => learn(t.template_id, None),
                        IpfixBody::OptionsTemplates(ts) => {
                            ts.iter().for_each(|t| learn(t.template_id, None))
                        }
                        IpfixBody::V9Template(t) => learn(t.template_id, None),
                        IpfixBody::V9Templates(ts) => {
                            ts.iter().for_each(|t| learn(t.template_id, None))
                        }
                        IpfixBody::V9OptionsTemplate(t) => learn(t.template_id, None),
                        IpfixBody::V9OptionsTemplates(ts) => {
                            ts.iter().for_each(|t| learn(t.template_id, None))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}
