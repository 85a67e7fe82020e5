//! MQTT publishing from the durable outbox.
//!
//! rumqttc keeps unacknowledged publishes in memory and drops them when the broker answers
//! `session_present = false`; requests still in its channel when a connection drops are sent
//! on the next connection, and its `publish()` blocks when that channel is full. So we do not
//! trust it with delivery: alerts live in the sled outbox ([`super::store`]) until their PUBACK,
//! and every connection gets a fresh client and event loop (nothing of an old session can be
//! sent, or acknowledged, on a new one).
//!
//! [`Outflow`] is the I/O-free bookkeeping: which outbox entries are in flight under which
//! packet id. The loop in [`run`] drives one connection at a time and feeds it events:
//! - `ConnAck`: the retained `online` status is published, then the outbox from its start,
//!   in order (so after a reconnect or a restart everything unacknowledged goes out again, with
//!   its original alert id; subscribers de-duplicate by id).
//! - `Outgoing::Publish(pkid)`: rumqttc assigned `pkid` to the oldest request we queued.
//! - `PubAck(pkid)`: that entry is *held*: it stays in the outbox until the connection has
//!   stayed up for `mqtt.ack_hold_secs` (default 5 s) after the PUBACK, and only then leaves it.
//!   A broker may acknowledge a QoS 1 publish before it has saved or forwarded it (mosquitto
//!   does: docs/delivery.md), so a broker crash right after a PUBACK would lose the alert; a
//!   held entry is sent again on the next connection instead (subscribers de-duplicate by id).
//!   A clean shutdown releases what is held.
//! - an error: the connection's client and event loop are dropped; after a back-off (0.25 s
//!   doubling to 5 s) a new connection starts.
//!
//! At most [`WINDOW`] entries are in flight, below rumqttc's channel and inflight limits, so
//! `try_publish` never finds the channel full and memory waiting for PUBACKs stays bounded.
//!
//! TLS (`mqtts://`) uses rustls with the CA file of `mqtt.ca_file` (and optionally a client
//! certificate); the password comes from `mqtt.password_file` or `NETWARDEN_MQTT_PASSWORD` and
//! is never logged (see [`Secret`]).

pub mod config;

pub use config::{MqttConfig, RawMqtt, Secret, TlsFiles};

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, QoS, TlsConfiguration, Transport,
};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::sinks::store::Store;

/// Entries in flight at most.
pub const WINDOW: usize = 32;

impl MqttConfig {
    fn options(&self) -> MqttOptions {
        let mut opts = MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        opts.set_keep_alive(self.keep_alive);
        opts.set_clean_session(true);
        opts.set_inflight(u16::try_from(WINDOW * 2).unwrap_or(64));
        opts.set_last_will(LastWill::new(
            self.status_topic(),
            status_payload("offline"),
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &self.username {
            let pass = self
                .password
                .as_ref()
                .map(|p| String::from_utf8_lossy(p.expose()).into_owned())
                .unwrap_or_default();
            opts.set_credentials(user.clone(), pass);
        }
        if let Some(tls) = &self.tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: tls.ca_pem.clone(),
                alpn: None,
                client_auth: tls
                    .client
                    .as_ref()
                    .map(|(cert, key)| (cert.clone(), key.expose().to_vec())),
            }));
        }
        opts
    }
}

/// What an operator should read about a failed connection.
pub fn explain(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => "the broker rejected the user name or password (mqtt.username, mqtt.password_file or NETWARDEN_MQTT_PASSWORD)".to_string(),
            // mosquitto answers a wrong password with "not authorized".
            ConnectReturnCode::NotAuthorized => "the broker refused the connection: not authorized; check the user name or password (mqtt.username, mqtt.password_file or NETWARDEN_MQTT_PASSWORD) and the client certificate".to_string(),
            ConnectReturnCode::BadClientId => "the broker rejected the client id (mqtt.client_id)".to_string(),
            other => format!("the broker refused the connection ({other:?})"),
        },
        ConnectionError::Tls(t) => format!("TLS handshake with the broker failed: {t} (is mqtt.ca_file the CA that signed the broker's certificate, and does the certificate name the host in mqtt.url?)"),
        other => other.to_string(),
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
}

