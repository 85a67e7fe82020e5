//! The flow feature sets: which one a flow bundle was trained on (its manifest's
//! `features.schema`), which one a stored sample row carries. One type for the scorer, the
//! reservoir, the samples and `/detect`.

use netwarden_firmware::features::{FLOW_FEATURES, FLOW_SCHEMA, FLOW_WIDTH};
use netwarden_firmware::features_v2::{FLOW_V2_FEATURES, FLOW_V2_SCHEMA, FLOW_V2_WIDTH};

/// A flow feature set. Ordered by width (`flow-v1` < `flow-v2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowSet {
    #[default]
    V1,
    V2,
}

impl FlowSet {
    pub const ALL: [FlowSet; 2] = [FlowSet::V1, FlowSet::V2];

    pub fn from_schema(schema: &str) -> Option<FlowSet> {
        match schema {
            FLOW_SCHEMA => Some(FlowSet::V1),
            FLOW_V2_SCHEMA => Some(FlowSet::V2),
            _ => None,
        }
    }

    /// Its `features.schema` name: `flow-v1` or `flow-v2`.
    pub const fn schema(self) -> &'static str {
        match self {
            FlowSet::V1 => FLOW_SCHEMA,
            FlowSet::V2 => FLOW_V2_SCHEMA,
        }
    }

    /// Values per row the model reads and reconstructs.
    pub const fn width(self) -> usize {
        match self {
            FlowSet::V1 => FLOW_WIDTH,
            FlowSet::V2 => FLOW_V2_WIDTH,
        }
    }

    /// Feature names in row order (`width()` of them).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            FlowSet::V1 => &FLOW_FEATURES,
            FlowSet::V2 => &FLOW_V2_FEATURES,
        }
    }
}

impl std::fmt::Display for FlowSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.schema())
    }
}
