//! The HTTP API and the dashboard (docs/http.md), served by axum on the daemon's runtime.
//!
//! - `GET /` and `/app.js`: the dashboard, embedded in the binary (no CDN, no framework);
//! - `GET /health`, `GET /metrics` (Prometheus text), `GET /models`;
//! - `GET /alerts` (since, until, severity, detector, limit, cursor paging);
//! - `GET /history/flows`, `/history/interfaces`, `/history/interface`: recent scores, the
//!   stored interface series, error histograms and top talkers for a time range;
//! - `POST /detect`: score vectors with the daemon's models ([`detect`]).
//!
//! Every handler only reads: the store (sled, thread-safe), the counters (atomics), and copies
//! of the boards the pipeline threads publish once a second. Nothing here can block the
//! NetFlow pipeline; sled reads and model runs go to the blocking pool.
//!
//! Auth: with a token configured (always, when bound beyond loopback), every route but
//! `/health` and the static dashboard files needs `Authorization: Bearer <token>`; the
//! dashboard asks for the token once and sends it on its API calls.

pub mod config;
pub mod dashboard;
pub mod detect;
pub mod fleet;
pub mod prom;
mod prom_capture;
mod prom_eve;
pub mod query;
mod samples;

pub use config::{HttpConfig, RawHttp, Token};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::models::ModelInfo;
use crate::records::scoreboard::{self, ScoreBoard};
use crate::records::ExporterBoard;
use crate::records::RateSample;
use crate::records::StatusBoard;
use crate::records::{canonical_detector, Alert, FLOW_DETECTOR, SERIES_DETECTOR};
use crate::shutdown::Shutdown;
use crate::sinks::history::TimeRange;
use crate::sinks::store::Store;
use query::{BadQuery, Checked};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen for HTTP on {addr}: {error} (choose another with --http-listen or [http] listen, or \"off\")")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Everything the handlers read.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub scoreboard: ScoreBoard,
    pub exporters: ExporterBoard,
    pub snmp_board: StatusBoard,
    pub models: Arc<Vec<ModelInfo>>,
    /// Learning periods (issue 18), published by the pipeline threads.
    pub learning: crate::records::learning::LearningBoard,
    pub scorer: Arc<detect::Scorer>,
    pub token: Option<Token>,
    pub started: Instant,
    pub site: String,
    pub device: String,
    pub netflow_queue_capacity: usize,
    /// The series queue (weak: the server must not keep it open at shutdown).
    pub series_queue: Option<tokio::sync::mpsc::WeakSender<RateSample>>,
    /// The model ledger and the way to the flow thread, with `[fleet]` enabled.
    pub fleet: Option<Arc<fleet::FleetApi>>,
}

/// Builds the router (public for tests and the benchmark).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics))
        .route("/models", get(models))
        .route("/alerts", get(alerts))
        .route("/history/flows", get(history_flows))
        .route("/history/interfaces", get(history_interfaces))
        .route("/history/interface", get(history_interface))
        .route("/detect", post(detect))
        .route("/models/fleet", get(fleet::status))
        .route("/models/fleet/activate", post(fleet::activate))
        .route("/models/fleet/rollback", post(fleet::rollback))
        .route("/samples", get(samples::samples))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/", get(dashboard::index))
        .route("/app.js", get(dashboard::script))
        .route("/health", get(health))
        .merge(api)
        .fallback(not_found)
        .with_state(state)
}

/// Serves until shutdown. Binds first, so a busy port is an error at start, not later.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| HttpError::Bind { addr, error })
}

pub async fn serve(listener: tokio::net::TcpListener, state: AppState, mut shutdown: Shutdown) {
    let app = router(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.recv().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "HTTP server stopped");
    }
}

/// A JSON error body: `{"error": {"code", "message"}}`.
pub fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message.to_string()}});
    (status, Json(body)).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint (see docs/http.md)",
    )
}

async fn auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = &s.token else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if token.matches(p.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs Authorization: Bearer <token>",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"netwarden\""),
            );
            r
        }
    }
}

