//! The outflow state machine of one connection, without I/O: requests handed to rumqttc and
//! the packet ids it gives them, outbox seqs waiting for a PUBACK, acknowledged entries held
//! until the connection has outlived the ack hold, where the outbox is sent from, and whether
//! the retained dropped-alerts report is due. Time comes in as arguments (tests use a fake
//! clock); [`super::session`] feeds it rumqttc's events.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Entries in flight at most.
pub const WINDOW: usize = 32;

/// What a queued request was, so `Outgoing::Publish` can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Entry(u64),
    Other,
}

/// In-flight bookkeeping of one connection; no I/O.
#[derive(Debug, Default)]
pub struct Outflow {
    /// Requests handed to rumqttc, not yet given a packet id, oldest first.
    queued: VecDeque<Queued>,
    /// Packet id -> outbox seq, for entries waiting for PUBACK.
    in_flight: HashMap<u16, u64>,
    /// Entries acknowledged on this connection and still held in the outbox, oldest
    /// acknowledgement first.
    held: VecDeque<(u64, Instant)>,
    /// Next outbox seq to send.
    cursor: u64,
    connected: bool,
    /// The dropped-alerts total last handed to rumqttc on this connection.
    overflow_sent: Option<u64>,
}

impl Outflow {
    /// A new connection: nothing queued or in flight (the old client is gone), the outbox is
    /// sent again from its start.
    pub fn on_connack(&mut self) {
        self.queued.clear();
        self.in_flight.clear();
        self.held.clear();
        self.cursor = 0;
        self.connected = true;
        self.overflow_sent = None;
    }

