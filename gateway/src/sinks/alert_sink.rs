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
    /// With an EVE source: one alert per flow across detectors (docs/eve.md), within the ms.
    ledger: Option<(crate::records::flow_ledger::FlowLedger, u64)>,
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
            ledger: None,
        }
    }

    /// Alerts of different detectors on the same flow within `window_ms` of each other are
    /// one alert: the later one is not stored or published (`eve_alerts_deduplicated`).
    pub fn with_ledger(
        mut self,
        ledger: crate::records::flow_ledger::FlowLedger,
        window_ms: u64,
    ) -> Self {
        self.ledger = Some((ledger, window_ms));
        self
    }

    /// The MQTT topic prefix alerts go under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stores `alerts` durably (one group commit), then wakes the publisher.
    pub fn on_alerts(&self, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let kept: Vec<Alert>;
        let alerts = match &self.ledger {
            None => alerts,
            Some((ledger, window_ms)) => {
                kept = alerts
                    .iter()
                    .filter(|a| {
                        let Some(f) = a.subject.flow() else {
                            return true;
                        };
                        match ledger.check_and_record(f, &a.detector, a.ts_ms, *window_ms) {
                            None => true,
                            Some(other) => {
                                self.metrics
                                    .eve_alerts_deduplicated
                                    .fetch_add(1, Ordering::Relaxed);
                                tracing::info!(id = %a.id, detector = %a.detector, first = %other,
                                    "Alert on a flow another detector already alerted on; not published");
                                false
                            }
                        }
                    })
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    return;
                }
                &kept[..]
            }
        };
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
