//! MQTT publishing from the durable outbox.
//!
//! rumqttc keeps unacknowledged publishes in memory and drops them when the broker answers
//! `session_present = false`; its `publish()` blocks when its channel is full. So we do not
//! trust it with delivery: alerts live in the sled outbox ([`super::store`]) until their PUBACK.
//!
//! [`Outflow`] is the I/O-free bookkeeping: which outbox entries are in flight under which
//! packet id. The loop in [`run`] drives rumqttc's event loop and feeds it events:
//! - `ConnAck`: everything in flight is forgotten (rumqttc dropped it), the retained `online`
//!   status is published again, and the outbox is sent again from its start, in order.
//! - `Outgoing::Publish(pkid)`: rumqttc assigned `pkid` to the oldest request we queued.
//! - `PubAck(pkid)`: that entry leaves the outbox.
//!
//! At most [`WINDOW`] entries are in flight, below rumqttc's channel and inflight limits, so
//! `try_publish` never finds the channel full.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::raw::RawMqtt;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::sinks::store::Store;

/// Entries in flight at most.
pub const WINDOW: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// `netwarden/<site>/<device>` (no trailing slash).
    pub prefix: String,
    pub keep_alive: Duration,
}

impl MqttConfig {
    pub fn from_raw(
        raw: &RawMqtt,
        url: &str,
        site: &str,
        device: &str,
    ) -> Result<MqttConfig, String> {
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("{url:?} is not a URL ({e}); expected mqtt://host:port"))?;
        match parsed.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(format!(
                    "{url:?}: TLS is not supported yet (issue 6); use mqtt://"
                ))
            }
            other => return Err(format!("{url:?}: scheme {other:?} is not mqtt://")),
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(format!("{url:?} has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let prefix = raw
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("netwarden/{site}/{device}"))
            .trim_end_matches('/')
            .to_string();
        if prefix.contains(['+', '#']) {
            return Err(format!("topic prefix {prefix:?} may not contain wildcards"));
        }
        Ok(MqttConfig {
            host,
            port: parsed.port().unwrap_or(1883),
            client_id: raw
                .client_id
                .clone()
                .unwrap_or_else(|| format!("netwarden-{site}-{device}")),
            prefix,
            keep_alive: Duration::from_secs(raw.keep_alive_secs.unwrap_or(30).max(5)),
        })
    }

    pub fn alert_topic(&self, severity: &str) -> String {
        format!("{}/alerts/{severity}", self.prefix)
    }

    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }

    pub fn heartbeat_topic(&self) -> String {
        format!("{}/heartbeat", self.prefix)
    }
}

/// The retained status payload (`online`, or `offline` as the Last Will).
#[derive(Debug, Serialize)]
struct Status<'a> {
    state: &'a str,
    version: &'a str,
    ts_ms: u64,
}

fn status_payload(state: &str) -> String {
    let s = Status {
        state,
        version: env!("CARGO_PKG_VERSION"),
        ts_ms: crate::now_ms(),
    };
    serde_json::to_string(&s).unwrap_or_default()
}

/// What a queued request was, so `Outgoing::Publish` can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Entry(u64),
    Other,
}

/// In-flight bookkeeping; no I/O.
#[derive(Debug, Default)]
pub struct Outflow {
    /// Requests handed to rumqttc, not yet given a packet id, oldest first.
    queued: VecDeque<Queued>,
    /// Packet id -> outbox seq, for entries waiting for PUBACK.
    in_flight: HashMap<u16, u64>,
    /// Next outbox seq to send.
    cursor: u64,
    connected: bool,
}

impl Outflow {
    pub fn on_connack(&mut self) {
        self.queued.clear();
        self.in_flight.clear();
        self.cursor = 0;
        self.connected = true;
    }

