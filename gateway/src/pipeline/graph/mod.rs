//! The temporal graph detector: flow records as timestamped edges between `IP:port`
//! endpoints ([`table`]), each new edge turned into one fixed-size row ([`edge`]: the edge's
//! features and, for both endpoints, their K most recent interactions with time deltas), which
//! a TGAT-style edge classifier scores in tract.

pub mod alerting;
pub mod detector;
pub mod edge;
pub mod synth;
pub mod table;

pub use detector::{GraphPipeline, ScoredEdge};
pub use edge::{column_names, INPUT_WIDTH, SCHEMA};
pub use table::{Endpoint, EndpointTable, Initiator, TableStats};

/// Endpoints tracked by default (each about 700 bytes: 8 interactions of 16 features).
pub const DEFAULT_ENDPOINTS: usize = 65_536;
