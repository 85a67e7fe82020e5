//! Tumbling windows in event time, per key, with a watermark (Spark Structured Streaming's
//! `groupBy(window(ts, "30 minutes"), key)` with `withWatermark`, on the box): the seed's DHCP
//! view is `key = dhcp.id`, `max = [src_ip, dhcp.hostname, dhcp.client_ip, dhcp.requested_ip]`.
//!
//! The watermark is the newest event time seen minus `watermark`. A window is emitted once the
//! watermark passes its end (append mode: each result once, final); an event whose window has
//! already ended before the watermark is late: dropped and counted. No I/O, no clock.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::records::eve::EveEvent;

use super::config::WindowSpec;

/// One window's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowResult {
    pub view: String,
    pub key: String,
    pub window_start_ms: u64,
    pub window_end_ms: u64,
    pub window_start: String,
    pub window_end: String,
    pub count: u64,
    /// Maximum of each configured field (absent when no event had it).
    pub max: BTreeMap<String, String>,
    pub last_ts_ms: u64,
    pub last_ts: String,
    /// False for a window emitted at shutdown before the watermark passed its end.
    pub complete: bool,
}

#[derive(Debug, Default)]
struct Acc {
    count: u64,
    max: BTreeMap<String, String>,
    last_ts_ms: u64,
}

/// The state of one configured window view.
#[derive(Debug)]
pub struct Windows {
    spec: WindowSpec,
    open: BTreeMap<(u64, String), Acc>,
    max_event_ms: u64,
    /// Open windows are bounded; past this the oldest is emitted early (counted as results).
    max_open: usize,
}

/// Max keys held open per view.
pub const MAX_OPEN: usize = 100_000;

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn greater(new: &str, old: &str) -> bool {
    match (new.parse::<IpAddr>(), old.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a > b,
        _ => new > old,
    }
}

impl Windows {
    pub fn new(spec: WindowSpec) -> Windows {
        Windows {
            spec,
            open: BTreeMap::new(),
            max_event_ms: 0,
            max_open: MAX_OPEN,
        }
    }

    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    fn watermark(&self) -> u64 {
        self.max_event_ms
            .saturating_sub(self.spec.watermark.as_millis() as u64)
    }

    /// Adds `e` (if it is of the view's type and has the key); results of windows the watermark
    /// has now passed go to `out`. Returns false when the event was late (dropped).
    pub fn observe(&mut self, e: &EveEvent, out: &mut Vec<WindowResult>) -> bool {
        if e.event_type != self.spec.event_type {
            return true;
        }
        let Some(key) = e.field(&self.spec.key) else {
            return true;
        };
        let len = self.spec.window.as_millis() as u64;
        let start = e.ts_ms - e.ts_ms % len;
        if start + len <= self.watermark() {
            return false;
        }
        let acc = self.open.entry((start, key)).or_default();
        acc.count += 1;
        acc.last_ts_ms = acc.last_ts_ms.max(e.ts_ms);
        for f in &self.spec.max {
            if let Some(v) = e.field(f) {
                match acc.max.get_mut(f) {
                    Some(old) if greater(&v, old) => *old = v,
                    Some(_) => {}
                    None => {
                        acc.max.insert(f.clone(), v);
                    }
                }
            }
        }
        self.max_event_ms = self.max_event_ms.max(e.ts_ms);
        self.emit_closed(out);
        while self.open.len() > self.max_open {
            if let Some(((s, k), acc)) = self.open.pop_first() {
                out.push(self.result(s, k, acc, false));
            }
        }
        true
    }

    fn emit_closed(&mut self, out: &mut Vec<WindowResult>) {
        let wm = self.watermark();
        let len = self.spec.window.as_millis() as u64;
        while let Some(entry) = self.open.first_entry() {
            if entry.key().0 + len > wm {
                break;
            }
            let ((s, k), acc) = entry.remove_entry();
            out.push(self.result(s, k, acc, true));
        }
    }

    /// Everything still open (shutdown), marked incomplete.
    pub fn flush(&mut self, out: &mut Vec<WindowResult>) {
        while let Some(((s, k), acc)) = self.open.pop_first() {
            out.push(self.result(s, k, acc, false));
        }
    }

    fn result(&self, start: u64, key: String, acc: Acc, complete: bool) -> WindowResult {
        let end = start + self.spec.window.as_millis() as u64;
        WindowResult {
            view: self.spec.name.clone(),
            key,
            window_start_ms: start,
            window_end_ms: end,
            window_start: rfc3339(start),
            window_end: rfc3339(end),
            count: acc.count,
            max: acc.max,
            last_ts_ms: acc.last_ts_ms,
            last_ts: rfc3339(acc.last_ts_ms),
            complete,
        }
    }
}
