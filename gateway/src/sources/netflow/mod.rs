//! NetFlow v5, v9 and IPFIX collection.
//!
//! - [`listener`]: the UDP socket; receives datagrams and queues them, nothing else (no parsing,
//!   no formatting: a burst must not be dropped because the receive loop was busy).
//! - [`decode`]: netflow_parser with template caches per exporter and observation domain
//!   (`AutoScopedParser`) and pending-flow buffering, per-exporter accounting.
//! - [`plan`]: the hot path: learnt templates as field-offset plans that decode data sets
//!   straight from the bytes (netflow_parser keeps templates, options and everything rare).
//! - [`normalise`]: one record's fields into a `FlowRecord` (element ids, uptime or absolute
//!   times).
//! - [`sequence`]: sequence-gap accounting per export stream (netflow_parser does none).
//! - [`export_pcap`]: reads pcap files of export datagrams (for `features`, `demo`, tests).

pub mod config;
pub mod decode;
pub mod differential;
pub mod export_pcap;
mod fast;
pub mod listener;
pub mod normalise;
pub mod plan;
pub mod sequence;

pub use decode::{DecodeSummary, ExporterDomain, NetflowDecoder};
