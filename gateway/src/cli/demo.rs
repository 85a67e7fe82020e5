//! `netwarden demo`: replays a shipped capture (softflowd NetFlow v9 export of benign traffic
//! with an `nmap -sS` scan in the middle) through the whole pipeline — decoder, features, the
//! built-in model, alerting, the sled store — and prints the alerts it raises.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::metrics::{Metrics, MetricsSnapshot};
use crate::models::{Bundle, Trust};
use crate::pipeline::FlowPipeline;
use crate::records::{topic, Alert, ExporterStats};
use crate::runtime::flow::FlowStage;
use crate::sinks::store::Store;
use crate::sources::netflow::export_pcap::read_datagrams_from;
use crate::sources::netflow::NetflowDecoder;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo's database here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs the demo with the built-in model and prints the alerts and a summary.
pub fn execute(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let bundle = crate::models::load_flow_bundle(None, 512, &Trust::none())?;
    println!(
        "Replaying {} through decoder, features, model {} {} (threshold {:.5}) and alerting\n",
        FIXTURE_NAME,
        bundle.manifest.name,
        bundle.manifest.version,
        bundle.manifest.threshold.value
    );
    let tmp;
    let dir = match args.data_dir {
        Some(d) => d,
        None => {
            tmp = TempDir::new("netwarden-demo")?;
            tmp.0.clone()
        }
    };
    let r = run(bundle, &dir)?;
    let mut out = std::io::stdout().lock();
    for a in &r.alerts {
        writeln!(out, "ALERT {} [{}] {}", a.id, a.severity, a.summary)?;
    }
    writeln!(
        out,
        "\n{} datagrams, {} flow records decoded, {} scored, {} anomalous, {} alert(s) raised ({} folded into them by de-duplication)",
        r.datagrams,
        r.totals.records,
        r.metrics.flows_scored,
        r.metrics.flows_anomalous,
        r.alerts.len(),
        r.metrics.alerts_suppressed_dedupe
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A temporary directory removed on drop (std has none; keeps tempfile out of the binary).
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            crate::now_ms()
        ));
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shipped fixture (see tests/data/README.md).
pub const FIXTURE: &[u8] =
    include_bytes!("../../../tests/data/netflow/softflowd-v9-scan-mixed.pcap");
pub const FIXTURE_NAME: &str = "softflowd-v9-scan-mixed.pcap";

#[derive(Debug)]
pub struct DemoResult {
    pub alerts: Vec<Alert>,
    pub datagrams: usize,
    pub totals: ExporterStats,
    pub metrics: MetricsSnapshot,
}

/// Runs the demo, storing alerts under `data_dir`.
pub fn run(bundle: Bundle, data_dir: &Path) -> anyhow::Result<DemoResult> {
    let (datagrams, _) = read_datagrams_from(FIXTURE, Path::new(FIXTURE_NAME), None)?;
    let store = Store::open(data_dir, 4 << 20, 100_000)?;
    let metrics = Arc::new(Metrics::default());
    let mut stage = FlowStage::new(
        NetflowDecoder::new(16),
        FlowPipeline::new(
            bundle,
            "demo",
            "demo",
            Duration::from_secs(60),
            metrics.clone(),
        ),
    );
    let mut alerts = Vec::new();
    let mut store_error = None;
    let prefix = topic::default_prefix("demo", "demo");
    let mut on_alert = |a: Alert| {
        if let Err(e) = store.append_alert(&a, &topic::alert_topic(&prefix, &a.severity)) {
            store_error.get_or_insert(e);
        }
        alerts.push(a);
    };
    for d in &datagrams {
        stage.ingest_datagram(d.src, &d.payload, &mut on_alert);
    }
    stage.flush(&mut on_alert);
    if let Some(e) = store_error {
        return Err(e.into());
    }
    Ok(DemoResult {
        alerts,
        datagrams: datagrams.len(),
        totals: stage.decoder.totals(),
        metrics: metrics.snapshot(),
    })
}
