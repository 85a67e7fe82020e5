//! The fleet model subscription (docs/fleet.md): a second MQTT client of this gateway
//! (`<client_id>-fleet`, no Last Will) that subscribes to the model sets addressed to it (all,
//! its site, its device), puts chunk sets together ([`Assembler`]), verifies a complete set
//! before anything else ([`verify_flow`]), writes it to disk and hands it to the flow thread to
//! shadow, and publishes the retained `<prefix>/models/state` whenever the ledger changes.
//!
//! Refusals are counted (`fleet_messages_refused`, `fleet_sets_refused`), logged, kept in the
//! ledger and published with the check that failed. A set already handled (a broker delivers
//! retained messages again on every connection) is not judged again.

use std::collections::BTreeMap;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde::Serialize;
use tokio::sync::Notify;

use super::samples_serve::SamplesServer;
use super::session::poll_events;
use super::MqttConfig;
use crate::metrics::Metrics;
use crate::models::fleet::assemble::{Assembler, CompleteSet, FailedSet, Progress};
use crate::models::fleet::ledger::state;
use crate::models::fleet::verify::{verify_flow, Refusal};
use crate::models::fleet::wire::{self, Chunk, SetManifest, TopicKind};
use crate::models::fleet::{Candidate, DetectorState, Event as LedgerEvent, FleetConfig, Ledger};
use crate::models::Trust;
use crate::shutdown::Shutdown;

/// What the fleet client needs besides the broker settings.
#[derive(Debug, Clone)]
pub struct FleetLink {
    pub fleet: FleetConfig,
    pub site: String,
    pub device: String,
    pub trust: Trust,
    pub ledger: Arc<Ledger>,
    pub candidates: SyncSender<Candidate>,
    /// Notified by whoever changes the ledger; the state is then published again.
    pub changed: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub batch_size: usize,
    /// Serves the reservoir over MQTT when set (docs/fleet.md, "Samples over MQTT").
    pub samples: Option<Arc<crate::sinks::store::Store>>,
    /// Learning state for `<prefix>/models/state` when set.
    pub learning: Option<crate::records::learning::LearningBoard>,
}

/// The retained state message.
#[derive(Debug, Serialize)]
pub struct StateMessage<'a> {
    pub site: &'a str,
    pub device: &'a str,
    pub ts_ms: u64,
    pub detectors: BTreeMap<String, DetectorState>,
    /// Each learning detector's status, progress (0 to 1) and fitted figures (as on /health).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learning: Vec<serde_json::Value>,
}

/// `<prefix>/models/state`.
pub fn state_topic(prefix: &str) -> String {
    format!("{prefix}/models/state")
}

/// Runs until shutdown, one connection at a time.
pub async fn run(cfg: MqttConfig, link: FleetLink, mut shutdown: Shutdown) {
    let mut assembler = Assembler::default();
    let mut backoff = Duration::from_millis(250);
    loop {
        let connected = session(&cfg, &link, &mut assembler, &mut shutdown).await;
        if shutdown.is_shutdown() {
            return;
        }
        if connected {
            backoff = Duration::from_millis(250);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection; returns whether it got as far as a ConnAck.
async fn session(
    cfg: &MqttConfig,
    link: &FleetLink,
    assembler: &mut Assembler,
    shutdown: &mut Shutdown,
) -> bool {
    let mut opts = cfg.options_for(format!("{}-fleet", cfg.client_id));
    // A set manifest holds the whole signed bundle manifest; chunks up to 1 MiB.
    let max = wire::MAX_SET_MANIFEST_BYTES.max(wire::CHUNK_HEADER + wire::MAX_CHUNK_BYTES as usize)
        + 1024;
    opts.set_max_packet_size(max, max);
    let (client, events) = AsyncClient::new(opts, 64);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let poller = tokio::spawn(poll_events(events, tx));
    let mut connected = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let state_topic = state_topic(&cfg.prefix);
    let mut samples = link.samples.clone().map(|store| {
        SamplesServer::new(
            &link.fleet.topic,
            &link.site,
            &link.device,
            &cfg.prefix,
            store,
            link.metrics.clone(),
        )
    });
    let mut learning_seen = learning_key(link);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    tracing::info!(broker = %cfg.describe(), topic = %link.fleet.topic, "Fleet model subscription connected");
                    for filter in wire::subscriptions(&link.fleet.topic, &link.site, &link.device) {
                        let _ = client.try_subscribe(filter, QoS::AtLeastOnce);
                    }
                    if let Some(s) = &samples {
                        let _ = client.try_subscribe(s.filter(), QoS::AtLeastOnce);
                    }
                    publish_state(&client, &state_topic, link);
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    let topic = p.topic.clone();
                    if let Some(s) = samples.as_mut().filter(|s| s.owns(&link.fleet.topic, &topic)) {
                        s.on_message(&client, &topic, &p.payload).await;
                    } else if on_message(link, assembler, &topic, &p.payload).await {
                        publish_state(&client, &state_topic, link);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %super::explain(&e), "Fleet model subscription: connection ended");
                    break;
                }
                None => break,
            },
            _ = link.changed.notified() => {
                if connected {
                    publish_state(&client, &state_topic, link);
                }
            }
            _ = tick.tick() => {
                let failed = assembler.expire(crate::now_ms(), link.fleet.assembly_timeout.as_millis() as u64);
                let mut any = !failed.is_empty();
                if let Some(s) = samples.as_mut() {
                    s.pump(&client, crate::now_ms(), true);
                }
                let key = learning_key(link);
                if key != learning_seen {
                    learning_seen = key;
                    any = true;
                }
                for f in failed {
                    refuse_failed(link, &f);
                }
                if any && connected {
                    publish_state(&client, &state_topic, link);
                }
            }
            _ = shutdown.recv() => {
                let _ = client.try_disconnect();
                break;
            }
        }
    }
    poller.abort();
    connected
}

