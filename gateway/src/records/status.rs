//! Per-exporter and per-SNMP-target status: counted by the sources, published by the runtime,
//! read by `stats.json`, the MQTT heartbeat and the HTTP API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Counters for one exporter (source address and port of its datagrams).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExporterStats {
    pub datagrams: u64,
    pub records: u64,
    /// Records without the addresses a flow needs (not featurised).
    pub records_incomplete: u64,
    pub decode_errors_truncated: u64,
    pub decode_errors_unsupported_version: u64,
    pub decode_errors_malformed: u64,
    /// Data sets that arrived before their template (kept pending when possible).
    pub template_misses: u64,
    /// Records (v5, IPFIX) or datagrams (v9) the sequence numbers say never arrived.
    pub sequence_missing: u64,
    /// Datagrams whose sequence number went backwards (duplicate, reorder or restart).
    pub sequence_behind: u64,
    pub v5_datagrams: u64,
    pub v9_datagrams: u64,
    pub ipfix_datagrams: u64,
}

impl ExporterStats {
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors_truncated
            + self.decode_errors_unsupported_version
            + self.decode_errors_malformed
    }

    pub fn add(&mut self, o: &ExporterStats) {
        self.datagrams += o.datagrams;
        self.records += o.records;
        self.records_incomplete += o.records_incomplete;
        self.decode_errors_truncated += o.decode_errors_truncated;
        self.decode_errors_unsupported_version += o.decode_errors_unsupported_version;
        self.decode_errors_malformed += o.decode_errors_malformed;
        self.template_misses += o.template_misses;
        self.sequence_missing += o.sequence_missing;
        self.sequence_behind += o.sequence_behind;
        self.v5_datagrams += o.v5_datagrams;
        self.v9_datagrams += o.v9_datagrams;
        self.ipfix_datagrams += o.ipfix_datagrams;
    }
}

/// Per-exporter counters as the pipeline thread last published them (once a second).
pub type ExporterBoard = Arc<Mutex<BTreeMap<String, ExporterStats>>>;

/// What `stats.json` says about a target.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetStatus {
    pub address: String,
    pub security: String,
    /// `starting`, `ok`, or the kind of the last error (`timeout`, `auth_error`, ...).
    pub state: String,
    pub last_error: Option<String>,
    pub last_ok_ms: Option<u64>,
    pub polls_ok: u64,
    pub polls_failed: u64,
    /// Selected interfaces in the last good walk, and how many had 64-bit counters.
    pub interfaces: u64,
    pub hc_interfaces: u64,
    pub last_poll_ms: Option<u64>,
    /// Duration of the last good poll.
    pub last_poll_micros: u64,
}

/// Status of every target, keyed by target name.
pub type StatusBoard = Arc<Mutex<BTreeMap<String, TargetStatus>>>;
