//! History retention on its own thread: dropping a sled tree and measuring the directory can
//! block, and must not stall the pipelines.

use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::sinks::store::Store;

/// Runs history retention every `every` until the shutdown signal.
pub(super) fn retention_thread(
    store: &Store,
    metrics: &Metrics,
    every: Duration,
    mut stop: Shutdown,
) {
    let mut last: Option<Instant> = None;
    while !stop.check() {
        if last.is_none_or(|t| t.elapsed() >= every) {
            match store.history().enforce(crate::now_ms()) {
                Ok(r) if r.dropped_age + r.dropped_size > 0 => tracing::info!(
                    dropped_age = r.dropped_age,
                    dropped_size = r.dropped_size,
                    disk_bytes = r.disk_bytes,
                    live_bytes = r.live_bytes,
                    "History retention dropped old buckets"
                ),
                Ok(_) => {}
                Err(e) => {
                    metrics.add(&metrics.history_retention_errors, 1);
                    tracing::warn!(error = %e, "History retention failed");
                }
            }
            last = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
