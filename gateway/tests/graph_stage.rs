//! The temporal graph detector in the daemon's flow stage (`[detector] graph = true`): the
//! committed softflowd v9 export of `tests/data/pcap/scan-mixed.pcap` (benign traffic and an
//! `nmap -sS -p 1-1000` of 10.213.0.2 from 10.213.0.1) goes through `FlowStage` as the flow
//! thread runs it. The graph raises edge alerts that name the scanner as the attacker and the
//! pattern `scan`, and folds the thousand probes into few alerts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use netwarden::metrics::Metrics;
use netwarden::models::graph_scorer::GraphBundle;
use netwarden::models::Bundle;
use netwarden::pipeline::graph::{column_names, GraphPipeline};
use netwarden::pipeline::FlowPipeline;
use netwarden::records::{Alert, GRAPH_DETECTOR};
use netwarden::runtime::flow::FlowStage;
use netwarden::sources::netflow::export_pcap::read_datagrams;
use netwarden::sources::netflow::NetflowDecoder;

#[test]
fn the_flow_stage_raises_scan_alerts_naming_the_scanner() {
    let metrics = Arc::new(Metrics::default());
    let window = Duration::from_secs(60);
    let flow = FlowPipeline::new(
        Bundle::builtin(512).expect("flow bundle"),
        "t",
        "t",
        window,
        metrics.clone(),
    )
    .with_clock(|| 0);
    let graph = GraphPipeline::new(
        GraphBundle::builtin(&column_names(), 512).expect("graph bundle"),
        4096,
        "t",
        "t",
        window,
        metrics.clone(),
    )
    .with_clock(|| 0);
    let mut stage = FlowStage::new(NetflowDecoder::new(16), flow).with_graph(graph);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/netflow/softflowd-v9-scan-mixed.pcap");
    let (datagrams, _) = read_datagrams(&path, None).expect("fixture");
    let mut alerts: Vec<Alert> = Vec::new();
    for d in &datagrams {
        stage.ingest_datagram(d.src, &d.payload, &mut |a| alerts.push(a));
    }
    stage.flush(&mut |a| alerts.push(a));
    let edges: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.detector == GRAPH_DETECTOR)
        .collect();
    let stats = stage.graph.as_ref().expect("graph").stats();
    assert_eq!(stats.edges, 2446, "every record is an edge");
    let c = metrics.snapshot();
    assert_eq!(c.graph_edges_scored, 2446);
    assert!(
        c.graph_edges_anomalous >= 1000,
        "the scan's probes and replies"
    );
    assert_eq!(c.graph_endpoint_evictions, stats.evictions);
    assert!(c.graph_inference_runs >= 1 && c.graph_inference_errors == 0);
    let scans: Vec<_> = edges
        .iter()
        .filter_map(|a| a.subject.edge())
        .filter(|e| e.pattern == "scan")
        .collect();
    assert!(!scans.is_empty(), "no scan alert: {edges:#?}");
    for e in &scans {
        assert!(e.attacker.starts_with("10.213.0.1:"), "{e:?}");
        assert!(e.target.starts_with("10.213.0.2:"), "{e:?}");
        assert_eq!(e.initiator, "attacker");
    }
    // A thousand probes and their replies fold into a handful of alerts, all about one
    // incident (the scanner opened the connections, the victim's replies count against it)
    // whose counts grow from one alert to the next.
    assert!(scans.len() <= 10, "{} scan alerts", scans.len());
    let incidents: Vec<_> = edges
        .iter()
        .filter(|a| a.subject.edge().is_some_and(|e| e.pattern == "scan"))
        .map(|a| {
            a.incident
                .clone()
                .expect("graph alerts belong to incidents")
        })
        .collect();
    let first = &incidents[0];
    assert_eq!(
        (
            first.update,
            first.pattern.as_str(),
            first.initiator.as_str()
        ),
        (0, "port_scan", "10.213.0.1")
    );
    assert_eq!(first.target.as_deref(), Some("10.213.0.2"));
    for (n, i) in incidents.iter().enumerate() {
        assert_eq!((i.id.as_str(), i.update), (first.id.as_str(), n as u32));
    }
    let last = incidents.last().expect("incident");
    assert!(last.flows >= 256, "{last:?}");
    assert!(last.ports_distinct >= 500, "{last:?}");
    let edges_told: u64 = edges
        .iter()
        .filter_map(|a| a.subject.edge())
        .filter(|e| e.pattern == "scan")
        .map(|e| e.edges)
        .sum();
    assert!(edges_told <= last.flows, "{edges_told} > {}", last.flows);
    // Other patterns are the model's false alerts on this network it never saw (a ping
    // between the two hosts named a reverse shell, the scanner's HTTP requests a brute force,
    // today): few incidents, and none of them a scan.
    let others: Vec<&Alert> = edges
        .iter()
        .copied()
        .filter(|a| a.subject.edge().is_some_and(|e| e.pattern != "scan"))
        .collect();
    let mut other_incidents: Vec<&str> = others
        .iter()
        .filter_map(|a| a.incident.as_ref().map(|i| i.id.as_str()))
        .collect();
    other_incidents.sort_unstable();
    other_incidents.dedup();
    let texts: Vec<&str> = others.iter().map(|a| a.summary.as_str()).collect();
    assert!(other_incidents.len() <= 3, "{texts:#?}");
}

