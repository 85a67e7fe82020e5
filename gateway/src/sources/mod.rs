//! Sources: where the gateway's input comes from. Each turns its input into records for the
//! pipeline plus counters of everything it could not use.
//!
//! - [`eve`]: Suricata EVE JSON (files or unix socket) -> events for `pipeline/eve`;
//! - [`netflow`]: NetFlow v5/v9/IPFIX datagrams -> [`netwarden_firmware::FlowRecord`]s;
//! - [`snmp`]: IF-MIB polling -> per-interface rate samples for the series pipeline;
//! - [`packets`]: raw packets (a live interface with pnet, or a pcap file) metered into flows
//!   by the firmware's packet meter -> the same `FlowRecord`s NetFlow yields.

pub mod eve;
pub mod netflow;
pub mod packets;
pub mod snmp;
