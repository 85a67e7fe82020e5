//! Alerts as stored in sled and published on MQTT (docs/mqtt.md), and the names of the
//! detectors that raise them.

use serde::{Deserialize, Serialize};

/// Name of the flow detector in alerts and metrics.
pub const FLOW_DETECTOR: &str = "flow_ae";

/// Name of the series detector in alerts and metrics (`series_lstm` until issue 14, docs/mqtt.md).
pub const SERIES_DETECTOR: &str = "series_ae";
/// The temporal graph detector's name in alerts.
pub const GRAPH_DETECTOR: &str = "graph_tgat";

/// The series detector's name before issue 14 renamed it (the model is a convolutional
/// autoencoder, not an LSTM). Input that names a detector (`POST /detect`, `?detector=`,
/// `history scores --detector`) still accepts it, and alerts or scores stored under it are read
/// as [`SERIES_DETECTOR`].
pub const SERIES_DETECTOR_ALIAS: &str = "series_lstm";

/// The current name of `name`: [`SERIES_DETECTOR`] for its old alias, `name` otherwise.
pub fn canonical_detector(name: &str) -> &str {
    if name == SERIES_DETECTOR_ALIAS {
        SERIES_DETECTOR
    } else {
        name
    }
}

/// The alert as stored in sled and published on MQTT (docs/mqtt.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable unique id (UUIDv7); a republished alert keeps it, so subscribers can de-duplicate.
    pub id: String,
    pub ts_ms: u64,
    pub ts: String,
    pub site: String,
    pub device: String,
    pub detector: String,
    pub model: ModelRef,
    pub severity: String,
    pub score: f32,
    pub threshold: f32,
    pub subject: Subject,
    pub top_features: Vec<Contribution>,
    /// Anomalous flows from the same source folded into earlier alerts since the last one.
    pub suppressed_since_last: u64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
}

/// What an alert is about, tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Flow(FlowSubject),
    Interface(InterfaceSubject),
    /// An edge of the temporal graph (`graph_tgat`): who did what to whom.
    Edge(EdgeSubject),
}

impl Subject {
    /// The flow an alert is about; for an edge, oriented attacker -> target.
    pub fn flow(&self) -> Option<&FlowSubject> {
        match self {
            Subject::Flow(f) => Some(f),
            Subject::Edge(e) => Some(&e.flow),
            Subject::Interface(_) => None,
        }
    }

    pub fn interface(&self) -> Option<&InterfaceSubject> {
        match self {
            Subject::Interface(i) => Some(i),
            Subject::Flow(_) | Subject::Edge(_) => None,
        }
    }

    pub fn edge(&self) -> Option<&EdgeSubject> {
        match self {
            Subject::Edge(e) => Some(e),
            Subject::Flow(_) | Subject::Interface(_) => None,
        }
    }
}

/// The graph detector's incident: the edge that raised it and the roles of its endpoints.
/// `attacker` is the party the pattern blames (the scanner, the brute forcer, the listener a
/// reverse shell or an exfiltration connects to), never the victim; `initiator` says which of
/// the two opened the connection (`attacker` for scans and brute force, `target` for a reverse
/// shell, where the compromised host dials out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeSubject {
    /// The edge's flow, oriented attacker -> target.
    pub flow: FlowSubject,
    /// `IP:port`.
    pub attacker: String,
    pub target: String,
    /// `attacker` or `target`.
    pub initiator: String,
    /// The pattern head's verdict (`scan`, `brute_force`, `flood`, `reverse_shell`, ...).
    pub pattern: String,
    pub probability: f32,
    /// Edges of this incident (same attacker host, target host and pattern) this alert stands
    /// for: this one and those folded in since the incident's previous alert.
    pub edges: u64,
}

impl Eq for EdgeSubject {}

/// The flow that triggered a flow alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSubject {
    pub exporter: String,
    pub src_addr: String,
    pub dst_addr: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub flow_first_ms: u64,
    pub flow_last_ms: u64,
}

/// The interface whose traffic series looked wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSubject {
    /// The SNMP target's configured name (or address).
    pub target: String,
    pub if_index: u32,
    pub if_name: String,
    /// `in`, `out` or `both`: which direction's features carry most of the error.
    pub direction: String,
    /// Poll times (Unix ms) of the window's first and last steps.
    pub window_first_ms: u64,
    pub window_last_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    /// The raw feature value.
    pub value: f32,
    /// Its share of the squared reconstruction error.
    pub share: f32,
}