    /// The connection broke: what it had acknowledged but still holds stays in the outbox and
    /// is sent again on the next connection.
    pub fn on_disconnect(&mut self) {
        self.connected = false;
        self.queued.clear();
        self.in_flight.clear();
        self.held.clear();
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    /// How many more entries may be sent now.
    pub fn room(&self) -> usize {
        if !self.connected {
            return 0;
        }
        let busy = self.in_flight.len()
            + self
                .queued
                .iter()
                .filter(|q| matches!(q, Queued::Entry(_)))
                .count();
        WINDOW.saturating_sub(busy)
    }

    /// Requests of any kind waiting in rumqttc's channel or for a PUBACK.
    pub fn pending(&self) -> usize {
        self.queued.len() + self.in_flight.len()
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn sent(&mut self, q: Queued) {
        if let Queued::Entry(seq) = q {
            self.cursor = self.cursor.max(seq + 1);
        }
        self.queued.push_back(q);
    }

    pub fn on_outgoing_publish(&mut self, pkid: u16) {
        if let Some(Queued::Entry(seq)) = self.queued.pop_front() {
            if pkid != 0 {
                self.in_flight.insert(pkid, seq);
            }
        }
    }

    /// The outbox seq acknowledged by this PUBACK, if it was one of ours; it is held from
    /// `now`.
    pub fn on_puback(&mut self, pkid: u16, now: Instant) -> Option<u64> {
        let seq = self.in_flight.remove(&pkid)?;
        self.held.push_back((seq, now));
        Some(seq)
    }

    /// Entries acknowledged at least `hold` before `now` on this (unbroken) connection: they
    /// may leave the outbox.
    pub fn release(&mut self, now: Instant, hold: Duration) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(&(seq, at)) = self.held.front() {
            if now.saturating_duration_since(at) < hold {
                break;
            }
            out.push(seq);
            self.held.pop_front();
        }
        out
    }

    /// Everything held, for a clean shutdown.
    pub fn release_all(&mut self) -> Vec<u64> {
        self.held.drain(..).map(|(seq, _)| seq).collect()
    }

    /// When the oldest held entry may leave the outbox.
    pub fn next_release(&self, hold: Duration) -> Option<Instant> {
        self.held.front().map(|&(_, at)| at + hold)
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// On a clean stop: connected, all that is left in the outbox (`outbox_len` entries) is
    /// held (acknowledged), and nothing waits in rumqttc's channel or for a PUBACK.
    pub fn drained(&self, outbox_len: usize) -> bool {
        self.connected && outbox_len <= self.held.len() && self.pending() == 0
    }

    /// Whether the retained report of alerts dropped from the full outbox should go out: some
    /// were dropped, and this connection has not been handed this total yet.
    pub fn overflow_due(&self, dropped_total: u64) -> bool {
        dropped_total > 0 && self.overflow_sent != Some(dropped_total)
    }

    /// The report with `dropped_total` was handed to rumqttc.
    pub fn overflow_sent(&mut self, dropped_total: u64) {
        self.sent(Queued::Other);
        self.overflow_sent = Some(dropped_total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_map_to_entries_and_reconnect_resends_from_start() {
        let now = Instant::now();
        let mut f = Outflow::default();
        assert_eq!(f.room(), 0, "nothing is sent while disconnected");
        f.on_connack();
        f.sent(Queued::Other); // status
        f.sent(Queued::Entry(10));
        f.sent(Queued::Entry(11));
        assert_eq!(f.cursor(), 12);
        f.on_outgoing_publish(1);
        f.on_outgoing_publish(2);
        f.on_outgoing_publish(3);
        assert_eq!(
            f.on_puback(1, now),
            None,
            "the status publish is not an outbox entry"
        );
        assert_eq!(f.on_puback(3, now), Some(11));
        assert_eq!(f.room(), WINDOW - 1);
        f.on_disconnect();
        assert_eq!(f.room(), 0);
        assert_eq!(f.pending(), 0, "a lost connection forgets its requests");
        f.on_connack();
        assert_eq!(f.cursor(), 0, "resend from the start of the outbox");
        assert_eq!(
            f.on_puback(2, now),
            None,
            "acks from the old session are not trusted"
        );
    }

    #[test]
    fn acknowledged_entries_are_held_until_the_connection_outlives_the_hold() {
        let hold = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut f = Outflow::default();
        f.on_connack();
        for seq in 1..=3 {
            f.sent(Queued::Entry(seq));
            f.on_outgoing_publish(u16::try_from(seq).expect("small"));
        }
        assert_eq!(f.on_puback(1, t0), Some(1));
        assert_eq!(f.on_puback(2, t0 + Duration::from_secs(2)), Some(2));
        assert_eq!(f.held(), 2);
        assert_eq!(f.next_release(hold), Some(t0 + hold));
        assert!(f.release(t0 + Duration::from_secs(4), hold).is_empty());
        assert_eq!(f.release(t0 + hold, hold), vec![1]);
        assert_eq!(f.held(), 1);
        // The connection breaks before entry 2's hold is over: it stays in the outbox (to be
        // sent again from the start), and nothing is released on the next connection for it.
        f.on_disconnect();
        assert_eq!(f.held(), 0);
        assert!(f.release(t0 + Duration::from_secs(60), hold).is_empty());
        f.on_connack();
        assert_eq!(
            f.cursor(),
            0,
            "held and unacknowledged entries go out again"
        );
        assert_eq!(f.on_puback(3, t0), None, "acks of the old connection");

        // A clean stop releases whatever is held; a zero hold releases at once.
        f.sent(Queued::Entry(7));
        f.on_outgoing_publish(9);
        assert_eq!(f.on_puback(9, t0), Some(7));
        assert_eq!(f.release(t0, Duration::ZERO), vec![7]);
        f.sent(Queued::Entry(8));
        f.on_outgoing_publish(10);
        f.on_puback(10, t0);
        assert_eq!(f.release_all(), vec![8]);
        assert_eq!(f.next_release(hold), None);
    }

    #[test]
    fn a_clean_stop_waits_until_the_outbox_is_all_held() {
        let t0 = Instant::now();
        let mut f = Outflow::default();
        assert!(!f.drained(0), "not connected");
        f.on_connack();
        assert!(f.drained(0));
        f.sent(Queued::Entry(1));
        f.on_outgoing_publish(1);
        assert!(!f.drained(1), "waiting for the PUBACK");
        f.on_puback(1, t0);
        assert!(f.drained(1), "acknowledged and held");
        assert!(!f.drained(2), "another entry not sent yet");
        f.sent(Queued::Other);
        assert!(!f.drained(1), "a status publish still in rumqttc's channel");
    }

    #[test]
    fn the_overflow_report_goes_out_once_per_total_and_connection() {
        let mut f = Outflow::default();
        f.on_connack();
        assert!(!f.overflow_due(0), "nothing dropped");
        assert!(f.overflow_due(3));
        f.overflow_sent(3);
        assert_eq!(f.pending(), 1, "the report is a request like any other");
        assert!(!f.overflow_due(3));
        assert!(f.overflow_due(4), "a new total");
        f.on_disconnect();
        f.on_connack();
        assert!(f.overflow_due(3), "a new connection sends it again");
    }
}
