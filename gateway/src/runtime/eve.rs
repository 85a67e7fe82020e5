//! The EVE thread: follows the configured files (and drains the socket readers' queue), parses
//! each line (`sources/eve`), runs the EVE pipeline (`pipeline/eve`), then hands the results to
//! the sinks: alerts to the alert sink (stored, then published on the alert topics), window
//! results to the store (and the outbox when published), flow records to the flow thread's
//! queue. Only then is each file's position saved (sled, flushed): a line is processed before
//! its position moves past it, so a crash re-reads at most the last poll's lines, whose alerts
//! keep their ids (docs/eve.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::config::eve::EveConfig;
use crate::metrics::Metrics;
use crate::pipeline::eve::{EveOutput, EveStage};
use crate::records::{FlowInput, FlowOrigin};
use crate::shutdown::Shutdown;
use crate::sinks::alert_sink::AlertSink;
use crate::sinks::store::{Store, WindowRow};
use crate::sources::eve::tail::{expand, FileTail, Position};
use crate::sources::eve::{count_skip, parse_line, socket};

use super::RuntimeError;

/// How often configured patterns are expanded again to find new files.
const RESCAN: Duration = Duration::from_secs(2);
/// Socket records queued for the EVE thread at most.
const SOCKET_QUEUE: usize = 8192;

#[derive(Debug)]
pub struct EveThreads {
    pub main: std::thread::JoinHandle<()>,
    pub sockets: Vec<std::thread::JoinHandle<()>>,
}

struct Ctx {
    cfg: EveConfig,
    store: Arc<Store>,
    alerts: AlertSink,
    queue: SyncSender<FlowInput>,
    metrics: Arc<Metrics>,
    site: String,
    device: String,
}

/// Starts the EVE thread (and a reader per socket) when `[eve]` names an input.
#[allow(clippy::too_many_arguments)]
pub fn start(
    cfg: &EveConfig,
    site: &str,
    device: &str,
    store: Arc<Store>,
    alerts: AlertSink,
    queue: SyncSender<FlowInput>,
    metrics: Arc<Metrics>,
    shutdown: &broadcast::Sender<()>,
) -> Result<Option<EveThreads>, RuntimeError> {
    if cfg.inputs.is_empty() {
        return Ok(None);
    }
    let (tx, rx) = sync_channel(SOCKET_QUEUE);
    let mut sockets = Vec::new();
    for s in &cfg.inputs.sockets {
        let t = socket::spawn(
            s,
            cfg.inputs.max_line_bytes,
            tx.clone(),
            Shutdown::new(shutdown.subscribe()),
        )
        .map_err(|e| RuntimeError::Eve(format!("cannot bind {}: {e}", s.path.display())))?;
        tracing::info!(path = %s.path.display(), kind = ?s.kind, "EVE socket listening");
        sockets.push(t);
    }
    drop(tx);
    let ctx = Ctx {
        cfg: cfg.clone(),
        store,
        alerts,
        queue,
        metrics,
        site: site.to_string(),
        device: device.to_string(),
    };
    let stop = Shutdown::new(shutdown.subscribe());
    let main = std::thread::Builder::new()
        .name("eve".into())
        .spawn(move || eve_thread(ctx, rx, stop))
        .map_err(RuntimeError::Thread)?;
    Ok(Some(EveThreads { main, sockets }))
}