fn publish_state(client: &AsyncClient, topic: &str, link: &FleetLink) {
    let msg = StateMessage {
        site: &link.site,
        device: &link.device,
        ts_ms: crate::now_ms(),
        detectors: link.ledger.all(),
        learning: learning_view(link),
    };
    let payload = serde_json::to_vec(&msg).unwrap_or_default();
    if client
        .try_publish(topic, QoS::AtLeastOnce, true, payload)
        .is_err()
    {
        tracing::debug!("Fleet state not queued (client busy); it goes out with the next change");
    }
}

fn learning_view(link: &FleetLink) -> Vec<serde_json::Value> {
    let list = link
        .learning
        .as_ref()
        .and_then(|b| b.lock().ok().map(|b| b.clone()))
        .unwrap_or_default();
    list.iter()
        .map(|l| {
            let mut v = serde_json::to_value(l).unwrap_or_default();
            v["progress"] = serde_json::json!(l.progress());
            v
        })
        .collect()
}

/// What makes the learning state worth publishing again: a phase, a fit, or 5 % of progress.
fn learning_key(link: &FleetLink) -> Vec<(String, String, u32)> {
    let list = link
        .learning
        .as_ref()
        .and_then(|b| b.lock().ok().map(|b| b.clone()))
        .unwrap_or_default();
    list.iter()
        .map(|l| {
            let fit = l.fitted.as_ref().map(|f| f.threshold.to_string());
            (
                format!("{}/{}", l.detector, l.phase),
                fit.unwrap_or_default(),
                (l.progress() * 20.0) as u32,
            )
        })
        .collect()
}

/// Handles one message; returns whether the ledger changed.
async fn on_message(
    link: &FleetLink,
    assembler: &mut Assembler,
    topic: &str,
    payload: &[u8],
) -> bool {
    if payload.is_empty() {
        // A cleared retained message.
        return false;
    }
    let refused = |why: &str| {
        link.metrics.add(&link.metrics.fleet_messages_refused, 1);
        tracing::warn!(topic, reason = why, "Fleet message refused");
        false
    };
    let (detector, scope, kind) = match wire::parse_topic(&link.fleet.topic, topic) {
        Ok(t) => t,
        Err(e) => return refused(&e.to_string()),
    };
    if !wire::DETECTORS.contains(&detector) {
        return refused(&format!("detector {detector:?} is not one of flow, series"));
    }
    let key = format!("{detector}/{scope}");
    let progress = match kind {
        TopicKind::Manifest => match SetManifest::decode(payload) {
            Ok(set) if set.detector != detector => {
                return refused(&format!("set for {} on a {detector} topic", set.detector))
            }
            Ok(set) => assembler.on_manifest(&key, set, crate::now_ms()),
            Err(e) => return refused(&format!("{} ({})", e, e.counter())),
        },
        TopicKind::Chunk(i) => match Chunk::decode(payload) {
            Ok(c) => assembler.on_chunk(&key, i, c),
            Err(e) => return refused(&format!("{} ({})", e, e.counter())),
        },
    };
    match progress {
        Progress::Waiting | Progress::Stale => false,
        Progress::Refused(why) => refused(why),
        Progress::Failed(f) => {
            refuse_failed(link, &f);
            true
        }
        Progress::Complete(c) => on_complete(link, c).await,
    }
}

