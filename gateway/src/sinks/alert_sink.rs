//! The one path every detector's alerts take: stored durably (history and outbox, one group
//! commit), then the MQTT publisher is woken. None is published before it is on disk.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::records::Alert;
use crate::sinks::store::Store;

/// Stores alerts, then wakes the MQTT task.
#[derive(Clone)]
pub struct AlertSink {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    /// `<mqtt prefix>`; an alert goes to `<prefix>/alerts/<severity>`.
    prefix: String,
}

impl std::fmt::Debug for AlertSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSink")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl AlertSink {
    pub fn new(
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
        prefix: String,
    ) -> Self {
        AlertSink {
            store,
            metrics,
            wake,
            prefix,
        }
    }

    /// Stores `alerts` durably (one group commit), then wakes the publisher.
    pub fn on_alerts(&self, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let rows: Vec<(&Alert, String)> = alerts
            .iter()
            .map(|a| {
                (
                    a,
                    crate::records::topic::alert_topic(&self.prefix, &a.severity),
                )
            })
            .collect();
        match self.store.append_alerts(&rows) {
            Ok(dropped) => {
                if dropped > 0 {
                    self.metrics
                        .outbox_dropped_full
                        .fetch_add(dropped, Ordering::Relaxed);
                }
            }
            Err(e) => {
                self.metrics
                    .alerts_store_errors
                    .fetch_add(alerts.len() as u64, Ordering::Relaxed);
                tracing::error!(error = %e, alerts = alerts.len(), first = %alerts[0].id,
                    "Cannot store alerts; they are not published");
                return;
            }
        }
        for alert in alerts {
            tracing::warn!(id = %alert.id, severity = %alert.severity, detector = %alert.detector, "{}", alert.summary);
        }
        self.wake.notify_one();
    }
}
