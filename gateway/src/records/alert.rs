//! Alerts as stored in sled and published on MQTT (docs/mqtt.md), and the names of the
//! detectors that raise them.

use serde::{Deserialize, Serialize};

/// Name of the flow detector in alerts and metrics.
pub const FLOW_DETECTOR: &str = "flow_ae";

/// Name of the series detector in alerts and metrics (`series_lstm` until issue 14, docs/mqtt.md).
pub const SERIES_DETECTOR: &str = "series_ae";
/// The temporal graph detector's name in alerts.
pub const GRAPH_DETECTOR: &str = "graph_tgat";

/// Name of the ARP rules (the capture path's ARP detector, docs/arp.md) in alerts and metrics.
pub const ARP_DETECTOR: &str = "arp_rules";

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
    /// The incident this alert opens or updates (flow alerts since issue 18; absent in older
    /// alerts and in interface alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// The rule that fired, for alerts of a signature engine (Suricata's `alert` events,
    /// docs/eve.md); absent for netwarden's own detectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
}

/// A signature engine's rule and the flow's Community ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    pub engine: String,
    pub gid: u64,
    pub signature_id: u64,
    pub rev: u64,
    pub signature: String,
    pub category: String,
    /// The engine's own severity (Suricata: 1 highest .. 4).
    pub engine_severity: u8,
    /// `allowed` or `blocked`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
}

/// One incident: what an initiator did to a target, as far as the evidence so far shows. The
/// first alert of an incident opens it (`update` 0); later alerts about it carry the same `id`
/// and a higher `update`, with the counts so far (docs/mqtt.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable for the incident's life (UUIDv7 of its opening alert).
    pub id: String,
    /// 0 when this alert opens the incident, then 1, 2, ...
    pub update: u32,
    /// `port_scan`, `host_sweep`, `flood`, `repeated_connections`, `large_transfer` or
    /// `unusual_flow`; the graph detector also `brute_force`, `reverse_shell`, `exfiltration`.
    pub pattern: String,
    /// The host that opened the connections (for a reverse shell or an exfiltration, the
    /// compromised host dialling out; the alert's subject says who the attacker is).
    pub initiator: String,
    /// The host they went to; absent when there are many (`host_sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Event time (epoch ms) of the first and the latest evidence.
    pub first_ms: u64,
    pub last_ms: u64,
    /// Anomalous flow records (either direction) taken as evidence.
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Distinct service ports of the target seen in the evidence: exact up to 64, estimated
    /// beyond (linear counting, shown as an integer).
    pub ports_distinct: u32,
    /// The lowest of the first 64 ports seen (at most 16).
    pub ports: Vec<u16>,
    /// Highest score among the evidence.
    pub max_score: f32,
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
    Arp(ArpSubject),
    /// An edge of the temporal graph (`graph_tgat`): who did what to whom.
    Edge(EdgeSubject),
    /// A NetFlow/IPFIX exporter that went silent or loses data (`exporter_health`).
    Exporter(ExporterSubject),
}

impl Subject {
    /// The flow an alert is about; for an edge, oriented attacker -> target.
    pub fn flow(&self) -> Option<&FlowSubject> {
        match self {
            Subject::Flow(f) => Some(f),
            Subject::Edge(e) => Some(&e.flow),
            Subject::Interface(_) | Subject::Arp(_) | Subject::Exporter(_) => None,
        }
    }

    pub fn arp(&self) -> Option<&ArpSubject> {
        match self {
            Subject::Arp(a) => Some(a),
            Subject::Flow(_) | Subject::Interface(_) | Subject::Edge(_) | Subject::Exporter(_) => {
                None
            }
        }
    }

    pub fn interface(&self) -> Option<&InterfaceSubject> {
        match self {
            Subject::Interface(i) => Some(i),
            Subject::Flow(_) | Subject::Arp(_) | Subject::Edge(_) | Subject::Exporter(_) => None,
        }
    }

    pub fn edge(&self) -> Option<&EdgeSubject> {
        match self {
            Subject::Edge(e) => Some(e),
            Subject::Flow(_) | Subject::Interface(_) | Subject::Arp(_) | Subject::Exporter(_) => {
                None
            }
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

/// The exporter an `exporter_health` alert is about (docs/mqtt.md "Exporter alerts").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExporterSubject {
    /// `address:port` its datagrams come from.
    pub exporter: String,
    /// `silent` or `sequence_loss`.
    pub condition: String,
    /// `open`, or `recovered` for the incident's last alert.
    pub state: String,
    /// `silent`: how long no datagram came (ms).
    pub silent_ms: u64,
    /// `sequence_loss`: missing / expected over the last `window_secs`.
    pub loss_ratio: f64,
    pub missing: u64,
    pub expected: u64,
    pub window_secs: u64,
}

impl Eq for ExporterSubject {}

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

/// The ARP incident behind an `arp_rules` alert: who claimed what, towards whom (docs/arp.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpSubject {
    /// The capture that saw it: `capture:IFACE` or `pcap:FILE`.
    pub interface: String,
    pub vlan: Option<u16>,
    /// The rule that fired: `binding_flip`, `unsolicited_replies` or `many_ips`.
    pub rule: String,
    /// The MAC that made the claims.
    pub attacker_mac: String,
    /// Its own address, when its other ARP traffic showed one it holds uncontested.
    pub attacker_ip: Option<String>,
    /// Addresses it claimed: others' (a flip, unsolicited replies) or all of them (many IPs).
    pub impersonated: Vec<String>,
    /// The MACs those addresses were bound to before it claimed them (flips).
    pub previous_macs: Vec<String>,
    /// Hosts whose ARP caches its claims were sent to (the packets' target addresses).
    pub targets: Vec<String>,
    /// Time (Unix ms) of its first and latest packet in this incident.
    pub first_ms: u64,
    pub last_ms: u64,
    /// Its notable ARP packets in this incident so far.
    pub packets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    /// The raw feature value.
    pub value: f32,
    /// Its share of the squared reconstruction error.
    pub share: f32,
}
