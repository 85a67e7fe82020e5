//! Records: the data that passes between layers. Sources produce [`FlowInput`] and
//! [`RateSample`]s; the pipelines turn them into [`Alert`]s, [`summary`] rows and [`scoreboard`]
//! scores; sinks store, publish and serve them; [`status`] carries the sources' counters.
//!
//! Rule: this folder imports nothing of the crate (only `netwarden_firmware` and external
//! crates), so every layer can depend on it and none depends on another through it.

pub mod alert;
pub mod eve;
pub mod flow;
pub mod flow_ledger;
pub mod flow_set;
pub mod learning;
pub mod rate;
pub mod samples;
pub mod scoreboard;
pub mod status;
pub mod summary;
pub mod time;
pub mod topic;

pub use alert::{
    canonical_detector, Alert, ArpSubject, Contribution, EdgeSubject, ExporterSubject, FlowSubject,
    Incident, InterfaceSubject, ModelRef, RuleRef, Subject, ARP_DETECTOR, FLOW_DETECTOR,
    GRAPH_DETECTOR, SERIES_DETECTOR, SERIES_DETECTOR_ALIAS,
};
pub use flow::{Datagram, FlowInput, FlowOrigin};
pub use flow_set::FlowSet;
pub use rate::RateSample;
pub use status::{ExporterBoard, ExporterStats, StatusBoard, TargetStatus};
pub use summary::{FlowSummary, HostSummary, ScoreSummary};
