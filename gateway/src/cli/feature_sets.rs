//! `netwarden features --set`: which features a row carries. `flow-v1` is the flow
//! autoencoder's vector (host windows); `graph-v1` is the temporal graph's edge row (the
//! endpoint table, K recent interactions per endpoint). Both are computed by the pipeline's own
//! code, record by record in arrival order, exactly as the daemon does.

use std::io::Write;

use netwarden_firmware::features::{HostWindows, FLOW_FEATURES};
use netwarden_firmware::FlowRecord;

use crate::pipeline::graph::{self, EndpointTable, TableStats, INPUT_WIDTH};
use crate::pipeline::HOST_WINDOWS;

/// The feature sets `netwarden features` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureSet {
    /// The flow autoencoder's 8 values per record (the default).
    #[default]
    #[value(name = "flow-v1")]
    FlowV1,
    /// The temporal graph's edge row: the edge, and both endpoints' K recent interactions.
    #[value(name = "graph-v1")]
    GraphV1,
}

impl FeatureSet {
    /// The feature columns after the identity columns.
    pub fn columns(self) -> Vec<String> {
        match self {
            FeatureSet::FlowV1 => FLOW_FEATURES.iter().map(|s| s.to_string()).collect(),
            FeatureSet::GraphV1 => graph::column_names(),
        }
    }
}

/// The per-file state that turns records into rows (fresh per input file).
#[derive(Debug)]
pub enum Featurizer {
    Flow(Box<HostWindows<HOST_WINDOWS>>),
    Graph(Box<EndpointTable>, Box<[f32; INPUT_WIDTH]>),
}

impl Featurizer {
    pub fn new(set: FeatureSet) -> Self {
        match set {
            FeatureSet::FlowV1 => Featurizer::Flow(Box::default()),
            FeatureSet::GraphV1 => Featurizer::Graph(
                Box::new(EndpointTable::new(graph::DEFAULT_ENDPOINTS)),
                Box::new([0.0; INPUT_WIDTH]),
            ),
        }
    }

    /// Observes `r` and writes its feature values, each preceded by a comma.
    pub fn write_values(&mut self, r: &FlowRecord, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Featurizer::Flow(w) => {
                for x in w.observe(r) {
                    write!(out, ",{x}")?;
                }
            }
            Featurizer::Graph(t, row) => {
                t.observe(r, row);
                for x in row.iter() {
                    write!(out, ",{x}")?;
                }
            }
        }
        Ok(())
    }

    /// The endpoint table's counters (graph only).
    pub fn graph_stats(&self) -> Option<TableStats> {
        match self {
            Featurizer::Flow(_) => None,
            Featurizer::Graph(t, _) => Some(t.stats()),
        }
    }
}