fn version_of(manifest: &str) -> String {
    serde_json::from_str::<serde_json::Value>(manifest)
        .ok()
        .and_then(|v| v["version"].as_str().map(|s| s.chars().take(64).collect()))
        .unwrap_or_else(|| "?".into())
}

fn event(version: &str, st: &str, refusal: Option<&Refusal>) -> LedgerEvent {
    LedgerEvent {
        ts_ms: crate::now_ms(),
        version: version.to_string(),
        state: st.to_string(),
        check: refusal.map(|r| r.check.clone()),
        reason: refusal.map(|r| r.reason.clone()),
        figures: None,
    }
}

fn record(link: &FleetLink, detector: &str, ev: LedgerEvent) {
    if let Err(e) = link.ledger.record(detector, ev) {
        tracing::error!(error = %e, "Cannot write the model ledger");
    }
}

fn refuse_failed(link: &FleetLink, f: &FailedSet) {
    link.metrics.add(&link.metrics.fleet_sets_refused, 1);
    let refusal = Refusal::new("chunks", f.reason.clone());
    record(
        link,
        &f.set.detector,
        event(
            &version_of(&f.set.manifest),
            state::REJECTED,
            Some(&refusal),
        ),
    );
}

/// A complete set: verified, saved and handed to the flow thread, or refused.
async fn on_complete(link: &FleetLink, c: CompleteSet) -> bool {
    let id = c.set.id();
    if link.ledger.is_handled(&id) {
        tracing::debug!(key = %c.key, "Fleet set already handled; ignored");
        return false;
    }
    let detector = c.set.detector.clone();
    let version = version_of(&c.set.manifest);
    if !wire::in_canary(c.set.canary_percent, &id, &link.site, &link.device) {
        tracing::info!(
            detector,
            version,
            canary = c.set.canary_percent,
            "Fleet model is for a canary this gateway is not in; ignored"
        );
        return false;
    }
    link.metrics.add(&link.metrics.fleet_sets_received, 1);
    record(link, &detector, event(&version, state::RECEIVED, None));
    let highest = link.ledger.get(&detector).highest;
    let (trust, batch) = (link.trust.clone(), link.batch_size);
    let set = c.set.clone();
    let verified = tokio::task::spawn_blocking(move || {
        verify_flow(
            &set,
            &c.model,
            &trust,
            highest.as_deref(),
            crate::now_ms(),
            batch,
        )
        .map(|v| (v, c.model))
    })
    .await
    .unwrap_or_else(|e| {
        Err(Refusal::new(
            "verify",
            format!("verification did not finish: {e}"),
        ))
    });
    let _ = link.ledger.mark_handled(&id, crate::now_ms());
    let (v, model) = match verified {
        Ok(v) => v,
        Err(refusal) => {
            link.metrics.add(&link.metrics.fleet_sets_refused, 1);
            record(
                link,
                &detector,
                event(&version, state::REJECTED, Some(&refusal)),
            );
            return true;
        }
    };
    let m = &v.bundle.manifest;
    if let Err(e) = link.ledger.save_bundle(
        &detector,
        &m.version,
        &c.set.manifest,
        &c.set.signature,
        &m.model.file,
        &model,
    ) {
        let refusal = Refusal::new("disk", e.to_string());
        record(
            link,
            &detector,
            event(&version, state::REJECTED, Some(&refusal)),
        );
        return true;
    }
    let mut ev = event(&version, state::VERIFIED, None);
    ev.reason = Some(format!(
        "signature verified (key {}), every check passed",
        v.key_id
    ));
    record(link, &detector, ev);
    let candidate = Candidate {
        version: m.version.clone(),
        bundle: v.bundle,
        immediate: false,
    };
    match link.candidates.try_send(candidate) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            let refusal = Refusal::new("busy", "the flow thread did not take the candidate");
            record(
                link,
                &detector,
                event(&version, state::REJECTED, Some(&refusal)),
            );
        }
    }
    true
}
