//! Process-wide counters. Registered once, bumped with relaxed atomics on hot paths; per-exporter
//! counters live with the decoder (single-threaded) and are snapshotted with these.
//!
//! Until the HTTP API lands they are published in the MQTT heartbeat and written to
//! `<data_dir>/stats.json` every second (see docs/operations.md).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Global counters; see docs/operations.md for what each means.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
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
);

impl Metrics {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
