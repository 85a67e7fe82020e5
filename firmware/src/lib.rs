//! netwarden's allocation-free core.
//!
//! This crate is `#![no_std]` (unless the `std` feature is on) so that the same code meters
//! traffic on a Cortex-M board and inside the gateway's hot path. It holds what must be computed
//! identically everywhere, most of all the feature vectors the detectors see: training reads the
//! gateway's own export of these vectors, so there is exactly one implementation of them.
//!
//! Layers, bottom up:
//! - [`wire`]: views over captured frames (smoltcp's `wire` parsers) to reach UDP payloads and
//!   packets' 5-tuples.
//! - [`meter`]: the packet meter: frames in, bidirectional flows (NFStream's columns, NetFlow's
//!   unidirectional records) out, from a fixed-capacity table with idle/active timeouts and
//!   counted eviction when full.
//!   Its ARP side ([`meter::arp`]) accounts what the flow meter refuses: ARP kinds,
//!   unsolicited replies and IP-to-MAC bindings in a fixed table.
//! - [`flow`]: the normalised flow record every source produces.
//! - [`features`]: the `flow-v1` feature schema and the per-source-host windows that give a
//!   single flow its context, in a fixed-capacity table chosen by the caller.
//! - [`features_v2`]: the `flow-v2` schema: `flow-v1` plus the conversation's other direction
//!   (a bounded pairing table) and its service's window and novelty ([`orient`] says who opened
//!   it).
//! - [`series`]: the `series-v1` schema: per-interface rate steps, rolling stats and the
//!   50-step windows the LSTM detector scores, with documented handling of unknown steps.
//! - [`scoring`]: scaling, reconstruction error, severity and the top contributing features.
//!
//! Invariants: nothing here allocates, reads a clock or panics on input; capacity limits are
//! explicit and every eviction is counted.
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(test)]
extern crate std;

pub mod features;
pub mod features_v2;
pub mod flow;
pub mod meter;
pub mod orient;
pub mod scoring;
pub mod series;
pub mod synth;
pub mod wire;

pub use features::{FlowFeatures, HostWindows, FLOW_FEATURES, FLOW_SCHEMA};
pub use flow::FlowRecord;
pub use meter::{BiFlow, Meter, MeterConfig, MeterStats};
pub use scoring::{Scaler, Severity, Verdict};
pub use series::{SeriesParams, SeriesRow, SeriesWindow, SERIES_FEATURES, SERIES_SCHEMA};