fn eve_thread(ctx: Ctx, socket_rx: Receiver<Option<Vec<u8>>>, mut stop: Shutdown) {
    let positions = match ctx.store.eve_positions() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "Cannot open the EVE position tree; EVE input stopped");
            return;
        }
    };
    let origin = format!(
        "suricata:{}",
        ctx.cfg
            .inputs
            .files
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "socket".into())
    );
    let mut stage = EveStage::new(ctx.cfg.rules.clone(), &ctx.site, &ctx.device, &origin);
    let origin: FlowOrigin = FlowOrigin::Meter(Arc::from(origin.as_str()));
    let mut tails: BTreeMap<PathBuf, FileTail> = BTreeMap::new();
    let mut last_scan: Option<Instant> = None;
    let max_line = ctx.cfg.inputs.max_line_bytes;
    loop {
        let stopping = stop.check();
        if last_scan.is_none_or(|t| t.elapsed() >= RESCAN) {
            last_scan = Some(Instant::now());
            for pattern in &ctx.cfg.inputs.files {
                for path in expand(pattern) {
                    tails.entry(path.clone()).or_insert_with(|| {
                        let saved = positions
                            .get(path.to_string_lossy().as_bytes())
                            .ok()
                            .flatten()
                            .and_then(|v| Position::from_bytes(&v));
                        tracing::info!(path = %path.display(), resume = ?saved, "Following EVE file");
                        FileTail::new(path, max_line, saved)
                    });
                }
            }
        }
        let mut busy = false;
        let mut out = EveOutput::default();
        let mut moved: Vec<(PathBuf, Position)> = Vec::new();
        for (path, tail) in &mut tails {
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let before = tail.position();
            match tail.poll(&mut |l| lines.push(l.to_vec())) {
                Ok(s) => {
                    ctx.metrics.add(&ctx.metrics.eve_rotations, s.rotations);
                    for _ in 0..s.oversize {
                        count_skip(&ctx.metrics, crate::sources::eve::SkipReason::Oversize);
                    }
                    busy |= s.bytes > 0;
                }
                Err(e) => {
                    ctx.metrics.eve_read_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %path.display(), error = %e, "EVE file read failed");
                }
            }
            for l in &lines {
                handle_line(&ctx, &mut stage, l, max_line, &mut out);
            }
            if let Some(p) = tail.position() {
                if Some(p) != before {
                    moved.push((path.clone(), p));
                }
            }
        }
        while let Ok(rec) = socket_rx.try_recv() {
            busy = true;
            match rec {
                Some(l) => handle_line(&ctx, &mut stage, &l, max_line, &mut out),
                None => {
                    ctx.metrics.eve_lines.fetch_add(1, Ordering::Relaxed);
                    count_skip(&ctx.metrics, crate::sources::eve::SkipReason::Oversize);
                }
            }
        }
        if stopping {
            stage.flush(&mut out);
        }
        deliver(&ctx, &origin, out);
        // Positions move only after what was read has been delivered.
        if !moved.is_empty() {
            for (path, p) in &moved {
                let _ = positions.insert(path.to_string_lossy().as_bytes(), &p.to_bytes()[..]);
            }
            if let Err(e) = positions.flush() {
                tracing::warn!(error = %e, "Cannot save EVE positions");
            }
        }
        if stopping {
            tracing::info!(files = tails.len(), "EVE input stopped");
            return;
        }
        if !busy {
            std::thread::sleep(ctx.cfg.inputs.poll_interval);
        }
    }
}

fn handle_line(ctx: &Ctx, stage: &mut EveStage, line: &[u8], max: usize, out: &mut EveOutput) {
    let m = &ctx.metrics;
    m.eve_lines.fetch_add(1, Ordering::Relaxed);
    match parse_line(line, max) {
        Ok(e) => {
            m.eve_events.fetch_add(1, Ordering::Relaxed);
            stage.process(&e, crate::now_ms(), out);
        }
        Err(r) => count_skip(m, r),
    }
}

fn deliver(ctx: &Ctx, origin: &FlowOrigin, out: EveOutput) {
    let m = &ctx.metrics;
    m.add(&m.eve_filtered, out.filtered);
    m.add(&m.eve_window_late, out.late);
    if !out.alerts.is_empty() {
        m.add(&m.eve_alerts_forwarded, out.alerts.len() as u64);
        ctx.alerts.on_alerts(&out.alerts);
    }
    if !out.window_results.is_empty() {
        m.add(&m.eve_window_results, out.window_results.len() as u64);
        let publish: BTreeMap<&str, bool> = ctx
            .cfg
            .rules
            .windows
            .iter()
            .map(|w| (w.name.as_str(), w.publish))
            .collect();
        let rows: Vec<WindowRow> = out
            .window_results
            .iter()
            .filter_map(|r| {
                let mut v = serde_json::to_value(r).ok()?;
                v["site"] = ctx.site.clone().into();
                v["device"] = ctx.device.clone().into();
                Some(WindowRow {
                    json: v.to_string(),
                    window_end_ms: r.window_end_ms,
                    topic: publish
                        .get(r.view.as_str())
                        .copied()
                        .unwrap_or(false)
                        .then(|| format!("{}/eve/windows/{}", ctx.alerts.prefix(), r.view)),
                })
            })
            .collect();
        match ctx.store.append_window_results(&rows) {
            Ok(dropped) => m.add(&m.outbox_dropped_full, dropped),
            Err(e) => {
                tracing::error!(error = %e, results = rows.len(), "Cannot store EVE window results")
            }
        }
    }
    if !out.flow_records.is_empty() {
        m.add(&m.eve_flow_records, out.flow_records.len() as u64);
        for chunk in out.flow_records.chunks(512) {
            // Blocks rather than drops, as the capture sources do: the flow thread drains.
            let _ = ctx.queue.send(FlowInput::Records {
                origin: origin.clone(),
                records: chunk.to_vec(),
            });
        }
    }
}
