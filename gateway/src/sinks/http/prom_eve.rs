//! The EVE input's counters on `/metrics` (docs/eve.md, docs/operations.md), kept beside
//! `prom.rs` so that file stays small.

use crate::metrics::MetricsSnapshot;

/// `(name, value, help)` of each EVE counter.
pub(super) fn counters(c: &MetricsSnapshot) -> [(&'static str, u64, &'static str); 15] {
    [
        ("eve_lines_total", c.eve_lines, "EVE lines read."),
        (
            "eve_events_total",
            c.eve_events,
            "EVE lines parsed into events.",
        ),
        (
            "eve_skipped_oversize_total",
            c.eve_skipped_oversize,
            "EVE lines skipped: longer than eve.max_line_bytes.",
        ),
        (
            "eve_skipped_not_json_total",
            c.eve_skipped_not_json,
            "EVE lines skipped: not JSON (cut or torn writes).",
        ),
        (
            "eve_skipped_not_object_total",
            c.eve_skipped_not_object,
            "EVE lines skipped: JSON but not an object.",
        ),
        (
            "eve_skipped_missing_field_total",
            c.eve_skipped_missing_field,
            "EVE lines skipped: no timestamp or event_type.",
        ),
        (
            "eve_skipped_bad_timestamp_total",
            c.eve_skipped_bad_timestamp,
            "EVE lines skipped: timestamp not understood.",
        ),
        (
            "eve_skipped_unknown_type_total",
            c.eve_skipped_unknown_type,
            "EVE lines skipped: unknown event_type.",
        ),
        (
            "eve_skipped_bad_field_total",
            c.eve_skipped_bad_field,
            "EVE lines skipped: a field of the wrong type.",
        ),
        (
            "eve_filtered_total",
            c.eve_filtered,
            "EVE events dropped by the filters.",
        ),
        (
            "eve_alerts_forwarded_total",
            c.eve_alerts_forwarded,
            "Suricata alerts forwarded as netwarden alerts.",
        ),
        (
            "eve_alerts_deduplicated_total",
            c.eve_alerts_deduplicated,
            "Alerts not published: another detector alerted on the flow.",
        ),
        (
            "eve_flow_records_total",
            c.eve_flow_records,
            "EVE flow records handed to the flow pipeline.",
        ),
        (
            "eve_window_late_total",
            c.eve_window_late,
            "EVE events behind a window's watermark (dropped).",
        ),
        (
            "eve_rotations_total",
            c.eve_rotations,
            "EVE file rotations followed (rename or copytruncate).",
        ),
    ]
}