/// Back-off between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Logs connection failures without flooding: a new kind of error is a warning, a repeat of
/// the last one is a debug line.
#[derive(Default)]
struct FailureLog {
    last: Option<String>,
}

impl FailureLog {
    fn failed(
        &mut self,
        cfg: &MqttConfig,
        was_connected: bool,
        outbox: usize,
        e: &ConnectionError,
    ) {
        let why = explain(e);
        if was_connected {
            tracing::warn!(broker = %cfg.describe(), error = %why, outbox, "MQTT connection lost; alerts stay in the outbox");
        } else if self.last.as_deref() != Some(why.as_str()) {
            tracing::warn!(broker = %cfg.describe(), error = %why, outbox, "Cannot connect to the MQTT broker; retrying");
        } else {
            tracing::debug!(broker = %cfg.describe(), error = %why, "MQTT connection attempt failed");
        }
        self.last = Some(why);
    }
}

/// What one connection ended with.
enum SessionEnd {
    /// Lost or never established: try again after the back-off.
    Failed { was_connected: bool },
    /// Shutdown: done (the outbox was emptied or the time ran out).
    Stopped,
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
    let mut backoff = BACKOFF_MIN;
    let mut failures = FailureLog::default();
    loop {
        let end = session(
            &cfg,
            &store,
            &wake,
            &metrics,
            &heartbeat,
            &mut shutdown,
            &mut failures,
        )
        .await;
        match end {
            SessionEnd::Stopped => return,
            SessionEnd::Failed { was_connected } => {
                if was_connected {
                    backoff = BACKOFF_MIN;
                }
            }
        }
        if shutdown.is_shutdown() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection with a fresh client and event loop.
async fn session(
    cfg: &MqttConfig,
    store: &Store,
    wake: &Notify,
    metrics: &Metrics,
    heartbeat: &Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: &mut Shutdown,
    failures: &mut FailureLog,
) -> SessionEnd {
    let (client, events) = AsyncClient::new(cfg.options(), WINDOW * 4);
    // rumqttc's poll() is not documented as cancel-safe: give it a task of its own. It ends
    // with the connection's first error.
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let poller = tokio::spawn(poll_events(events, tx));
    let mut flow = Outflow::default();
    let mut beat = tokio::time::interval(Duration::from_secs(30));
    let mut deadline: Option<Instant> = shutdown
        .is_shutdown()
        .then(|| Instant::now() + Duration::from_secs(2));
    // The dropped-alerts total last handed to rumqttc on this connection.
    let mut overflow_sent: Option<u64> = None;

    let end = loop {
        for seq in flow.release(Instant::now(), cfg.ack_hold) {
            leave_outbox(store, seq);
        }
        metrics
            .mqtt_acked_held
            .store(flow.held() as u64, Ordering::Relaxed);
        fill(cfg, &client, store, &mut flow, metrics, &mut overflow_sent);
        if let Some(d) = deadline {
            // Done when all that is left in the outbox is held (acknowledged).
            if (flow.connected() && store.outbox_len() <= flow.held() && flow.pending() == 0)
                || Instant::now() >= d
            {
                break SessionEnd::Stopped;
            }
        }
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        let release_at = flow.next_release(cfg.ack_hold);
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    metrics.mqtt_connects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(broker = %cfg.describe(), outbox = store.outbox_len(), "Connected to MQTT broker");
                    failures.last = None;
                    metrics.mqtt_connected.store(1, Ordering::Relaxed);
                    flow.on_connack();
                    overflow_sent = None;
                    if client.try_publish(cfg.status_topic(), QoS::AtLeastOnce, true, status_payload("online")).is_ok() {
                        flow.sent(Queued::Other);
                    }
                }
                Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => flow.on_outgoing_publish(pkid),
                Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if let Some(seq) = flow.on_puback(ack.pkid, Instant::now()) {
                        metrics.mqtt_acked.fetch_add(1, Ordering::Relaxed);
                        tracing::trace!(seq, "PUBACK: alert held in the outbox");
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    metrics.mqtt_connection_errors.fetch_add(1, Ordering::Relaxed);
                    failures.failed(cfg, flow.connected(), store.outbox_len(), &e);
                    let was_connected = flow.connected();
                    metrics.mqtt_connected.store(0, Ordering::Relaxed);
                    metrics.mqtt_acked_held.store(0, Ordering::Relaxed);
                    flow.on_disconnect();
                    break if deadline.is_some() { SessionEnd::Stopped } else { SessionEnd::Failed { was_connected } };
                }
                None => {
                    let was_connected = flow.connected();
                    metrics.mqtt_connected.store(0, Ordering::Relaxed);
                    metrics.mqtt_acked_held.store(0, Ordering::Relaxed);
                    flow.on_disconnect();
                    break SessionEnd::Failed { was_connected };
                }
            },
            _ = wake.notified() => {}
            _ = beat.tick() => {
                if flow.connected() && client.try_publish(cfg.heartbeat_topic(), QoS::AtMostOnce, false, heartbeat()).is_ok() {
                    flow.sent(Queued::Other);
                }
            }
            _ = shutdown.recv(), if deadline.is_none() => {
                if !flow.connected() {
                    break SessionEnd::Stopped;
                }
                deadline = Some(Instant::now() + Duration::from_secs(2));
            }
            _ = tokio::time::sleep(wait), if deadline.is_some() => {}
            _ = tokio::time::sleep_until(release_at.unwrap_or_else(Instant::now)), if release_at.is_some() => {}
        }
    };
    if matches!(end, SessionEnd::Stopped) && flow.connected() {
        // A clean stop with the broker up: what it acknowledged may leave the outbox.
        for seq in flow.release_all() {
            leave_outbox(store, seq);
        }
        metrics.mqtt_acked_held.store(0, Ordering::Relaxed);
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
    end
}

