//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).
//!
//! Rendering is a pure function of a [`MetricsView`] (copies taken under short locks), so the
//! scrape never holds a lock while formatting, and it can be benchmarked and tested alone.
//! Names: `netwarden_<what>_total` for counters, plain names for gauges; per-exporter series
//! carry an `exporter` label, per-interface ones `target` and `if_name`, per-target SNMP ones
//! `target`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metrics::{HistogramSnapshot, MetricsSnapshot, LATENCY_BOUNDS_US};
use crate::records::ExporterStats;
use crate::records::TargetStatus;

/// One interface's latest rates and window error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterfaceView {
    pub target: String,
    pub if_name: String,
    pub in_bps: Option<f64>,
    pub out_bps: Option<f64>,
    pub error: Option<f32>,
}

/// Everything one scrape shows.
#[derive(Debug, Clone, Default)]
pub struct MetricsView {
    pub counters: MetricsSnapshot,
    pub flow_latency: HistogramSnapshot,
    pub series_latency: HistogramSnapshot,
    pub detect_latency: HistogramSnapshot,
    pub exporters: BTreeMap<String, ExporterStats>,
    pub snmp_targets: BTreeMap<String, TargetStatus>,
    pub interfaces: Vec<InterfaceView>,
    pub outbox_len: usize,
    pub netflow_queue_depth: u64,
    pub netflow_queue_capacity: usize,
    pub series_queue_depth: u64,
    pub series_queue_capacity: usize,
    pub uptime_s: f64,
    /// (detector, name, version) of each active model.
    pub models: Vec<(String, String, String)>,
}

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP netwarden_{name} {help}\n# TYPE netwarden_{name} {kind}"
    );
}

fn scalar(out: &mut String, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "netwarden_{name} {v}");
}

