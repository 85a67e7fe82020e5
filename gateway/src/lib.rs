//! netwarden gateway: collects flows, scores them on the box, stores and publishes alerts.
//!
//! The folders follow the data:
//! - [`sources`]: NetFlow v5/v9/IPFIX (UDP listener, decoder, sequence accounting, captures);
//! - [`pipeline`]: features (from the firmware core), the tract detector, alerting;
//! - [`sinks`]: sled (history + durable outbox), MQTT (publishes from the outbox);
//! - [`models`]: model bundles and their checks;
//! - [`config`], [`metrics`], [`shutdown`], and [`daemon`], which wires them for `netwarden run`.
//!
//! Invariants: bad input from the network is counted per exporter and never panics; an alert is
//! on disk before it is published and leaves the outbox only on PUBACK; nothing on the hot path
//! formats text or allocates per record beyond what the NetFlow parser itself does.

pub mod cli;
pub mod config;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod records;
pub mod runtime;
pub mod shutdown;
pub mod sinks;
pub mod sources;

/// Wall-clock Unix time in ms (the only place the daemon reads it; logic takes clocks as input).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
