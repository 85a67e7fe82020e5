//! netwarden gateway: collects flows, scores them on the box, stores and publishes alerts.
//!
//! The folders follow the data, and imports point down only (docs/ARCHITECTURE.md, checked by
//! `tests/layering.rs`):
//! - [`records`]: the data passed between layers (flow input, rate samples, alerts, summary
//!   rows, status boards); imports nothing of the crate;
//! - [`models`]: model bundles, their checks, the tract scorers, configured-or-built-in choice;
//! - [`sources`]: NetFlow v5/v9/IPFIX (listener, decoder, sequence accounting, captures), SNMP
//!   polling, packet capture;
//! - [`pipeline`]: features (from the firmware core), scoring, alerting, for flows and series;
//! - [`sinks`]: sled (history + durable outbox), the alert sink, MQTT, the HTTP API;
//!
//!   sources, pipeline and sinks import only records, models, [`metrics`] and [`shutdown`],
//!   never each other and never [`config`], which assembles each component's `config.rs`;
//! - [`runtime`]: wires sources -> pipelines -> sinks for `netwarden run` and owns start-up and
//!   shutdown order; only `main.rs` and [`cli`] use it.
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