/// An acknowledged entry whose hold is over leaves the outbox.
fn leave_outbox(store: &Store, seq: u64) {
    match store.outbox_ack(seq) {
        Ok(Some(entry)) if tracing::enabled!(tracing::Level::TRACE) => {
            let id = serde_json::from_str::<serde_json::Value>(&entry.payload)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            tracing::trace!(seq, id = %id, topic = %entry.topic, "Alert left the outbox");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "Cannot remove acknowledged alert from outbox"),
    }
}

/// Drives one connection's event loop, forwarding every event, until its first error.
async fn poll_events(
    mut events: rumqttc::EventLoop,
    tx: tokio::sync::mpsc::Sender<Result<Event, ConnectionError>>,
) {
    loop {
        let ev = events.poll().await;
        let failed = ev.is_err();
        if tx.send(ev).await.is_err() || failed {
            return;
        }
    }
}

/// Hands rumqttc as many outbox entries as the window allows, and the dropped-alerts report
/// when it changed.
fn fill(
    cfg: &MqttConfig,
    client: &AsyncClient,
    store: &Store,
    flow: &mut Outflow,
    metrics: &Metrics,
    overflow_sent: &mut Option<u64>,
) {
    if !flow.connected() {
        return;
    }
    let overflow = store.overflow();
    if overflow.dropped_total > 0 && *overflow_sent != Some(overflow.dropped_total) {
        let payload = serde_json::to_string(&overflow).unwrap_or_default();
        if client
            .try_publish(cfg.outbox_status_topic(), QoS::AtLeastOnce, true, payload)
            .is_ok()
        {
            flow.sent(Queued::Other);
            *overflow_sent = Some(overflow.dropped_total);
        }
    }
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
}
