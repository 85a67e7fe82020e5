//! Process-wide counters. Registered once, bumped with relaxed atomics on hot paths; per-exporter
//! counters live with the decoder (single-threaded) and are snapshotted with these.
//!
//! They are served on `GET /metrics` (Prometheus text, docs/http.md), published in the MQTT
//! heartbeat and written to `<data_dir>/stats.json` every second (see docs/operations.md).
//! Latency histograms are fixed-bucket atomics: one relaxed add per model run, never per record.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Global counters; see docs/operations.md for what each means.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// Flow model run time (one observation per batch).
            pub flow_inference_latency: Histogram,
            /// Series model run time (one observation per run).
            pub series_inference_latency: Histogram,
            /// `POST /detect` handling time, parse to reply.
            pub http_detect_latency: Histogram,
        }

        /// A point-in-time copy of [`Metrics`].
        #[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
        pub struct MetricsSnapshot {
            $(pub $name: u64,)*
        }

        impl Metrics {
            pub fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    netflow_datagrams_received,
    /// The pipeline fell behind and the socket-to-decoder queue was full.
    netflow_datagrams_dropped_queue_full,
    netflow_receive_errors,
    /// Datagrams the kernel dropped because the socket's receive buffer was full (the socket's
    /// `drops` in /proc/net/udp; Linux only, read once a second).
    netflow_datagrams_dropped_kernel,
    flows_scored,
    flows_anomalous,
    /// Anomalous flows folded into an alert already raised for the same source host.
    alerts_suppressed_dedupe,
    alerts_raised,
    alerts_store_errors,
    /// Alerts that left the outbox unpublished because it was full (still in local history).
    outbox_dropped_full,
    mqtt_published,
    mqtt_acked,
    mqtt_connects,
    mqtt_connection_errors,
    /// A gauge: 1 while the MQTT session is up (after ConnAck), 0 otherwise.
    mqtt_connected,
    /// A gauge: alerts the broker acknowledged that stay in the outbox until the connection
    /// has stayed up for `mqtt.ack_hold_secs` after their PUBACK.
    mqtt_acked_held,
    /// Datagrams the NetFlow shards decoded and handed to the flow thread.
    netflow_datagrams_processed,
    inference_runs,
    inference_errors,
    inference_micros_total,
    host_window_evictions,
    /// Flow/score summaries that could not be written to the history.
    history_store_errors,
    /// Retention passes that failed (the history may grow past its cap until one succeeds).
    history_retention_errors,
    snmp_polls_ok,
    /// Polls that failed (timeout after retries, authentication, agent error); see the
    /// per-target `snmp_targets` status for which and why.
    snmp_polls_failed,
    /// Single requests that timed out (each one is retried on a new session).
    snmp_timeouts,
    snmp_auth_errors,
    /// Sessions dropped and rebuilt after a timeout, a stale reply or an engine change.
    snmp_session_rebuilds,
    /// Late replies to an abandoned request (snmp2's `RequestIdMismatch`).
    snmp_stale_replies,
    /// SNMPv3 engine ID / boots / time changes that needed discovery again.
    snmp_engine_rediscoveries,
    snmp_samples,
    /// Samples with an unknown direction (restart, discontinuity, failed or late poll).
    snmp_samples_unknown,
    /// Samples lost because the queue to the series task was full.
    snmp_samples_dropped_queue_full,
    snmp_agent_restarts,
    snmp_counter_wraps,
    snmp_interfaces_renumbered,
    /// Samples that could not be written to the sled `series` tree.
    snmp_series_store_errors,
    /// Series pipeline (pipeline/series.rs, `SeriesCounters` has the meaning of each).
    series_unknown_steps,
    series_out_of_order_steps,
    series_restarts,
    series_interface_evictions,
    series_windows_scored,
    series_windows_anomalous,
    series_alerts_raised,
    series_alerts_suppressed_dedupe,
    series_inference_runs,
    series_inference_micros_total,
    series_inference_errors,
    /// Packet capture (`--capture IFACE`, `--pcap FILE`): frames read, and those metered.
    capture_frames,
    capture_packets,
    /// IP bytes metered (IP total length, as NetFlow counts).
    capture_bytes,
    /// Frames refused by the meter: not IPv4/IPv6 (ARP, LLDP, ...), cut short, or inconsistent.
    capture_not_ip,
    capture_truncated,
    capture_malformed,
    capture_flows_created,
    /// Flows ended by the idle or active timeout.
    capture_flows_expired_idle,
    capture_flows_expired_active,
    /// Flows pushed out of the full flow table (16,384 flows) to make room for a new one.
    capture_flows_evicted,
    /// Flows ended by shutdown or the end of a pcap file.
    capture_flows_flushed,
    /// Unidirectional flow records queued for the pipeline (one or two per flow).
    capture_records,
    capture_receive_errors,
    /// Alerts queued for publishing without a history entry, because retention was dropping
    /// their (old) history bucket as they were written (sinks/store/alerts.rs).
    alerts_outside_history,
    /// ARP on the capture path (docs/arp.md): packets the ARP meter accounted, by kind.
    capture_arp_packets,
    capture_arp_requests,
    capture_arp_replies,
    capture_arp_gratuitous,
    capture_arp_probes,
    /// Replies that answered no request seen within `arp.solicit_window_secs`.
    capture_arp_unsolicited_replies,
    /// ARP packets whose Ethernet source is not the sender MAC they carry.
    capture_arp_link_mismatch,
    capture_arp_bindings_new,
    /// An IP claimed by another MAC than the one it was bound to.
    capture_arp_bindings_changed,
    /// Bindings pushed out of the full table (`arp.bindings`).
    capture_arp_bindings_evicted,
    /// ARP frames cut short, or for other hardware/protocols than Ethernet/IPv4.
    capture_arp_refused,
    /// Notable ARP packets queued for the ARP rules.
    capture_arp_events,
    /// ARP rules (pipeline/arp): alerts raised and folded into a recent one.
    arp_alerts_raised,
    arp_alerts_suppressed_dedupe,
    /// Binding flips judged an attack, a return to the earlier MAC, or a stale binding moving
    /// (no alert for the last two).
    arp_flips,
    arp_flips_restored,
    arp_rebinds,
    /// Notable packets from an allow-listed MAC or IP (no alert).
    arp_allowed,
    /// Tracked MACs or contested bindings dropped from the rules' full tables.
    arp_state_evictions,
    /// Fleet model delivery (docs/fleet.md): records a second model scored beside the
    /// active one (shadow or watch), candidates promoted, promotions rolled back.
    fleet_shadow_scored,
    fleet_promotions,
    fleet_rollbacks,
    /// Complete sets received, sets refused (any check), fleet messages refused before
    /// assembly (bad topic, set manifest or chunk; the log names the reason).
    fleet_sets_received,
    fleet_sets_refused,
    fleet_messages_refused,
    /// Samples over MQTT (docs/fleet.md): requests taken, chunks sent and sent again,
    /// transfers acknowledged to the end or given up (no acks, or replaced), messages refused.
    samples_requests,
    samples_chunks_sent,
    samples_chunks_resent,
    samples_transfers_done,
    samples_transfers_abandoned,
    samples_messages_refused,
    /// Suricata EVE (`[eve]`, `--eve`; docs/eve.md): lines read, events parsed, and lines
    /// skipped per reason (never fatal).
    eve_lines,
    eve_events,
    eve_skipped_oversize,
    eve_skipped_not_json,
    eve_skipped_not_object,
    eve_skipped_missing_field,
    eve_skipped_bad_timestamp,
    eve_skipped_unknown_type,
    eve_skipped_bad_field,
    /// Events dropped by the per-type filters (`[[eve.filters]]`).
    eve_filtered,
    /// Suricata alerts forwarded as netwarden alerts, and those folded into an alert already
    /// raised for the same flow (by netwarden or by Suricata).
    eve_alerts_forwarded,
    eve_alerts_deduplicated,
    /// EVE `flow`/`netflow` records handed to the flow pipeline.
    eve_flow_records,
    /// Window aggregation: results emitted, and events behind the watermark (dropped).
    eve_window_results,
    eve_window_late,
    /// Files re-opened after rotation (rename or copytruncate) and read errors.
    eve_rotations,
    eve_read_errors,
    /// Temporal graph detector (`detector.graph`; pipeline/graph/): edges scored, edges whose
    /// pattern was not benign, endpoints evicted from the full endpoint table, model runs.
    graph_edges_scored,
    graph_edges_anomalous,
    graph_endpoint_evictions,
    graph_inference_runs,
    graph_inference_errors,
    graph_inference_micros_total,
    /// NetFlow v9/IPFIX templates kept across restarts (sources/netflow/templates.rs): restored
    /// at start, expired (not announced within `netflow.template_ttl`), refused (over
    /// `netflow.max_templates_per_exporter`), and handed to a parser that had not seen them (a
    /// restart, a new source port or another shard).
    netflow_templates_restored,
    netflow_templates_expired,
    netflow_templates_refused,
    netflow_templates_read_through,
    /// `flow-v2` pairing (pipeline/mod.rs, firmware features_v2): records emitted with their
    /// reverse direction, records emitted alone (wait over, end of input), waiting records
    /// pushed out alone by a full table or a second record of their direction, services
    /// evicted from the full service table.
    flow_pairs_paired,
    flow_pairs_unpaired,
    flow_pair_evictions,
    flow_service_evictions,
    /// HTTP requests refused for their content: a `POST /detect` body (bad JSON, shape, or rows
    /// of another schema than the active flow model's) or a bad `GET /samples` query.
    http_bad_requests,
);

/// Upper bounds of the latency buckets, in microseconds (`+Inf` is implicit).
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000,
];

/// A Prometheus-style latency histogram: per-bucket counts (not cumulative; summed when
/// rendered), a count and a sum. Lock-free; observing is a handful of relaxed adds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// A copy of a [`Histogram`]: cumulative bucket counts, as Prometheus wants them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Cumulative counts for each bound of [`LATENCY_BOUNDS_US`], then `+Inf`.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_us: u64,
}

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

impl Metrics {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_secs(5));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.sum_us, 5_000_101);
        assert_eq!(s.cumulative[0], 1, "50 us is in the 50 us bucket");
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[LATENCY_BOUNDS_US.len() - 1], 2);
        assert_eq!(s.cumulative[LATENCY_BOUNDS_US.len()], 3, "+Inf holds all");
    }
}