async fn health(State(s): State<AppState>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "site": s.site,
        "device": s.device,
        "uptime_s": s.started.elapsed().as_secs(),
        "mqtt_connected": s.metrics.mqtt_connected.load(Ordering::Relaxed) == 1,
        "outbox": s.store.outbox_len(),
        "auth": s.token.is_some(),
        "learning": learning_view(&s.learning),
    }))
    .into_response()
}

/// Each learning detector's status with its progress (0 to 1).
fn learning_view(board: &crate::records::learning::LearningBoard) -> serde_json::Value {
    let list = board.lock().map(|b| b.clone()).unwrap_or_default();
    serde_json::Value::Array(
        list.iter()
            .map(|l| {
                let mut v = serde_json::to_value(l).unwrap_or_default();
                v["progress"] = serde_json::json!(l.progress());
                v
            })
            .collect(),
    )
}

/// Copies everything a scrape shows (short locks), for [`prom::render`].
pub fn metrics_view(s: &AppState) -> prom::MetricsView {
    let counters = s.metrics.snapshot();
    let netflow_queue_depth = counters
        .netflow_datagrams_received
        .saturating_sub(counters.netflow_datagrams_dropped_queue_full)
        .saturating_sub(counters.netflow_datagrams_processed);
    let (series_queue_depth, series_queue_capacity) = match s
        .series_queue
        .as_ref()
        .and_then(tokio::sync::mpsc::WeakSender::upgrade)
    {
        Some(tx) => (
            (tx.max_capacity() - tx.capacity()) as u64,
            tx.max_capacity(),
        ),
        None => (0, 0),
    };
    prom::MetricsView {
        flow_latency: s.metrics.flow_inference_latency.snapshot(),
        series_latency: s.metrics.series_inference_latency.snapshot(),
        detect_latency: s.metrics.http_detect_latency.snapshot(),
        counters,
        exporters: s.exporters.lock().map(|e| e.clone()).unwrap_or_default(),
        snmp_targets: s.snmp_board.lock().map(|b| b.clone()).unwrap_or_default(),
        interfaces: s
            .scoreboard
            .interfaces()
            .into_iter()
            .map(|((target, if_name), rates, error)| prom::InterfaceView {
                target,
                if_name,
                in_bps: rates.and_then(|r| r.1),
                out_bps: rates.and_then(|r| r.2),
                error,
            })
            .collect(),
        outbox_len: s.store.outbox_len(),
        netflow_queue_depth,
        netflow_queue_capacity: s.netflow_queue_capacity,
        series_queue_depth,
        series_queue_capacity,
        uptime_s: s.started.elapsed().as_secs_f64(),
        models: s
            .models
            .iter()
            .filter(|m| m.state == "active")
            .map(|m| (m.detector.clone(), m.name.clone(), m.version.clone()))
            .collect(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let text = prom::render(&metrics_view(&s));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn models(State(s): State<AppState>) -> Response {
    Json(serde_json::json!({ "models": &*s.models })).into_response()
}

/// Alerts returned per page at most.
pub const MAX_ALERTS_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    since: Option<String>,
    until: Option<String>,
    severity: Option<String>,
    detector: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn alerts(
    State(s): State<AppState>,
    Checked(q): Checked<AlertsQuery>,
) -> Result<Response, BadQuery> {
    let (since, until) = query::time_range(
        q.since.as_deref(),
        q.until.as_deref(),
        Duration::from_secs(100 * 365 * 86_400),
        crate::now_ms(),
    )?;
    query::one_of("severity", q.severity.as_deref(), &["high", "medium"])?;
    query::one_of(
        "detector",
        q.detector.as_deref().map(canonical_detector),
        &[FLOW_DETECTOR, SERIES_DETECTOR],
    )?;
    let limit = query::limit(q.limit, 100, MAX_ALERTS_PAGE)?;
    let cursor = query::cursor(q.cursor.as_deref())?;
    let store = s.store.clone();
    let (severity, detector) = (q.severity, q.detector);
    let page = tokio::task::spawn_blocking(move || {
        store.alerts_page(since, until, cursor, limit, |a: &Alert| {
            severity.as_deref().is_none_or(|x| a.severity == x)
                && detector
                    .as_deref()
                    .is_none_or(|x| canonical_detector(&a.detector) == canonical_detector(x))
        })
    })
    .await;
    Ok(match page {
        Ok(Ok((alerts, next))) => Json(serde_json::json!({
            "alerts": alerts,
            "next_cursor": next.map(|c| query::encode_cursor(&c)),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    since: Option<String>,
    until: Option<String>,
}

fn histogram_json(counts: &[u64]) -> serde_json::Value {
    serde_json::json!({
        "log10_min": scoreboard::LOG_MIN,
        "bins_per_decade": scoreboard::BINS_PER_DECADE,
        "counts": counts,
    })
}

fn threshold_of(s: &AppState, detector: &str) -> Option<f32> {
    s.models
        .iter()
        .find(|m| m.detector == detector)
        .map(|m| m.threshold)
}

/// Minutes of flow summaries the top talkers are summed over.
const TALKER_WINDOW: Duration = Duration::from_secs(300);

/// A source host summed over the last flow summaries.
#[derive(Debug, Default, Serialize)]
struct Talker {
    addr: String,
    bytes: u64,
    flows: u64,
    anomalous: u64,
}

/// The `n` busiest sources by bytes in the flow summaries since `since_ms`.
fn top_talkers(
    store: &Store,
    since_ms: u64,
    n: usize,
) -> Result<Vec<Talker>, crate::sinks::history::HistoryError> {
    let mut sum: BTreeMap<String, Talker> = BTreeMap::new();
    for f in store
        .history()
        .flow_summaries(&TimeRange::since(since_ms, 10_000))?
    {
        for h in f.top_sources {
            let t = sum.entry(h.addr.clone()).or_default();
            t.bytes += h.bytes;
            t.flows += h.flows;
            t.anomalous += h.anomalous;
        }
    }
    let mut v: Vec<Talker> = sum
        .into_iter()
        .map(|(addr, t)| Talker { addr, ..t })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.addr.cmp(&b.addr)));
    v.truncate(n);
    Ok(v)
}

async fn history_flows(
    State(s): State<AppState>,
    Checked(q): Checked<RangeQuery>,
) -> Result<Response, BadQuery> {
    let (since, until) = query::time_range(
        q.since.as_deref(),
        q.until.as_deref(),
        Duration::from_secs(900),
        crate::now_ms(),
    )?;
    let store = s.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let range = TimeRange {
            from_ms: since,
            to_ms: until,
            limit: 10_000,
        };
        let summaries = store
            .history()
            .scores(&range, Some(crate::records::FLOW_DETECTOR))?;
        let talkers_since = crate::now_ms().saturating_sub(TALKER_WINDOW.as_millis() as u64);
        Ok::<_, crate::sinks::history::HistoryError>((
            summaries,
            top_talkers(&store, talkers_since, 10)?,
        ))
    })
    .await;
    let (summaries, talkers) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, "store", e)),
        Err(e) => return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)),
    };
    let (flow_hist, _) = s.scoreboard.histograms();
    Ok(Json(serde_json::json!({
        "since_ms": since,
        "until_ms": until,
        "threshold": threshold_of(&s, crate::records::FLOW_DETECTOR),
        "points": s.scoreboard.flow_points(since, until)
            .iter()
            .map(|p| serde_json::json!([p.ts_ms, p.flows, p.anomalous, p.max_error, p.mean_error]))
            .collect::<Vec<_>>(),
        "summaries": summaries,
        "histogram": histogram_json(&flow_hist),
        "top_talkers": talkers,
    }))
    .into_response())
}

