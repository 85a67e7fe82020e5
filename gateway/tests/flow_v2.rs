//! A `flow-v2` bundle in the gateway: loaded by its manifest's schema, scored by the daemon's
//! own flow stage on a real exporter fixture, with both directions of each conversation paired
//! and every record scored exactly once (issue 18).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netwarden::metrics::Metrics;
use netwarden::models::flow_scorer::FlowSet;
use netwarden::models::signature::Trust;
use netwarden::models::Bundle;
use netwarden::pipeline::FlowPipeline;
use netwarden::records::Alert;
use netwarden::runtime::flow::FlowStage;
use netwarden::sources::netflow::export_pcap::read_datagrams;
use netwarden::sources::netflow::NetflowDecoder;
use netwarden_firmware::features_v2::FLOW_V2_FEATURES;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn v2_bundle() -> Bundle {
    let b = Bundle::load_dir(&repo("models/bundles/flow-ae-v2"), 64, &Trust::none())
        .expect("flow-v2 bundle loads");
    assert_eq!(b.detector.set(), FlowSet::V2);
    assert_eq!(b.manifest.features.schema, "flow-v2");
    b
}

/// Replays a NetFlow capture as the daemon's flow thread would, each datagram arriving at its
/// capture time; returns the alerts, the metrics and the pipeline's pairing counters.
fn replay(bundle: Bundle, pcap: &str) -> (Vec<Alert>, Arc<Metrics>, FlowStage) {
    let (datagrams, _) = read_datagrams(&repo(pcap), None).expect("fixture");
    let metrics = Arc::new(Metrics::default());
    let pipeline = FlowPipeline::new(bundle, "t", "t", Duration::from_secs(60), metrics.clone())
        .with_clock(|| 0);
    let mut stage = FlowStage::new(NetflowDecoder::new(16), pipeline);
    let mut alerts = Vec::new();
    for d in &datagrams {
        stage.pipeline.set_arrival(d.ts_ms);
        stage.ingest_datagram(d.src, &d.payload, &mut |a| alerts.push(a));
        stage.flush(&mut |a| alerts.push(a));
    }
    stage.pipeline.finish(&mut |a| alerts.push(a));
    (alerts, metrics, stage)
}

#[test]
fn a_flow_v2_bundle_scores_paired_records_and_names_the_scanner() {
    let (alerts, m, stage) = replay(
        v2_bundle(),
        "tests/data/netflow/softflowd-v5-scan-mixed.pcap",
    );
    let s = m.snapshot();
    // Every record is scored once: paired ones and the few left alone at the end.
    assert_eq!(s.flows_scored, 2446, "{s:?}");
    assert_eq!(s.flow_pairs_paired + s.flow_pairs_unpaired, 2446, "{s:?}");
    assert!(s.flow_pairs_paired > 2000, "{s:?}");
    assert_eq!(s.inference_errors, 0);
    let pairs = stage.pipeline.pair_stats().expect("flow-v2 pairing");
    assert_eq!(pairs.paired, s.flow_pairs_paired);
    // The scan is found, and the alert explains itself in flow-v2 terms.
    let scan = alerts
        .iter()
        .find(|a| {
            a.incident
                .as_ref()
                .is_some_and(|i| i.initiator == "10.213.0.1" && i.pattern == "port_scan")
        })
        .unwrap_or_else(|| panic!("no port_scan incident for the scanner in {alerts:#?}"));
    assert!(scan.score > scan.threshold);
    assert!(!scan.top_features.is_empty());
    for c in &scan.top_features {
        assert!(FLOW_V2_FEATURES.contains(&c.feature.as_str()), "{c:?}");
    }
}

/// The built-in bundle is the committed `flow-v2` one (`models/bundles/flow-ae-v2`), byte for
/// byte.
#[test]
fn the_built_in_bundle_is_the_flow_v2_one() {
    let builtin = Bundle::builtin(64).expect("built-in bundle");
    let committed = v2_bundle();
    assert_eq!(builtin.detector.set(), FlowSet::V2);
    assert_eq!(builtin.manifest.name, committed.manifest.name);
    assert_eq!(builtin.manifest.version, committed.manifest.version);
    assert_eq!(
        builtin.manifest.model.sha256,
        committed.manifest.model.sha256
    );
}

/// The `flow-v1` bundle (the built-in one before `flow-v2`, `models/bundles/flow-ae`) still
/// loads, reads 8 values and pairs nothing.
#[test]
fn flow_v1_bundles_keep_loading_and_skip_pairing() {
    let b = Bundle::load_dir(&repo("models/bundles/flow-ae"), 64, &Trust::none())
        .expect("flow-v1 bundle loads");
    assert_eq!(b.detector.set(), FlowSet::V1);
    assert_eq!(b.manifest.features.schema, "flow-v1");
    let (_, m, stage) = replay(b, "tests/data/netflow/softflowd-v5-scan-mixed.pcap");
    assert_eq!(m.snapshot().flows_scored, 2446);
    assert_eq!(m.snapshot().flow_pairs_paired, 0);
    assert!(stage.pipeline.pair_stats().is_none());
}

/// `netwarden features --pair-wait` is the gateway's `[detector] pair_wait`: with no wait a
/// record leaves before its reverse (softflowd sends it in the same datagram, just after), so
/// nothing pairs; the default 500 ms pairs most; nonsense is refused, naming the flag.
#[test]
fn features_pair_wait_is_a_setting_and_nonsense_is_refused() {
    let run = |wait: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_netwarden"))
            .args([
                "features",
                "--set",
                "flow-v2",
                "--out",
                "/dev/null",
                "--pair-wait",
                wait,
            ])
            .arg("--netflow-pcap")
            .arg(repo("tests/data/netflow/softflowd-v5-scan-mixed.pcap"))
            .output()
            .expect("run netwarden features")
    };
    let paired = |out: &std::process::Output| -> u64 {
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("flow-v2:"))
            .unwrap_or_else(|| panic!("no pairing line in {err}"));
        let n = line
            .split("flow-v2: ")
            .nth(1)
            .and_then(|r| r.split(' ').next());
        n.and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    assert_eq!(paired(&run("0ms")), 0);
    assert!(paired(&run("500ms")) > 2000);
    for bad in ["soon", "2h"] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--pair-wait") && err.contains(bad), "{err}");
    }
}