/// The learning period covers the graph detector: while it runs only edges far beyond the
/// shipped threshold alert; at its end the edge threshold is fitted on the site's edges
/// (as surprises, `-ln P(benign)`) and applied; a resumed, finished learner applies at once.
#[test]
fn the_graph_detector_learns_its_edge_threshold() {
    use netwarden::pipeline::graph::detector::score_of_surprise;
    use netwarden::pipeline::learning::{Learner, LearningConfig};

    let graph = |metrics: Arc<Metrics>| {
        GraphPipeline::new(
            GraphBundle::builtin(&column_names(), 512).expect("graph bundle"),
            4096,
            "t",
            "t",
            Duration::from_secs(60),
            metrics,
        )
        .with_clock(|| 0)
    };
    let metrics = Arc::new(Metrics::default());
    let plain = graph(metrics.clone());
    let shipped = plain.threshold();
    let cfg = LearningConfig {
        min_samples: 0,
        ..LearningConfig::with_period(Duration::from_secs(5))
    };
    let learner = Learner::new(GRAPH_DETECTOR, cfg, plain.shipped_surprise());
    let mut g = graph(metrics).with_learning(learner);
    // While learning: 10x the shipped surprise, so a far higher edge score.
    let learning_threshold = g.threshold();
    assert!(
        learning_threshold > shipped && learning_threshold > 0.99,
        "{learning_threshold} vs {shipped}"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/netflow/softflowd-v9-scan-mixed.pcap");
    let (datagrams, _) = read_datagrams(&path, None).expect("fixture");
    let mut decoder = NetflowDecoder::new(16);
    let origin = netwarden::records::FlowOrigin::Exporter("127.0.0.1:9".parse().expect("addr"));
    let mut out = Vec::new();
    for d in &datagrams {
        out.clear();
        decoder.decode(d.src, &d.payload, &mut out);
        let records: Vec<_> = out.iter().map(|(_, r)| *r).collect();
        g.ingest_records(&origin, &records, &mut |_| {});
    }
    g.flush(&mut |_| {});
    assert!(g.take_learning_changed(), "the period ended");
    let status = g.learning().expect("learner").status().clone();
    let fitted = status.fitted.clone().expect("fitted");
    assert!(fitted.samples > 0 && fitted.threshold > 0.0, "{fitted:?}");
    // Never below the classifier's own boundary.
    let applied = score_of_surprise(fitted.threshold).max(shipped);
    assert!((g.threshold() - applied).abs() < 1e-6);
    // After a restart the saved, finished status applies before any edge.
    let cfg0 = LearningConfig::with_period(Duration::ZERO);
    let resumed = graph(Arc::new(Metrics::default())).with_learning(Learner::resume(
        cfg0,
        status,
        Vec::new(),
    ));
    assert!((resumed.threshold() - applied).abs() < 1e-6);
}