async fn history_interfaces(State(s): State<AppState>) -> Response {
    let store = s.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.series_names()).await;
    let mut names: Vec<(String, String)> = match stored {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    };
    let live = s.scoreboard.interfaces();
    for (k, _, _) in &live {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names.sort();
    let list: Vec<_> = names
        .into_iter()
        .map(|(target, if_name)| {
            let last = live
                .iter()
                .find(|(k, _, _)| k.0 == target && k.1 == if_name)
                .and_then(|(_, _, e)| *e);
            serde_json::json!([target, if_name, last])
        })
        .collect();
    Json(serde_json::json!({ "interfaces": list })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceQuery {
    target: String,
    if_name: String,
    since: Option<String>,
    until: Option<String>,
}

/// Stored samples returned per request at most (the newest are kept).
pub const MAX_SAMPLES: usize = 20_000;

async fn history_interface(
    State(s): State<AppState>,
    Checked(q): Checked<InterfaceQuery>,
) -> Result<Response, BadQuery> {
    let (since, until) = query::time_range(
        q.since.as_deref(),
        q.until.as_deref(),
        Duration::from_secs(6 * 3600),
        crate::now_ms(),
    )?;
    let store = s.store.clone();
    let (target, if_name) = (q.target.clone(), q.if_name.clone());
    let read = tokio::task::spawn_blocking(move || {
        let samples = store.series(&target, &if_name, since, until)?;
        let (alerts, _) = store.alerts_page(since, until, None, 200, |a: &Alert| {
            a.subject
                .interface()
                .is_some_and(|i| i.target == target && i.if_name == if_name)
        })?;
        let range = TimeRange {
            from_ms: since,
            to_ms: until,
            limit: MAX_SAMPLES,
        };
        let scores = store
            .history()
            .scores_of(
                &range,
                crate::records::SERIES_DETECTOR,
                &format!("{target}/{if_name}"),
            )
            .map_err(crate::sinks::store::StoreError::from)?;
        Ok::<_, crate::sinks::store::StoreError>((samples, alerts, scores))
    })
    .await;
    let (mut samples, alerts, scores) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, "store", e)),
        Err(e) => return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)),
    };
    let truncated = samples.len() > MAX_SAMPLES;
    if truncated {
        samples.drain(..samples.len() - MAX_SAMPLES);
    }
    let samples: Vec<_> = samples
        .iter()
        .map(|x| serde_json::json!([x.ts_ms, x.in_bps, x.out_bps]))
        .collect();
    let (_, series_hist) = s.scoreboard.histograms();
    Ok(Json(serde_json::json!({
        "target": q.target,
        "if_name": q.if_name,
        "since_ms": since,
        "until_ms": until,
        "threshold": threshold_of(&s, crate::records::SERIES_DETECTOR),
        "samples": samples,
        "samples_truncated": truncated,
        "scores": scores
            .iter()
            .map(|x| serde_json::json!([x.ts_ms, x.max_error, x.anomalous > 0]))
            .collect::<Vec<_>>(),
        "alerts": alerts,
        "histogram": histogram_json(&series_hist),
    }))
    .into_response())
}

async fn detect(State(s): State<AppState>, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let bytes = match axum::body::to_bytes(body, detect::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                detect::DetectError::TooLarge,
            )
        }
    };
    let req = match detect::parse_detect(&bytes) {
        Ok(r) => r,
        Err(e) => {
            let status = if e == detect::DetectError::TooLarge {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            s.metrics.add(&s.metrics.http_bad_requests, 1);
            return error(status, e.code(), &e);
        }
    };
    let scorer = s.scorer.clone();
    let reply = tokio::task::spawn_blocking(move || scorer.score(&req)).await;
    let r = match reply {
        Ok(Ok(reply)) => Json(reply).into_response(),
        Ok(Err(e @ detect::DetectError::WrongSchema { .. })) => {
            s.metrics.add(&s.metrics.http_bad_requests, 1);
            error(StatusCode::BAD_REQUEST, e.code(), &e)
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    };
    s.metrics.http_detect_latency.observe(started.elapsed());
    r
}
