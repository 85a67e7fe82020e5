//! The packet capture's, the ARP rules' and the NetFlow template book's counters on `/metrics` (docs/operations.md,
//! docs/arp.md), and alerts published outside the history; kept beside `prom.rs` so that file
//! stays small.

use crate::metrics::MetricsSnapshot;

/// `(name, value, help)` of each capture, ARP and store counter.
#[rustfmt::skip]
pub(super) fn counters(c: &MetricsSnapshot) -> [(&'static str, u64, &'static str); 30] {
    [
        ("capture_frames_total", c.capture_frames, "Frames read from capture sources."),
        ("capture_packets_total", c.capture_packets, "IP packets metered into flows."),
        ("capture_bytes_total", c.capture_bytes, "Bytes of the metered IP packets."),
        ("capture_not_ip_total", c.capture_not_ip, "Frames that carried no IP packet."),
        ("capture_truncated_total", c.capture_truncated, "Frames cut short by the snap length."),
        ("capture_malformed_total", c.capture_malformed, "Frames whose headers did not parse."),
        ("capture_flows_created_total", c.capture_flows_created, "Flows the meter opened."),
        ("capture_flows_expired_idle_total", c.capture_flows_expired_idle, "Flows ended by the idle timeout."),
        ("capture_flows_expired_active_total", c.capture_flows_expired_active, "Flows ended by the active timeout."),
        ("capture_flows_evicted_total", c.capture_flows_evicted, "Flows ended early because the flow table was full."),
        ("capture_flows_flushed_total", c.capture_flows_flushed, "Flows ended by shutdown or the end of a pcap."),
        ("capture_records_total", c.capture_records, "Flow records queued for the pipeline."),
        ("capture_receive_errors_total", c.capture_receive_errors, "Failed reads from the capture socket."),
        ("capture_arp_events_total", c.capture_arp_events, "Notable ARP packets queued for the ARP rules."),
        ("alerts_outside_history_total", c.alerts_outside_history, "Alerts published without a history entry (retention was dropping their bucket)."),
        ("capture_arp_packets_total", c.capture_arp_packets, "ARP packets accounted by the capture's ARP meter."),
        ("capture_arp_unsolicited_replies_total", c.capture_arp_unsolicited_replies, "ARP replies that answered no request seen."),
        ("capture_arp_link_mismatch_total", c.capture_arp_link_mismatch, "ARP packets whose Ethernet source is not their sender MAC."),
        ("capture_arp_bindings_changed_total", c.capture_arp_bindings_changed, "IP-to-MAC bindings that moved to another MAC."),
        ("capture_arp_bindings_evicted_total", c.capture_arp_bindings_evicted, "Bindings pushed out of the full ARP table."),
        ("capture_arp_refused_total", c.capture_arp_refused, "ARP frames cut short or not Ethernet/IPv4."),
        ("arp_alerts_raised_total", c.arp_alerts_raised, "ARP alerts raised."),
        ("arp_alerts_suppressed_dedupe_total", c.arp_alerts_suppressed_dedupe, "ARP packets folded into a recent alert."),
        ("arp_flips_total", c.arp_flips, "Binding flips judged an attack."),
        ("arp_flips_restored_total", c.arp_flips_restored, "Contested bindings claimed back by their incumbent."),
        ("arp_rebinds_total", c.arp_rebinds, "Stale bindings that moved to another MAC (no alert)."),
        ("netflow_templates_restored_total", c.netflow_templates_restored, "NetFlow templates restored from the store at start."),
        ("netflow_templates_expired_total", c.netflow_templates_expired, "NetFlow templates dropped: not announced within netflow.template_ttl."),
        ("netflow_templates_refused_total", c.netflow_templates_refused, "NetFlow templates not kept: over netflow.max_templates_per_exporter."),
        ("netflow_templates_read_through_total", c.netflow_templates_read_through, "NetFlow templates handed to a source that had not announced them (restart, new port, other shard)."),
    ]
}
