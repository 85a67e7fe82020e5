//! The async loop of one target: every `interval` (after a random start offset, so many
//! targets do not poll in lockstep), walk it with the [`Client`], fold the walk into the
//! [`TargetState`], and `try_send` the samples into the bounded queue (a full queue drops and
//! counts). A dead agent is a status and a counter: the loop keeps polling at its interval.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::client::{Client, PollError};
use super::config::TargetConfig;
use super::state::{StepStats, TargetState};
use crate::metrics::Metrics;
use crate::records::{RateSample, StatusBoard, TargetStatus};
use crate::shutdown::Shutdown;

/// Polls one target until shutdown.
pub async fn run_target(
    cfg: TargetConfig,
    tx: mpsc::Sender<RateSample>,
    metrics: Arc<Metrics>,
    board: StatusBoard,
    mut shutdown: Shutdown,
) {
    let name = cfg.name.clone();
    let interval = cfg.interval;
    let seed = random_u64();
    let mut state = TargetState::new(
        &name,
        cfg.interfaces.clone(),
        cfg.max_gap().as_millis() as u64,
    );
    update(&board, &name, |s| {
        s.address = cfg.address.to_string();
        s.security = cfg.describe_security();
        s.state = "starting".into();
    });
    tracing::info!(target_name = %name, address = %cfg.address, security = %cfg.describe_security(),
        interval = ?interval, "Polling SNMP target");
    let mut client = Client::new(cfg, metrics.clone(), seed as u32);

    // Jittered start: up to one interval.
    let offset = Duration::from_millis((seed >> 32) % (interval.as_millis() as u64).max(1));
    tokio::select! {
        _ = shutdown.recv() => return,
        _ = tokio::time::sleep(offset) => {}
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    let mut last_error_kind: Option<&'static str> = None;
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = ticker.tick() => {}
        }
        let started = std::time::Instant::now();
        let result = tokio::select! {
            _ = shutdown.recv() => break,
            r = client.poll() => r,
        };
        let now_ms = crate::now_ms();
        samples.clear();
        match result {
            Ok(walk) => {
                let stats = state.on_walk(&walk, now_ms, &mut samples);
                count(&metrics, &stats);
                metrics.snmp_polls_ok.fetch_add(1, Ordering::Relaxed);
                if last_error_kind.take().is_some() {
                    tracing::info!(target_name = %name, "SNMP target answers again");
                }
                let micros = started.elapsed().as_micros() as u64;
                update(&board, &name, |s| {
                    s.state = "ok".into();
                    s.last_error = None;
                    s.last_ok_ms = Some(now_ms);
                    s.last_poll_ms = Some(now_ms);
                    s.polls_ok += 1;
                    s.interfaces = stats.interfaces;
                    s.hc_interfaces = stats.hc_interfaces;
                    s.last_poll_micros = micros;
                });
            }
            Err(e) => {
                let stats = state.on_failure(now_ms, &mut samples);
                count(&metrics, &stats);
                metrics.snmp_polls_failed.fetch_add(1, Ordering::Relaxed);
                // Logged when the kind of failure changes, not every interval.
                if last_error_kind != Some(e.kind()) {
                    log_failure(&name, &e);
                    last_error_kind = Some(e.kind());
                }
                update(&board, &name, |s| {
                    s.state = e.kind().into();
                    s.last_error = Some(e.to_string());
                    s.last_poll_ms = Some(now_ms);
                    s.polls_failed += 1;
                });
            }
        }
        for sample in samples.drain(..) {
            if tx.try_send(sample).is_err() {
                metrics
                    .snmp_samples_dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn log_failure(name: &str, e: &PollError) {
    match e {
        PollError::Auth { .. } => {
            tracing::error!(target_name = %name, error = %e, "SNMP target refuses our credentials")
        }
        _ => tracing::warn!(target_name = %name, error = %e, "SNMP poll failed"),
    }
}

fn count(m: &Metrics, s: &StepStats) {
    m.snmp_samples.fetch_add(s.samples, Ordering::Relaxed);
    m.snmp_samples_unknown
        .fetch_add(s.unknown, Ordering::Relaxed);
    m.snmp_agent_restarts
        .fetch_add(s.restarts, Ordering::Relaxed);
    m.snmp_counter_wraps.fetch_add(s.wraps, Ordering::Relaxed);
    m.snmp_interfaces_renumbered
        .fetch_add(s.renumbered, Ordering::Relaxed);
}

fn update(board: &StatusBoard, name: &str, f: impl FnOnce(&mut TargetStatus)) {
    if let Ok(mut b) = board.lock() {
        f(b.entry(name.to_string()).or_default());
    }
}

/// Randomness for start offsets and request ids without a dependency: std's hasher keys are
/// random per process.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::now_ms());
    h.finish()
}
