//! Sinks: where results go. [`store`] (sled history and outbox) first, always; then
//! [`mqtt`], which publishes from the outbox.

pub mod mqtt;
pub mod store;
