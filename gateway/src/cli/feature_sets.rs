//! `netwarden features --set`: which features a row carries. `flow-v1` is the flow
//! autoencoder's vector (host windows); `flow-v2` adds the conversation's other direction and
//! its service's context (pairing with a wait on the arrival clock, so rows come out when a
//! pair completes or its wait ends, not in arrival order); `graph-v1` is the temporal graph's
//! edge row (the endpoint table, K recent interactions per endpoint). All are computed by the
//! pipeline's own code, record by record in arrival order, exactly as the daemon does.

use std::io::Write;
use std::sync::Arc;

use netwarden_firmware::features::{HostWindows, FLOW_FEATURES};
use netwarden_firmware::features_v2::{FlowV2Stats, DEFAULT_PAIR_WAIT_MS, FLOW_V2_FEATURES};
use netwarden_firmware::FlowRecord;

use crate::pipeline::graph::{self, EndpointTable, TableStats, INPUT_WIDTH};
use crate::pipeline::{PairState, HOST_WINDOWS};

/// The feature sets `netwarden features` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureSet {
    /// The flow autoencoder's 8 values per record (the default).
    #[default]
    #[value(name = "flow-v1")]
    FlowV1,
    /// `flow-v1` plus the reverse direction (answered, bytes split, flags of both sides) and the
    /// service's window (conversations, failed share, novelty).
    #[value(name = "flow-v2")]
    FlowV2,
    /// The temporal graph's edge row: the edge, and both endpoints' K recent interactions.
    #[value(name = "graph-v1")]
    GraphV1,
}

impl FeatureSet {
    /// The feature columns after the identity columns.
    pub fn columns(self) -> Vec<String> {
        match self {
            FeatureSet::FlowV1 => FLOW_FEATURES.iter().map(|s| s.to_string()).collect(),
            FeatureSet::FlowV2 => FLOW_V2_FEATURES.iter().map(|s| s.to_string()).collect(),
            FeatureSet::GraphV1 => graph::column_names(),
        }
    }
}

/// What `flow-v2` needs besides the records: the end of novelty learning (event time, Unix ms;
/// `None`: novelty 0) and the wait for a record's reverse direction (`[detector] pair_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Params {
    pub learn_until: Option<u64>,
    pub pair_wait_ms: u64,
}

impl Default for V2Params {
    fn default() -> Self {
        V2Params {
            learn_until: None,
            pair_wait_ms: DEFAULT_PAIR_WAIT_MS,
        }
    }
}

impl V2Params {
    /// Novelty learnt until `until` (event time), the default wait.
    pub fn learnt_until(until: Option<u64>) -> Self {
        V2Params {
            learn_until: until,
            ..V2Params::default()
        }
    }
}

/// Who sent a record: the identity columns `netwarden features` writes before the values.
#[derive(Debug, Clone)]
pub struct RowId {
    pub exporter: Arc<str>,
    pub domain: u32,
}

/// Where rows go: identity, record, feature values.
pub type RowSink<'a> = dyn FnMut(&RowId, &FlowRecord, &[f32]) -> std::io::Result<()> + 'a;

/// The per-file state that turns records into rows (fresh per input file).
#[derive(Debug)]
pub enum Featurizer {
    Flow(Box<HostWindows<HOST_WINDOWS>>),
    FlowV2(Box<HostWindows<HOST_WINDOWS>>, Box<PairState<RowId>>),
    Graph(Box<EndpointTable>, Box<[f32; INPUT_WIDTH]>),
}

impl Featurizer {
    pub fn new(set: FeatureSet) -> Self {
        match set {
            FeatureSet::FlowV1 => Featurizer::Flow(Box::default()),
            FeatureSet::FlowV2 => Featurizer::FlowV2(
                Box::default(),
                Box::new(PairState::new(DEFAULT_PAIR_WAIT_MS)),
            ),
            FeatureSet::GraphV1 => Featurizer::Graph(
                Box::new(EndpointTable::new(graph::DEFAULT_ENDPOINTS)),
                Box::new([0.0; INPUT_WIDTH]),
            ),
        }
    }

    /// `flow-v2` novelty (services used before `learn_until`, event time, are known) and the
    /// pairing wait.
    pub fn with_v2(mut self, v2: V2Params) -> Self {
        if let Featurizer::FlowV2(_, p) = &mut self {
            p.set_learn_until(v2.learn_until);
            p.set_wait_ms(v2.pair_wait_ms);
        }
        self
    }

    /// Observes `r`, which arrived at `now_ms`, and gives `out` the rows that are ready: this
    /// record's at once (`flow-v1`, `graph-v1`), or with `flow-v2` the pairs that completed and
    /// the records whose wait ended.
    pub fn push(
        &mut self,
        id: RowId,
        r: &FlowRecord,
        now_ms: u64,
        out: &mut RowSink<'_>,
    ) -> std::io::Result<()> {
        match self {
            Featurizer::Flow(w) => out(&id, r, &w.observe(r)),
            Featurizer::FlowV2(w, p) => {
                let v1 = w.observe(r);
                let mut res = Ok(());
                let mut emit = |r: &FlowRecord, v: &[f32; FLOW_V2_FEATURES.len()], id: RowId| {
                    if res.is_ok() {
                        res = out(&id, r, v);
                    }
                };
                p.push(r, v1, id, now_ms, &mut emit);
                p.expire(now_ms, &mut emit);
                res
            }
            Featurizer::Graph(t, row) => {
                t.observe(r, row);
                out(&id, r, &row[..])
            }
        }
    }

    /// End of input: the `flow-v2` records still waiting for their reverse.
    pub fn finish(&mut self, out: &mut RowSink<'_>) -> std::io::Result<()> {
        let mut res = Ok(());
        if let Featurizer::FlowV2(_, p) = self {
            p.drain(&mut |r, v, id| {
                if res.is_ok() {
                    res = out(&id, r, v);
                }
            });
        }
        res
    }

    /// The endpoint table's counters (graph only).
    pub fn graph_stats(&self) -> Option<TableStats> {
        match self {
            Featurizer::Graph(t, _) => Some(t.stats()),
            _ => None,
        }
    }

    /// The pairing counters (`flow-v2` only).
    pub fn pair_stats(&self) -> Option<FlowV2Stats> {
        match self {
            Featurizer::FlowV2(_, p) => Some(p.stats()),
            _ => None,
        }
    }
}

/// Writes one CSV row: identity columns, then the values, each preceded by a comma.
pub fn write_row(
    out: &mut dyn Write,
    id: &RowId,
    r: &FlowRecord,
    values: &[f32],
) -> std::io::Result<()> {
    write!(
        out,
        "{},{},{},{},{},{},{},{},{}",
        id.exporter,
        id.domain,
        r.src_addr,
        r.dst_addr,
        r.src_port,
        r.dst_port,
        r.protocol,
        r.first_ms,
        r.last_ms
    )?;
    for x in values {
        write!(out, ",{x}")?;
    }
    writeln!(out)
}
