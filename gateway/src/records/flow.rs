//! What the flow sources hand the flow pipeline: NetFlow datagrams (decoded on the flow thread)
//! or flow records the packet meter emitted, and where each came from.

use std::net::SocketAddr;
use std::sync::Arc;

use netwarden_firmware::meter::arp::ArpEvent;
use netwarden_firmware::FlowRecord;

/// Where a flow record came from; alerts name it (`subject.exporter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOrigin {
    /// A NetFlow/IPFIX exporter (address and port).
    Exporter(SocketAddr),
    /// The packet meter: `capture:IFACE` for a live interface, `pcap:FILE` for a replay.
    Meter(Arc<str>),
}

impl std::fmt::Display for FlowOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowOrigin::Exporter(a) => a.fmt(f),
            FlowOrigin::Meter(name) => f.write_str(name),
        }
    }
}

/// A datagram as received, queued for the pipeline.
#[derive(Debug)]
pub struct Datagram {
    pub from: SocketAddr,
    pub payload: Vec<u8>,
}

/// What the flow sources queue for the pipeline thread.
#[derive(Debug)]
pub enum FlowInput {
    /// A NetFlow/IPFIX datagram, decoded on the pipeline thread.
    Datagram(Datagram),
    /// Records the packet meter emitted (in batches: one queue slot for many flows).
    Records {
        origin: FlowOrigin,
        records: Vec<FlowRecord>,
    },
    /// Records a NetFlow shard decoded (`runtime/shard.rs`), each with its exporter, in the
    /// order they arrived on that shard's socket.
    Exported(Vec<(SocketAddr, FlowRecord)>),
    /// Notable ARP packets the capture's ARP meter accounted (docs/arp.md), for the ARP rules.
    Arp {
        origin: FlowOrigin,
        events: Vec<ArpEvent>,
    },
}
