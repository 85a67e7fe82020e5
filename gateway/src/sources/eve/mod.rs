//! Suricata EVE JSON: the files `eve-log` writes (followed like Fluent Bit's tail and Vector's
//! file source: positions in sled, rename rotation and copytruncate, partial lines, several
//! files) or the unix socket it writes to, each line parsed into an [`EveEvent`] or counted as
//! skipped per reason. What happens to the events (filters, windows, alerts, flows) is the
//! pipeline's (`pipeline/eve/`); `runtime/eve.rs` drives both (docs/eve.md).
//!
//! - [`parse`]: one line -> one event (every documented event type; DNS v1/v2/v3 normalised);
//! - [`tail`]: following a file, its position, rotations;
//! - [`socket`]: `unix_stream` / `unix_dgram` output;
//! - [`time`]: EVE timestamps;
//! - [`config`]: the inputs of `[eve]`.

pub mod config;
pub mod parse;
pub mod socket;
pub mod tail;
pub mod time;

pub use parse::{parse_line, Detail, EveEvent, SkipReason};

use std::sync::atomic::Ordering;

use crate::metrics::Metrics;

/// Counts a skipped line under its reason.
pub fn count_skip(m: &Metrics, r: SkipReason) {
    let c = match r {
        SkipReason::Oversize => &m.eve_skipped_oversize,
        SkipReason::NotJson => &m.eve_skipped_not_json,
        SkipReason::NotObject => &m.eve_skipped_not_object,
        SkipReason::MissingField => &m.eve_skipped_missing_field,
        SkipReason::BadTimestamp => &m.eve_skipped_bad_timestamp,
        SkipReason::UnknownType => &m.eve_skipped_unknown_type,
        SkipReason::BadField => &m.eve_skipped_bad_field,
    };
    c.fetch_add(1, Ordering::Relaxed);
}