    pub fn on_disconnect(&mut self) {
        self.connected = false;
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

    /// The outbox seq acknowledged by this PUBACK, if it was one of ours.
    pub fn on_puback(&mut self, pkid: u16) -> Option<u64> {
        self.in_flight.remove(&pkid)
    }
}

/// Publishes the outbox until shutdown; then tries for up to two seconds to empty it.
pub async fn run(
    cfg: MqttConfig,
    store: Arc<Store>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    heartbeat: Arc<dyn Fn() -> String + Send + Sync>,
    mut shutdown: Shutdown,
) {
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(cfg.keep_alive);
    opts.set_clean_session(true);
    opts.set_inflight(u16::try_from(WINDOW * 2).unwrap_or(64));
    opts.set_last_will(LastWill::new(
        cfg.status_topic(),
        status_payload("offline"),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, events) = AsyncClient::new(opts, WINDOW * 4);
    // rumqttc's poll() is not documented as cancel-safe: give it a task of its own.
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let poller = tokio::spawn(poll_events(events, tx));
    let mut flow = Outflow::default();
    let mut beat = tokio::time::interval(Duration::from_secs(30));
    let mut deadline: Option<tokio::time::Instant> = None;

    loop {
        fill(&client, &store, &mut flow, &metrics);
        if let Some(d) = deadline {
            if store.outbox_len() == 0 || !flow.connected() || tokio::time::Instant::now() >= d {
                break;
            }
        }
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
        });
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    metrics.mqtt_connects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(host = %cfg.host, port = cfg.port, outbox = store.outbox_len(), "Connected to MQTT broker");
                    flow.on_connack();
                    if client.try_publish(cfg.status_topic(), QoS::AtLeastOnce, true, status_payload("online")).is_ok() {
                        flow.sent(Queued::Other);
                    }
                }
                Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => flow.on_outgoing_publish(pkid),
                Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if let Some(seq) = flow.on_puback(ack.pkid) {
                        metrics.mqtt_acked.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = store.outbox_ack(seq) {
                            tracing::error!(error = %e, "Cannot remove acknowledged alert from outbox");
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if flow.connected() {
                        tracing::warn!(error = %e, outbox = store.outbox_len(), "MQTT connection lost; alerts stay in the outbox");
                    } else {
                        tracing::debug!(error = %e, "MQTT connection attempt failed");
                    }
                    metrics.mqtt_connection_errors.fetch_add(1, Ordering::Relaxed);
                    flow.on_disconnect();
                }
                None => break,
            },
            _ = wake.notified() => {}
            _ = beat.tick() => {
                if flow.connected() && client.try_publish(cfg.heartbeat_topic(), QoS::AtMostOnce, false, heartbeat()).is_ok() {
                    flow.sent(Queued::Other);
                }
            }
            _ = shutdown.recv(), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + Duration::from_secs(2));
            }
            _ = tokio::time::sleep(wait), if deadline.is_some() => {}
        }
    }
    if flow.connected() {
        // A clean disconnect does not fire the Last Will, so say offline ourselves.
        let _ = client.try_publish(
            cfg.status_topic(),
            QoS::AtLeastOnce,
            true,
            status_payload("offline"),
        );
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while let Some(ev) = rx.recv().await {
                if matches!(ev, Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)) {
                    break;
                }
            }
        })
        .await;
    }
    poller.abort();
}

/// Drives rumqttc's event loop, forwarding every event; backs off after errors.
async fn poll_events(
    mut events: rumqttc::EventLoop,
    tx: tokio::sync::mpsc::Sender<Result<Event, rumqttc::ConnectionError>>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let ev = events.poll().await;
        let failed = ev.is_err();
        if matches!(ev, Ok(Event::Incoming(Packet::ConnAck(_)))) {
            backoff = Duration::from_millis(250);
        }
        if tx.send(ev).await.is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

/// Hands rumqttc as many outbox entries as the window allows.
fn fill(client: &AsyncClient, store: &Store, flow: &mut Outflow, metrics: &Metrics) {
    let room = flow.room();
    if room == 0 {
        return;
    }
    let entries = match store.outbox_from(flow.cursor(), room) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "Cannot read the outbox");
            return;
        }
    };
    for (seq, entry) in entries {
        match client.try_publish(entry.topic, QoS::AtLeastOnce, false, entry.payload) {
            Ok(()) => {
                metrics.mqtt_published.fetch_add(1, Ordering::Relaxed);
                flow.sent(Queued::Entry(seq));
            }
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_map_to_entries_and_reconnect_resends_from_start() {
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
            f.on_puback(1),
            None,
            "the status publish is not an outbox entry"
        );
        assert_eq!(f.on_puback(3), Some(11));
        assert_eq!(f.room(), WINDOW - 1);
        f.on_disconnect();
        assert_eq!(f.room(), 0);
        f.on_connack();
        assert_eq!(f.cursor(), 0, "resend from the start of the outbox");
        assert_eq!(
            f.on_puback(2),
            None,
            "acks from the old session are not trusted"
        );
    }

    #[test]
    fn url_parsing_and_topics() {
        let c = MqttConfig::from_raw(&RawMqtt::default(), "mqtt://127.0.0.1:1884", "hq", "r1")
            .expect("valid");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1884));
        assert_eq!(c.alert_topic("high"), "netwarden/hq/r1/alerts/high");
        assert_eq!(c.status_topic(), "netwarden/hq/r1/status");
        assert!(MqttConfig::from_raw(&RawMqtt::default(), "http://x", "a", "b").is_err());
        assert!(MqttConfig::from_raw(&RawMqtt::default(), "mqtt://", "a", "b").is_err());
    }
}
