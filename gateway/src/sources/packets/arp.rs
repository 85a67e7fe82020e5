//! ARP on the capture path: the frames the flow meter refuses as not IP go through the
//! firmware's ARP meter ([`netwarden_firmware::meter::arp`]), and its notable events (new or
//! changed bindings, unsolicited or gratuitous replies, forged link sources) are queued for
//! the ARP rules in batches. Ordinary request/reply pairs confirming known bindings stay here
//! as counters.

use std::sync::Arc;

use netwarden_firmware::meter::arp::{ArpEvent, ArpMeter, ArpStats};
use netwarden_firmware::wire::LinkType;

use super::RecordQueue;
use crate::metrics::Metrics;
use crate::records::FlowInput;

/// Slots of each capture's binding table (it holds up to 3/4: `arp.bindings` is capped there).
pub const ARP_SLOTS: usize = 4096;

/// The ARP meter every capture source of the gateway uses (about 170 KB, inline).
pub type GatewayArpMeter = ArpMeter<ARP_SLOTS>;

/// Events queued per batch at most.
pub const ARP_EVENTS_PER_BATCH: usize = 64;

/// A capture's notable ARP events waiting to be queued, and its counters' last published state.
#[derive(Debug, Default)]
pub struct ArpTap {
    events: Vec<ArpEvent>,
    last: ArpStats,
}

impl ArpTap {
    /// Accounts a frame the flow meter refused as not IP (anything but ARP is ignored).
    pub fn observe(&mut self, arp: &mut GatewayArpMeter, link: LinkType, ts_ms: u64, frame: &[u8]) {
        if let Ok(e) = arp.observe(link, ts_ms, frame) {
            if e.notable() {
                self.events.push(e);
            }
        }
    }

    pub fn is_full(&self) -> bool {
        self.events.len() >= ARP_EVENTS_PER_BATCH
    }

    /// The events so far (the tap starts a new batch).
    pub fn take(&mut self) -> Vec<ArpEvent> {
        std::mem::take(&mut self.events)
    }

    /// Publishes the meter's counters into [`Metrics`] as deltas.
    pub fn publish(&mut self, now: ArpStats, m: &Arc<Metrics>) {
        let l = self.last;
        let add = |c: &std::sync::atomic::AtomicU64, new: u64, old: u64| {
            m.add(c, new.saturating_sub(old))
        };
        add(&m.capture_arp_packets, now.packets, l.packets);
        add(&m.capture_arp_requests, now.requests, l.requests);
        add(&m.capture_arp_replies, now.replies, l.replies);
        add(&m.capture_arp_gratuitous, now.gratuitous, l.gratuitous);
        add(&m.capture_arp_probes, now.probes, l.probes);
        add(
            &m.capture_arp_unsolicited_replies,
            now.unsolicited_replies,
            l.unsolicited_replies,
        );
        add(
            &m.capture_arp_link_mismatch,
            now.link_mismatch,
            l.link_mismatch,
        );
        add(
            &m.capture_arp_bindings_new,
            now.bindings_new,
            l.bindings_new,
        );
        add(
            &m.capture_arp_bindings_changed,
            now.bindings_changed,
            l.bindings_changed,
        );
        add(
            &m.capture_arp_bindings_evicted,
            now.bindings_evicted,
            l.bindings_evicted,
        );
        add(
            &m.capture_arp_refused,
            now.truncated + now.unsupported,
            l.truncated + l.unsupported,
        );
        self.last = now;
    }
}

impl RecordQueue {
    /// Queues the tap's events for the ARP rules (blocking while the queue is full, like
    /// records). False once the pipeline is gone.
    pub fn send_arp(&mut self, tap: &mut ArpTap) -> bool {
        if self.connected && !tap.events.is_empty() {
            let events = tap.take();
            self.metrics
                .add(&self.metrics.capture_arp_events, events.len() as u64);
            self.connected = self
                .queue
                .send(FlowInput::Arp {
                    origin: self.origin.clone(),
                    events,
                })
                .is_ok();
        }
        self.connected
    }
}
