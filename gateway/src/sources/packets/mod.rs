//! Packet capture: raw frames metered into flows by the firmware's packet meter
//! ([`netwarden_firmware::meter`]), then handed to the pipeline as the same `FlowRecord`s that
//! NetFlow yields.
//!
//! - [`interface`]: an interface read with pnet (an `AF_PACKET` socket); needs root or
//!   `CAP_NET_RAW`, and says so when it has neither.
//! - [`pcap`]: a classic pcap file replayed with its own timestamps (`netwarden run --pcap`,
//!   `netwarden features --pcap`).
//!
//! Each source owns one [`GatewayMeter`] on its own thread. The meter's table is inline (about
//! 200 bytes a flow, 3.3 MB for [`METER_FLOWS`]), so those threads get a stack sized for it
//! ([`meter_stack_bytes`]) and the meter never moves to the heap or another thread. A flow that
//! ends (idle or active timeout, eviction from a full table, shutdown) becomes
//! `BiFlow::records()`: the unidirectional records an exporter would send for it, queued in
//! batches. Queueing blocks rather than drops: a flow already metered is never lost, and a
//! pipeline that falls behind makes the kernel drop frames instead.

pub mod arp;
pub mod config;
pub mod interface;
pub mod pcap;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use netwarden_firmware::meter::{BiFlow, Meter, MeterConfig, MeterStats};
use netwarden_firmware::FlowRecord;

use crate::metrics::Metrics;

/// Flows the gateway's meter tracks at once (softflowd's default is 8,192). A full table evicts
/// the least recently seen of a few candidates (counted in `capture_flows_evicted`).
pub const METER_FLOWS: usize = 16_384;

/// The packet meter every capture source of the gateway uses.
pub type GatewayMeter = Meter<METER_FLOWS>;

/// Stack for a thread that builds and owns a [`GatewayMeter`]: room for the meter, a
/// temporary copy of it (unoptimised builds construct it in a temporary first), and the usual
/// 2 MiB of everything else.
pub fn meter_stack_bytes() -> usize {
    4 * std::mem::size_of::<GatewayMeter>() + (8 << 20)
}

/// Records queued to the pipeline per batch at most.
pub const RECORDS_PER_BATCH: usize = 512;

/// Timeouts of the capture sources' meter (`[capture]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTimeouts {
    pub idle_ms: u64,
    pub active_ms: u64,
}

impl Default for CaptureTimeouts {
    fn default() -> Self {
        CaptureTimeouts {
            idle_ms: MeterConfig::DEFAULT.idle_timeout_ms,
            active_ms: MeterConfig::DEFAULT.active_timeout_ms,
        }
    }
}

impl CaptureTimeouts {
    pub fn meter_config(self) -> MeterConfig {
        MeterConfig {
            idle_timeout_ms: self.idle_ms,
            active_timeout_ms: self.active_ms,
            ..MeterConfig::DEFAULT
        }
    }
}

/// Collects the records of ended flows.
#[derive(Debug, Default)]
pub struct RecordBatch {
    pub records: Vec<FlowRecord>,
}

impl RecordBatch {
    pub fn with_capacity(n: usize) -> Self {
        RecordBatch {
            records: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, flow: &BiFlow) {
        // Off by default; `NETWARDEN_LOG=info,netwarden::flows=debug` lists every metered flow
        // (the end-to-end test compares them with softflowd's).
        tracing::debug!(target: "netwarden::flows", src = %flow.src_addr, sport = flow.src_port,
            dst = %flow.dst_addr, dport = flow.dst_port, proto = flow.protocol,
            s2d_packets = flow.src2dst.packets, s2d_bytes = flow.src2dst.bytes,
            d2s_packets = flow.dst2src.packets, d2s_bytes = flow.dst2src.bytes,
            end = ?flow.end, "Flow metered");
        let (fwd, rev) = flow.records();
        self.records.push(fwd);
        if let Some(rev) = rev {
            self.records.push(rev);
        }
    }

    pub fn is_full(&self) -> bool {
        self.records.len() >= RECORDS_PER_BATCH
    }
}

/// Publishes a meter's counters into the process-wide [`Metrics`] (as deltas, so several
/// capture sources add up).
#[derive(Debug, Default)]
pub struct StatsPublisher {
    last: MeterStats,
}

impl StatsPublisher {
    pub fn publish(&mut self, now: MeterStats, m: &Arc<Metrics>) {
        let add = |c: &AtomicU64, new: u64, old: u64| m.add(c, new.saturating_sub(old));
        let l = self.last;
        add(&m.capture_frames, now.frames, l.frames);
        add(&m.capture_packets, now.packets, l.packets);
        add(&m.capture_bytes, now.bytes, l.bytes);
        add(&m.capture_not_ip, now.not_ip, l.not_ip);
        add(&m.capture_truncated, now.truncated, l.truncated);
        add(&m.capture_malformed, now.malformed, l.malformed);
        add(&m.capture_flows_created, now.flows_created, l.flows_created);
        add(
            &m.capture_flows_expired_idle,
            now.expired_idle,
            l.expired_idle,
        );
        add(
            &m.capture_flows_expired_active,
            now.expired_active,
            l.expired_active,
        );
        add(&m.capture_flows_evicted, now.evicted, l.evicted);
        add(&m.capture_flows_flushed, now.flushed, l.flushed);
        self.last = now;
    }
}

/// The capture sources' end of the pipeline queue.
#[derive(Debug)]
pub struct RecordQueue {
    queue: std::sync::mpsc::SyncSender<crate::records::FlowInput>,
    origin: crate::records::FlowOrigin,
    metrics: Arc<Metrics>,
    connected: bool,
}

impl RecordQueue {
    pub fn new(
        queue: std::sync::mpsc::SyncSender<crate::records::FlowInput>,
        origin: crate::records::FlowOrigin,
        metrics: Arc<Metrics>,
    ) -> Self {
        RecordQueue {
            queue,
            origin,
            metrics,
            connected: true,
        }
    }

    /// Queues the batch's records (blocking while the queue is full: the pipeline catching up
    /// is better than losing flows already metered). False once the pipeline is gone.
    pub fn send(&mut self, batch: &mut RecordBatch) -> bool {
        if self.connected && !batch.records.is_empty() {
            let records = std::mem::take(&mut batch.records);
            self.metrics
                .add(&self.metrics.capture_records, records.len() as u64);
            self.connected = self
                .queue
                .send(crate::records::FlowInput::Records {
                    origin: self.origin.clone(),
                    records,
                })
                .is_ok();
        }
        self.connected
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }
}
