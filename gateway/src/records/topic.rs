//! MQTT topic names of alerts (docs/mqtt.md). The daemon's publisher, the store's outbox rows
//! and `netwarden demo` all name topics through these, so they cannot drift apart.

/// The topic prefix when `mqtt.topic_prefix` is not set: `netwarden/<site>/<device>`.
pub fn default_prefix(site: &str, device: &str) -> String {
    format!("netwarden/{site}/{device}")
}

/// The topic an alert of `severity` is published on: `<prefix>/alerts/<severity>`.
pub fn alert_topic(prefix: &str, severity: &str) -> String {
    format!("{prefix}/alerts/{severity}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("hq", "r1", "high", "netwarden/hq/r1/alerts/high")]
    #[case("demo", "demo", "medium", "netwarden/demo/demo/alerts/medium")]
    fn default_topics_are_site_device_alerts_severity(
        #[case] site: &str,
        #[case] device: &str,
        #[case] severity: &str,
        #[case] want: &str,
    ) {
        assert_eq!(alert_topic(&default_prefix(site, device), severity), want);
    }

    #[test]
    fn a_configured_prefix_replaces_the_default() {
        assert_eq!(alert_topic("lab/x", "high"), "lab/x/alerts/high");
    }
}
