//! A flow shard's thread: it receives NetFlow datagrams in batches from its own socket
//! (`sources/netflow/receive`), decodes each where it lies in the receive buffer, hands the
//! records to its own pipeline (template caches and host windows are per shard), and stores
//! the alerts raised, once per batch. Shard 0 also takes the packet meter's records from the
//! queue the capture and pcap threads fill, and writes stats.json for all shards.
//!
//! Shutdown: a shard stops reading its socket when the signal comes; shard 0 then drains the
//! meter queue until its senders are gone (the capture flushes its open flows first).

use std::net::UdpSocket;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::flow::{FlowSinks, FlowStage, ProblemLog};
use crate::records::{Alert, FlowInput};
use crate::shutdown::Shutdown;
use crate::sources::netflow::receive::{self, Receiver as BatchReceiver};

/// What a shard reads.
pub(super) struct ShardInput {
    pub socket: Option<UdpSocket>,
    /// The packet meter's records (shard 0 only).
    pub queue: Option<Receiver<FlowInput>>,
    pub shutdown: Shutdown,
}

/// Upper bound on meter batches taken between two flushes.
const MAX_DRAIN: usize = 2048;

/// Alerts stored per group commit at most: enough to make an alert storm cheap, few enough that
/// one sled transaction stays small (a storm of 4,000 hosts in one transaction raised peak RSS
/// by about 20 MB).
const GROUP_COMMIT_MAX: usize = 256;

/// Runs until shutdown (with a socket) or until the queue's senders are gone (without), then
/// scores what was left and writes the final stats.
pub(super) fn shard_thread(mut stage: FlowStage, mut input: ShardInput, ctx: FlowSinks) {
    let mut last_stats = Instant::now();
    let mut problems = ProblemLog::default();
    let mut batch = input.socket.as_ref().map(|_| BatchReceiver::default());
    // Alerts raised while a batch is ingested are stored together (one group commit) before
    // the next batch is read; none is published before it is stored.
    let mut raised: Vec<Alert> = Vec::new();
    loop {
        let mut datagrams = 0u64;
        let mut ingested = false;
        if let (Some(socket), Some(batch)) = (&input.socket, batch.as_mut()) {
            match batch.recv(socket) {
                Ok(n) => {
                    ctx.metrics
                        .add(&ctx.metrics.netflow_datagrams_received, n as u64);
                    if let Some(c) = ctx.shard_datagrams.get(ctx.shard) {
                        ctx.metrics.add(c, n as u64);
                    }
                    for (from, payload) in batch.datagrams() {
                        stage.ingest_datagram(from, payload, &mut |a| raised.push(a));
                        if raised.len() >= GROUP_COMMIT_MAX {
                            ctx.alerts.on_alerts(&raised);
                            raised.clear();
                        }
                    }
                    datagrams = n as u64;
                    ingested = n > 0;
                }
                Err(e) if receive::is_timeout(&e) => {}
                Err(e) => {
                    ctx.metrics.add(&ctx.metrics.netflow_receive_errors, 1);
                    tracing::debug!(error = %e, "Receive error on NetFlow socket");
                }
            }
        }
        let mut closed = false;
        if let Some(rx) = &input.queue {
            let mut first = if input.socket.is_none() {
                // Nothing else to wait on: block on the queue.
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(i) => Some(i),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        closed = true;
                        None
                    }
                }
            } else {
                None
            };
            let mut n = 0;
            while n < MAX_DRAIN {
                let item = match first.take() {
                    Some(i) => i,
                    None => match rx.try_recv() {
                        Ok(i) => i,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    },
                };
                stage.ingest(item, &mut |a| raised.push(a));
                ingested = true;
                n += 1;
                if raised.len() >= GROUP_COMMIT_MAX {
                    ctx.alerts.on_alerts(&raised);
                    raised.clear();
                }
            }
        }
        if closed {
            input.queue = None;
        }
        if ingested {
            stage.flush(&mut |a| raised.push(a));
            ctx.metrics
                .add(&ctx.metrics.netflow_datagrams_processed, datagrams);
            ctx.alerts.on_alerts(&raised);
            raised.clear();
        }
        if let Some((flows, scores)) = stage
            .pipeline
            .take_summary(ctx.summary_interval_ms, ctx.top_hosts)
        {
            ctx.store_summary(&flows, &scores);
        }
        let tick = last_stats.elapsed() >= Duration::from_secs(1);
        if tick {
            ctx.publish(&mut stage);
            problems.check(&stage.decoder);
            problems.check_drops(&ctx.metrics);
            last_stats = Instant::now();
        }
        // Looked at when idle, and once a second under load.
        if input.socket.is_some() && (datagrams == 0 || tick) && input.shutdown.check() {
            input.socket = None;
            batch = None;
        }
        if input.socket.is_none() && input.queue.is_none() {
            break;
        }
    }
    stage.flush(&mut |a| raised.push(a));
    ctx.alerts.on_alerts(&raised);
    if let Some((flows, scores)) = stage.pipeline.take_summary(0, ctx.top_hosts) {
        ctx.store_summary(&flows, &scores);
    }
    ctx.publish(&mut stage);
}
