//! Sinks: where results go. [`alert_sink`] stores every alert with [`store`] (sled outbox and
//! history, [`history`] for its time buckets and retention) first, always, then wakes [`mqtt`],
//! which publishes from the outbox; [`http`] serves the store and the boards.

pub mod alert_sink;
pub mod history;
pub mod http;
pub mod mqtt;
pub mod store;
