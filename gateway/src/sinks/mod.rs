//! Sinks: where results go. [`store`] (sled outbox and history, [`history`] for its time
//! buckets and retention) first, always; then [`mqtt`], which publishes from the outbox.

pub mod alert_sink;
pub mod history;
pub mod http;
pub mod mqtt;
pub mod store;
