//! NetFlow v5, v9 and IPFIX collection.
//!
//! - [`receive`]: the UDP sockets (one per shard, `SO_REUSEPORT`) and batched `recvmmsg` into
//!   reused buffers; the receiving thread decodes what it received.
//! - [`listener`]: binding errors and the kernel's drop counter of a socket.
//! - [`decode`]: netflow_parser with template caches per exporter and observation domain
//!   (`AutoScopedParser`) and pending-flow buffering, per-exporter accounting.
//! - [`plan`]: the hot path: learnt templates as field-offset plans that decode data sets
//!   straight from the bytes (netflow_parser keeps templates, options and everything rare).
//! - [`normalise`]: one record's fields into a `FlowRecord` (element ids, uptime or absolute
//!   times).
//! - [`templates`]: the template book netflow_parser writes templates through to, keyed
//!   without the source port, saved to sled by the runtime (templates survive a restart).
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
pub mod receive;
pub mod sequence;
pub mod templates;

pub use decode::{DecodeSummary, ExporterDomain, NetflowDecoder};