/// A float as Prometheus reads it (`NaN`, `+Inf`).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    head(out, name, "histogram", help);
    for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
        let c = h.cumulative.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "netwarden_{name}_bucket{{le=\"{}\"}} {c}",
            *bound as f64 / 1e6
        );
    }
    let _ = writeln!(out, "netwarden_{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "netwarden_{name}_sum {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(out, "netwarden_{name}_count {}", h.count);
}

/// (name, help, getter) of a per-exporter counter.
type ExporterField = (&'static str, &'static str, fn(&ExporterStats) -> u64);
/// (name, help, getter) of a per-interface gauge.
type InterfaceField = (
    &'static str,
    &'static str,
    fn(&InterfaceView) -> Option<f64>,
);

/// Renders one scrape.
pub fn render(v: &MetricsView) -> String {
    let mut out = String::with_capacity(
        4096 + v.exporters.len() * 1400 + v.interfaces.len() * 260 + v.snmp_targets.len() * 400,
    );
    let c = &v.counters;
    let counters: [(&str, u64, &str); 39] = [
        (
            "netflow_datagrams_received_total",
            c.netflow_datagrams_received,
            "NetFlow/IPFIX datagrams read from the socket.",
        ),
        (
            "netflow_datagrams_dropped_queue_full_total",
            c.netflow_datagrams_dropped_queue_full,
            "Datagrams dropped because the pipeline queue was full.",
        ),
        (
            "netflow_receive_errors_total",
            c.netflow_receive_errors,
            "Socket receive errors.",
        ),
        (
            "flows_scored_total",
            c.flows_scored,
            "Flows scored by the flow model.",
        ),
        (
            "flows_anomalous_total",
            c.flows_anomalous,
            "Flows over the threshold.",
        ),
        (
            "alerts_raised_total",
            c.alerts_raised,
            "Flow alerts raised.",
        ),
        (
            "alerts_suppressed_dedupe_total",
            c.alerts_suppressed_dedupe,
            "Anomalous flows folded into an earlier alert.",
        ),
        (
            "alerts_store_errors_total",
            c.alerts_store_errors,
            "Alerts that could not be stored (not published).",
        ),
        (
            "outbox_dropped_full_total",
            c.outbox_dropped_full,
            "Alerts dropped from the full outbox (kept in history).",
        ),
        (
            "mqtt_published_total",
            c.mqtt_published,
            "MQTT publishes sent.",
        ),
        (
            "mqtt_acked_total",
            c.mqtt_acked,
            "MQTT publishes acknowledged by the broker.",
        ),
        (
            "mqtt_connects_total",
            c.mqtt_connects,
            "MQTT sessions established.",
        ),
        (
            "mqtt_connection_errors_total",
            c.mqtt_connection_errors,
            "MQTT connection errors.",
        ),
        ("inference_runs_total", c.inference_runs, "Flow model runs."),
        (
            "inference_errors_total",
            c.inference_errors,
            "Flow model runs that failed.",
        ),
        (
            "host_window_evictions_total",
            c.host_window_evictions,
            "Source hosts evicted from the feature windows.",
        ),
        (
            "snmp_polls_ok_total",
            c.snmp_polls_ok,
            "Successful SNMP polls.",
        ),
        (
            "snmp_polls_failed_total",
            c.snmp_polls_failed,
            "Failed SNMP polls.",
        ),
        (
            "snmp_timeouts_total",
            c.snmp_timeouts,
            "SNMP requests that timed out.",
        ),
        (
            "snmp_auth_errors_total",
            c.snmp_auth_errors,
            "SNMP authentication errors.",
        ),
        (
            "snmp_session_rebuilds_total",
            c.snmp_session_rebuilds,
            "SNMP sessions rebuilt.",
        ),
        (
            "snmp_stale_replies_total",
            c.snmp_stale_replies,
            "Late SNMP replies to abandoned requests.",
        ),
        (
            "snmp_samples_total",
            c.snmp_samples,
            "Interface rate samples produced.",
        ),
        (
            "snmp_samples_unknown_total",
            c.snmp_samples_unknown,
            "Rate samples with an unknown direction.",
        ),
        (
            "snmp_samples_dropped_queue_full_total",
            c.snmp_samples_dropped_queue_full,
            "Rate samples dropped because the series queue was full.",
        ),
        (
            "snmp_counter_wraps_total",
            c.snmp_counter_wraps,
            "Interface counter wraps handled.",
        ),
        (
            "snmp_agent_restarts_total",
            c.snmp_agent_restarts,
            "SNMP agent restarts seen.",
        ),
        (
            "snmp_series_store_errors_total",
            c.snmp_series_store_errors,
            "Rate samples that could not be stored.",
        ),
        (
            "series_windows_scored_total",
            c.series_windows_scored,
            "Interface windows scored by the series model.",
        ),
        (
            "series_windows_anomalous_total",
            c.series_windows_anomalous,
            "Interface windows over the threshold.",
        ),
        (
            "series_alerts_raised_total",
            c.series_alerts_raised,
            "Interface alerts raised.",
        ),
        (
            "series_alerts_suppressed_dedupe_total",
            c.series_alerts_suppressed_dedupe,
            "Anomalous windows folded into an earlier alert.",
        ),
        (
            "series_inference_errors_total",
            c.series_inference_errors,
            "Series model runs that failed.",
        ),
        (
            "series_restarts_total",
            c.series_restarts,
            "Interface windows restarted after gaps.",
        ),
        (
            "graph_edges_scored_total",
            c.graph_edges_scored,
            "Flow records scored as edges by the temporal graph detector.",
        ),
        (
            "graph_edges_anomalous_total",
            c.graph_edges_anomalous,
            "Edges whose pattern was not benign.",
        ),
        (
            "graph_endpoint_evictions_total",
            c.graph_endpoint_evictions,
            "Endpoints evicted from the full graph endpoint table.",
        ),
        (
            "graph_inference_runs_total",
            c.graph_inference_runs,
            "Graph model runs.",
        ),
        (
            "graph_inference_errors_total",
            c.graph_inference_errors,
            "Graph model runs that failed.",
        ),
    ];
    for (name, value, help) in counters {
        scalar(&mut out, name, "counter", help, value);
    }
    // Packet capture and ARP (prom_capture.rs), alerts outside the history.
    for (name, value, help) in super::prom_capture::counters(c) {
        scalar(&mut out, name, "counter", help, value);
    }
    // Suricata EVE input (docs/eve.md).
    let eve = super::prom_eve::counters(c);
    for (name, value, help) in eve {
        scalar(&mut out, name, "counter", help, value);
    }
    scalar(
        &mut out,
        "mqtt_connected",
        "gauge",
        "1 while the MQTT session is up.",
        c.mqtt_connected,
    );
    scalar(
        &mut out,
        "mqtt_acked_held",
        "gauge",
        "Acknowledged alerts held in the outbox for mqtt.ack_hold_secs.",
        c.mqtt_acked_held,
    );
    scalar(
        &mut out,
        "outbox_alerts",
        "gauge",
        "Alerts waiting for the broker's acknowledgement.",
        v.outbox_len,
    );
    scalar(
        &mut out,
        "netflow_queue_depth",
        "gauge",
        "Datagrams waiting between the socket and the pipeline.",
        v.netflow_queue_depth,
    );
    scalar(
        &mut out,
        "netflow_queue_capacity",
        "gauge",
        "Capacity of the NetFlow pipeline queue.",
        v.netflow_queue_capacity,
    );
    scalar(
        &mut out,
        "series_queue_depth",
        "gauge",
        "Rate samples waiting for the series thread.",
        v.series_queue_depth,
    );
    scalar(
        &mut out,
        "series_queue_capacity",
        "gauge",
        "Capacity of the series queue (0: SNMP off).",
        v.series_queue_capacity,
    );
    scalar(
        &mut out,
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        num(v.uptime_s),
    );
    histogram(
        &mut out,
        "flow_inference_seconds",
        "Flow model run time per batch.",
        &v.flow_latency,
    );
    histogram(
        &mut out,
        "series_inference_seconds",
        "Series model run time per run.",
        &v.series_latency,
    );
    histogram(
        &mut out,
        "http_detect_seconds",
        "POST /detect handling time.",
        &v.detect_latency,
    );

    head(&mut out, "model_info", "gauge", "Active models (value 1).");
    for (detector, name, version) in &v.models {
        out.push_str("netwarden_model_info{detector=\"");
        esc(detector, &mut out);
        out.push_str("\",name=\"");
        esc(name, &mut out);
        out.push_str("\",version=\"");
        esc(version, &mut out);
        out.push_str("\"} 1\n");
    }

    let exporter_fields: [ExporterField; 10] = [
        ("exporter_datagrams_total", "Datagrams per exporter.", |s| {
            s.datagrams
        }),
        (
            "exporter_records_total",
            "Flow records per exporter.",
            |s| s.records,
        ),
        (
            "exporter_records_incomplete_total",
            "Records without addresses per exporter.",
            |s| s.records_incomplete,
        ),
        (
            "exporter_template_misses_total",
            "Data sets that came before their template.",
            |s| s.template_misses,
        ),
        (
            "exporter_sequence_missing_total",
            "Records or datagrams missing by sequence number.",
            |s| s.sequence_missing,
        ),
        (
            "exporter_sequence_behind_total",
            "Datagrams whose sequence went backwards.",
            |s| s.sequence_behind,
        ),
        (
            "exporter_decode_errors_truncated_total",
            "Truncated datagrams.",
            |s| s.decode_errors_truncated,
        ),
        (
            "exporter_decode_errors_unsupported_version_total",
            "Datagrams of an unsupported version.",
            |s| s.decode_errors_unsupported_version,
        ),
        (
            "exporter_decode_errors_malformed_total",
            "Malformed datagrams.",
            |s| s.decode_errors_malformed,
        ),
        (
            "exporter_decode_errors_total",
            "All decode errors per exporter.",
            ExporterStats::decode_errors,
        ),
    ];
    for (name, help, get) in exporter_fields {
        head(&mut out, name, "counter", help);
        for (exporter, s) in &v.exporters {
            out.push_str("netwarden_");
            out.push_str(name);
            out.push_str("{exporter=\"");
            esc(exporter, &mut out);
            let _ = writeln!(out, "\"}} {}", get(s));
        }
    }

    head(
        &mut out,
        "snmp_target_up",
        "gauge",
        "1 when the target's last poll succeeded.",
    );
    for (name, t) in &v.snmp_targets {
        out.push_str("netwarden_snmp_target_up{target=\"");
        esc(name, &mut out);
        out.push_str("\",state=\"");
        esc(&t.state, &mut out);
        let _ = writeln!(out, "\"}} {}", u8::from(t.state == "ok"));
    }
    head(
        &mut out,
        "snmp_target_polls_failed_total",
        "counter",
        "Failed polls per target.",
    );
    for (name, t) in &v.snmp_targets {
        out.push_str("netwarden_snmp_target_polls_failed_total{target=\"");
        esc(name, &mut out);
        let _ = writeln!(out, "\"}} {}", t.polls_failed);
    }

    let iface_fields: [InterfaceField; 3] = [
        (
            "interface_in_bps",
            "Latest inbound rate per interface (bits/s).",
            |i| i.in_bps,
        ),
        (
            "interface_out_bps",
            "Latest outbound rate per interface (bits/s).",
            |i| i.out_bps,
        ),
        (
            "interface_window_error",
            "Latest series reconstruction error per interface.",
            |i| i.error.map(f64::from),
        ),
    ];
    for (name, help, get) in iface_fields {
        head(&mut out, name, "gauge", help);
        for i in &v.interfaces {
            let Some(x) = get(i) else { continue };
            out.push_str("netwarden_");
            out.push_str(name);
            out.push_str("{target=\"");
            esc(&i.target, &mut out);
            out.push_str("\",if_name=\"");
            esc(&i.if_name, &mut out);
            let _ = writeln!(out, "\"}} {}", num(x));
        }
    }
    out
}

/// A synthetic view with `exporters` exporters and `interfaces` interfaces (every seventh
/// with an unknown outbound rate), for the benchmark and tests.
pub fn synthetic_view(exporters: u64, interfaces: usize) -> MetricsView {
    let mut v = MetricsView::default();
    for e in 0..exporters {
        v.exporters.insert(
            format!("10.0.{}.{}:2055", e / 250, e % 250),
            ExporterStats {
                datagrams: 1000 + e,
                records: 30_000,
                template_misses: e,
                ..Default::default()
            },
        );
    }
    for i in 0..interfaces {
        v.interfaces.push(InterfaceView {
            target: format!("sw{}", i / 50),
            if_name: format!("ge-0/0/{}", i % 50),
            in_bps: Some(1e6 + i as f64),
            out_bps: if i % 7 == 0 { None } else { Some(2e6) },
            error: Some(0.001),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_valid_exposition_text() {
        let mut v = synthetic_view(100, 1000);
        v.interfaces[0].if_name = "we\"ird\\name".into();
        v.flow_latency.cumulative = vec![1; LATENCY_BOUNDS_US.len() + 1];
        v.flow_latency.count = 1;
        let text = render(&v);
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP netwarden_") || line.starts_with("# TYPE netwarden_"),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("name value");
            assert!(series.starts_with("netwarden_"), "{line}");
            assert!(
                value == "NaN" || value == "+Inf" || value.parse::<f64>().is_ok(),
                "{line}"
            );
        }
        assert!(
            text.contains("netwarden_exporter_template_misses_total{exporter=\"10.0.0.7:2055\"} 7")
        );
        assert!(text.contains("if_name=\"we\\\"ird\\\\name\""));
        assert!(text.contains("netwarden_flow_inference_seconds_bucket{le=\"0.00005\"} 1"));
        assert!(text.contains("netwarden_flow_inference_seconds_bucket{le=\"+Inf\"} 1"));
        // Unknown rates are left out, not written as 0.
        assert_eq!(
            text.matches("netwarden_interface_out_bps{").count(),
            1000 - 143
        );
    }
}
