//! A NetFlow shard's thread: it receives datagrams in batches from its own socket
//! (`sources/netflow/receive`), decodes each where it lies in the receive buffer with its own
//! decoder (template caches and sequence state per exporter; the kernel's `SO_REUSEPORT` hash
//! keeps an exporter on one shard), and hands the records, in arrival order, to the one flow
//! thread through the flow queue, in chunks of at most [`CHUNK`] records.
//!
//! Everything after decoding is site-wide state on the flow thread (host windows, scoring, the
//! fleet trial and swap, the learning period, the reservoir, incidents, the graph detector):
//! one copy, so a model swap, a fitted threshold or an incident is the same for every
//! exporter whatever shard it hashes to (docs/ARCHITECTURE.md, "Flow shards").
//!
//! Back-pressure: when the flow thread is behind (the queue full, or [`MAX_IN_FLIGHT`]
//! records waiting in it) the shard waits, so its socket buffer fills and the kernel drops
//! (counted, `netflow_datagrams_dropped_kernel`); nothing decoded is dropped.
//! Shutdown: a shard stops reading its socket when the signal comes, sends what it holds and
//! drops its queue sender; the flow thread ends when every sender is gone.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden_firmware::FlowRecord;

use super::flow::{ProblemLog, ShardSlots};
use crate::metrics::Metrics;
use crate::records::FlowInput;
use crate::shutdown::Shutdown;
use crate::sources::netflow::receive::{self, Receiver as BatchReceiver};
use crate::sources::netflow::{ExporterDomain, NetflowDecoder};

/// Records per queue item at most: big enough that the hand-off costs nothing per record,
/// small enough that the queue's bound (items) also bounds its memory.
pub(super) const CHUNK: usize = 256;

/// Records all shards may have in the flow queue at once (about 3 MB): the queue's bound
/// counts items of any size, this bounds the shards' share of its memory.
pub(super) const MAX_IN_FLIGHT: usize = 32_768;

/// One shard: its socket, decoder and where it reports.
pub(super) struct Shard {
    pub index: usize,
    pub socket: UdpSocket,
    pub decoder: NetflowDecoder,
    pub queue: SyncSender<FlowInput>,
    pub metrics: Arc<Metrics>,
    pub exporters: ShardSlots,
    pub datagrams: Arc<Vec<std::sync::atomic::AtomicU64>>,
    /// Records handed over and not yet taken by the flow thread (it subtracts).
    pub in_flight: Arc<AtomicUsize>,
    pub shutdown: Shutdown,
}

/// Runs until shutdown, then hands over what it decoded and publishes its counters.
pub(super) fn shard_thread(mut s: Shard) {
    let mut batch = BatchReceiver::default();
    let mut decoded: Vec<(ExporterDomain, FlowRecord)> = Vec::with_capacity(CHUNK);
    let mut out: Vec<(SocketAddr, FlowRecord)> = Vec::with_capacity(CHUNK);
    let mut problems = ProblemLog::default();
    let mut last_stats = Instant::now();
    loop {
        let mut received = 0;
        match batch.recv(&s.socket) {
            Ok(n) => {
                received = n;
                let m = &s.metrics;
                m.add(&m.netflow_datagrams_received, n as u64);
                if let Some(c) = s.datagrams.get(s.index) {
                    m.add(c, n as u64);
                }
                for (from, payload) in batch.datagrams() {
                    decoded.clear();
                    s.decoder.decode(from, payload, &mut decoded);
                    out.extend(decoded.drain(..).map(|(src, flow)| (src.exporter, flow)));
                    if out.len() >= CHUNK && !hand_over(&s, &mut out) {
                        return;
                    }
                }
                if !hand_over(&s, &mut out) {
                    return;
                }
                m.add(&m.netflow_datagrams_processed, n as u64);
            }
            Err(e) if receive::is_timeout(&e) => {}
            Err(e) => {
                s.metrics.add(&s.metrics.netflow_receive_errors, 1);
                tracing::debug!(error = %e, "Receive error on NetFlow socket");
            }
        }
        let tick = last_stats.elapsed() >= Duration::from_secs(1);
        if tick {
            publish(&s);
            problems.check(&s.decoder);
            last_stats = Instant::now();
        }
        // Looked at when idle, and once a second under load.
        if (received == 0 || tick) && s.shutdown.check() {
            break;
        }
    }
    let _ = hand_over(&s, &mut out);
    publish(&s);
}

/// Sends what `out` holds (blocking while the queue is full); false once the flow thread is
/// gone.
fn hand_over(s: &Shard, out: &mut Vec<(SocketAddr, FlowRecord)>) -> bool {
    if out.is_empty() {
        return true;
    }
    // The flow thread is behind: wait (the socket buffer absorbs the burst, then the kernel
    // drops, counted).
    while s.in_flight.load(Ordering::Acquire) + out.len() > MAX_IN_FLIGHT {
        std::thread::sleep(Duration::from_micros(200));
    }
    s.in_flight.fetch_add(out.len(), Ordering::AcqRel);
    let chunk = std::mem::replace(out, Vec::with_capacity(CHUNK));
    s.queue.send(FlowInput::Exported(chunk)).is_ok()
}

/// Leaves this shard's exporter counters where the flow thread sums them.
fn publish(s: &Shard) {
    if let Some(Ok(mut slot)) = s.exporters.get(s.index).map(|m| m.lock()) {
        slot.clear();
        slot.extend(s.decoder.stats().map(|(k, v)| (k, v.clone())));
    }
}
