//! One MQTT connection at a time over rumqttc: its options (clean session, TLS, credentials,
//! Last Will), the event loop in a task of its own, the `online`/`offline` status and the
//! heartbeat, the back-off between connections, and what the events mean for the
//! [`Outflow`] and the outbox.

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

use super::outflow::{Outflow, Queued, WINDOW};
use super::MqttConfig;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::sinks::store::Store;

impl MqttConfig {
    fn options(&self) -> MqttOptions {
        let mut opts = self.options_for(self.client_id.clone());
        opts.set_last_will(LastWill::new(
            self.status_topic(),
            status_payload("offline"),
            QoS::AtLeastOnce,
            true,
        ));
        opts
    }

    /// Broker, keep-alive, credentials and TLS for a client of this gateway, without a Last
    /// Will (the fleet model subscription, `fleet.rs`, is a second client of its own).
    pub fn options_for(&self, client_id: String) -> MqttOptions {
        let mut opts = MqttOptions::new(client_id, self.host.clone(), self.port);
        opts.set_keep_alive(self.keep_alive);
        opts.set_clean_session(true);
        opts.set_inflight(u16::try_from(WINDOW * 2).unwrap_or(64));
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

    let end = loop {
        for seq in flow.release(Instant::now(), cfg.ack_hold) {
            leave_outbox(store, seq);
        }
        metrics
            .mqtt_acked_held
            .store(flow.held() as u64, Ordering::Relaxed);
        fill(cfg, &client, store, &mut flow, metrics);
        if let Some(d) = deadline {
            // Done when all that is left in the outbox is held (acknowledged).
            if flow.drained(store.outbox_len()) || Instant::now() >= d {
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
                    if client.try_publish(cfg.status_topic(), QoS::AtLeastOnce, true, status_payload("online")).is_ok() {
                        flow.sent(Queued::Other);
                    }
                }
                Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => flow.on_outgoing_publish(pkid),
                Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if let Some(seq) = flow.on_puback(ack.pkid, Instant::now()) {
                        metrics.mqtt_acked.fetch_add(1, Ordering::Relaxed);
                        tracing::trace!(seq, "PUBACK: alert held in the outbox");
                        log_ack(store, seq);
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

/// At debug level, which alert the broker acknowledged and when (Unix µs, read first): what
/// tests/bench/alert_latency.sh measures alert latency up to.
fn log_ack(store: &Store, seq: u64) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let acked_unix_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let id = store
        .outbox_from(seq, 1)
        .ok()
        .and_then(|v| v.into_iter().next())
        .filter(|(s, _)| *s == seq)
        .and_then(|(_, e)| {
            serde_json::from_str::<serde_json::Value>(&e.payload)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
        })
        .unwrap_or_default();
    tracing::debug!(seq, id = %id, acked_unix_us, "PUBACK for alert");
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
pub(super) async fn poll_events(
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
) {
    if !flow.connected() {
        return;
    }
    let overflow = store.overflow();
    if flow.overflow_due(overflow.dropped_total) {
        let payload = serde_json::to_string(&overflow).unwrap_or_default();
        if client
            .try_publish(cfg.outbox_status_topic(), QoS::AtLeastOnce, true, payload)
            .is_ok()
        {
            flow.overflow_sent(overflow.dropped_total);
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
