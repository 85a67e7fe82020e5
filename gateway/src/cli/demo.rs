//! `netwarden demo`: replays a shipped capture (softflowd NetFlow v9 export of benign traffic
//! with an `nmap -sS` scan in the middle) through the whole pipeline — decoder, features, the
//! built-in model, alerting, the sled store — and prints the alerts it raises.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Metrics, MetricsSnapshot};
use crate::models::Bundle;
use crate::pipeline::FlowPipeline;
use crate::records::{Alert, ExporterStats};
use crate::runtime::flow::FlowStage;
use crate::sinks::store::Store;
use crate::sources::netflow::export_pcap::read_datagrams_from;
use crate::sources::netflow::NetflowDecoder;

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
    let mut on_alert = |a: Alert| {
        if let Err(e) =
            store.append_alert(&a, &format!("netwarden/demo/demo/alerts/{}", a.severity))
        {
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
