//! The gateway's side of samples over MQTT ([`super::samples`], docs/fleet.md): on the fleet
//! client's connection it takes requests and acks from
//! `<fleet topic>/samples/<site>/<device>/{request,ack}`, snapshots the stored reservoir as
//! CSV (what `netwarden samples export` writes) and publishes it in chunks on
//! `<prefix>/samples/<id>`, a window at a time, sending again what is not acknowledged.
//! Refused messages are counted (`samples_messages_refused`) and logged; one transfer at a time.

use std::sync::Arc;

use rumqttc::{AsyncClient, QoS};

use super::samples::{
    chunk_topic, control_base, parse_control_topic, Ack, Control, Request, SampleChunk, Sender,
    SenderStats,
};
use crate::metrics::Metrics;
use crate::sinks::store::Store;

/// The gateway's window is at most this (below the fleet client's channel of 64).
const MAX_GATEWAY_WINDOW: u32 = 16;

#[derive(Debug)]
pub struct SamplesServer {
    base: String,
    prefix: String,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    current: Option<Sender>,
}

impl SamplesServer {
    pub fn new(
        fleet_topic: &str,
        site: &str,
        device: &str,
        prefix: &str,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> SamplesServer {
        SamplesServer {
            base: control_base(fleet_topic, site, device),
            prefix: prefix.to_string(),
            store,
            metrics,
            current: None,
        }
    }

    /// The topic filter to subscribe to.
    pub fn filter(&self) -> String {
        format!("{}/+", self.base)
    }

    /// Whether `topic` is a samples control topic (of this gateway or not).
    pub fn owns(&self, fleet_topic: &str, topic: &str) -> bool {
        topic
            .strip_prefix(fleet_topic)
            .is_some_and(|t| t.starts_with("/samples/"))
    }

    fn refused(&self, topic: &str, why: &str) {
        self.metrics.add(&self.metrics.samples_messages_refused, 1);
        tracing::warn!(topic, reason = why, "Samples message refused");
    }

    pub async fn on_message(&mut self, client: &AsyncClient, topic: &str, payload: &[u8]) {
        let now = crate::now_ms();
        match parse_control_topic(&self.base, topic) {
            Err(e) => self.refused(topic, &e.to_string()),
            Ok(Control::Ack) => match Ack::decode(payload) {
                Err(e) => self.refused(topic, &e.to_string()),
                Ok(a) => {
                    if let Some(s) = self.current.as_mut().filter(|s| s.id() == a.id) {
                        s.on_ack(a.next, now);
                    }
                }
            },
            Ok(Control::Request) => match Request::decode(payload) {
                Err(e) => self.refused(topic, &e.to_string()),
                Ok(mut r) => {
                    self.metrics.add(&self.metrics.samples_requests, 1);
                    r.window = r.window.min(MAX_GATEWAY_WINDOW);
                    match self.current.as_mut().filter(|s| s.id() == r.id) {
                        Some(s) => s.resume(r.from, now),
                        None => {
                            if let Some(old) = self.current.take() {
                                tracing::info!(
                                    id = old.id(),
                                    "Samples transfer replaced by a new request"
                                );
                                self.metrics
                                    .add(&self.metrics.samples_transfers_abandoned, 1);
                            }
                            let store = self.store.clone();
                            // Checked in `Request::decode`.
                            let pick = r
                                .schema
                                .as_deref()
                                .and_then(|s| crate::records::samples::SchemaPick::parse(s).ok())
                                .unwrap_or(crate::records::samples::SchemaPick::Active(None));
                            let csv =
                                tokio::task::spawn_blocking(move || store.samples_csv(pick)).await;
                            match csv {
                                Ok(Ok((text, stats))) => {
                                    tracing::info!(
                                        id = %r.id,
                                        rows = stats.rows,
                                        schema = stats.schema.map_or("all", |s| s.schema()),
                                        bytes = text.len(),
                                        "Samples requested over MQTT"
                                    );
                                    self.current = Some(Sender::new(&r, text.into_bytes(), now));
                                }
                                Ok(Err(e)) => {
                                    tracing::error!(error = %e, "Cannot read the stored samples")
                                }
                                Err(e) => tracing::error!(error = %e, "Samples snapshot failed"),
                            }
                        }
                    }
                }
            },
        }
        self.pump(client, now, false);
    }

    /// Sends what the window allows; with `timer`, what waited too long goes again.
    pub fn pump(&mut self, client: &AsyncClient, now_ms: u64, timer: bool) {
        let Some(s) = self.current.as_mut() else {
            return;
        };
        let mut stats = SenderStats::default();
        let mut out = Vec::new();
        if timer {
            let (alive, again) = s.tick(now_ms, &mut stats);
            if !alive {
                tracing::warn!(
                    id = s.id(),
                    "Samples transfer abandoned: no acknowledgement"
                );
                self.metrics
                    .add(&self.metrics.samples_transfers_abandoned, 1);
                self.current = None;
                return;
            }
            out = again;
        }
        out.extend(s.poll(&mut stats));
        let topic = chunk_topic(&self.prefix, s.id());
        for c in out {
            publish(client, &topic, &c);
        }
        self.metrics
            .add(&self.metrics.samples_chunks_sent, stats.sent);
        self.metrics
            .add(&self.metrics.samples_chunks_resent, stats.resent);
        if s.done() {
            tracing::info!(
                id = s.id(),
                chunks = s.count(),
                "Samples transfer acknowledged"
            );
            self.metrics.add(&self.metrics.samples_transfers_done, 1);
            self.current = None;
        }
    }
}

fn publish(client: &AsyncClient, topic: &str, c: &SampleChunk) {
    // A chunk that does not fit in the client's queue now is sent again by the timer.
    if client
        .try_publish(topic, QoS::AtLeastOnce, false, c.encode())
        .is_err()
    {
        tracing::debug!(
            index = c.index,
            "Samples chunk not queued; the resend timer covers it"
        );
    }
}
