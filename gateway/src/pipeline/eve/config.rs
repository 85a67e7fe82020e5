//! The rules of `[eve]`: which event types are handled, filters (`[[eve.filters]]`), window
//! aggregations (`[[eve.windows]]`), and whether alerts and flows are forwarded.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Event type the rule applies to, or `*` for all.
    pub event_type: String,
    /// `keep` (only matching events of the type pass) or `drop` (matching events are dropped).
    pub action: String,
    /// Dotted field path (`dns.rrname`, `alert.signature_id`, `src_ip`).
    pub field: String,
    /// Values that match (compared as text; `*suffix` and `prefix*` allowed).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub name: String,
    pub event_type: String,
    /// Field the events are grouped by (`dhcp.id`: the transaction id).
    pub key: String,
    /// Tumbling window length in event time (default 1800).
    pub window_secs: Option<u64>,
    /// How far behind the newest event time an event may be and still count (default 300).
    pub watermark_secs: Option<u64>,
    /// Fields whose maximum is kept (IP addresses compare as addresses, the rest as text).
    #[serde(default)]
    pub max: Vec<String>,
    /// Publish results on MQTT (`<prefix>/eve/windows/<name>`) as well as storing them.
    pub publish: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterAction {
    Keep,
    Drop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub event_type: String,
    pub action: FilterAction,
    pub field: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub name: String,
    pub event_type: String,
    pub key: String,
    pub window: Duration,
    pub watermark: Duration,
    pub max: Vec<String>,
    pub publish: bool,
}

/// A source network excluded from everything (`eve.exclude_sources`): an address or CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse().ok().filter(|&n| n <= max)?,
            None => max,
        };
        Some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The validated rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveRules {
    /// Only these event types are handled (empty: all).
    pub event_types: Vec<String>,
    pub exclude_sources: Vec<Net>,
    pub filters: Vec<Filter>,
    pub windows: Vec<WindowSpec>,
    /// Suricata `alert` events become netwarden alerts.
    pub alerts: bool,
    /// `flow`/`netflow` events feed the flow pipeline.
    pub flows: bool,
    /// Suricata's repeats of one signature on one flow within this are folded into one alert.
    pub dedupe_window: Duration,
}

impl Default for EveRules {
    fn default() -> Self {
        EveRules {
            event_types: Vec::new(),
            exclude_sources: Vec::new(),
            filters: Vec::new(),
            windows: Vec::new(),
            alerts: true,
            flows: true,
            dedupe_window: Duration::from_secs(60),
        }
    }
}

/// Checks the rules; every problem goes to `problem`.
#[allow(clippy::too_many_arguments)]
pub fn validate_rules(
    event_types: &[String],
    exclude_sources: &[String],
    filters: &[RawFilter],
    windows: &[RawWindow],
    alerts: Option<bool>,
    flows: Option<bool>,
    dedupe_secs: Option<u64>,
    problem: &mut impl FnMut(&str, String),
) -> EveRules {
    let known = |t: &str| t == "*" || crate::records::eve::EVENT_TYPES.contains(&t);
    let mut r = EveRules::default();
    for t in event_types {
        if !known(t) {
            problem(
                "eve.event_types",
                format!("{t:?} is not a Suricata event type"),
            );
        }
    }
    r.event_types = event_types.to_vec();
    for s in exclude_sources {
        match Net::parse(s) {
            Some(n) => r.exclude_sources.push(n),
            None => problem(
                "eve.exclude_sources",
                format!("{s:?} is not an address or CIDR"),
            ),
        }
    }
    for (i, f) in filters.iter().enumerate() {
        let key = |k: &str| format!("eve.filters[{i}].{k}");
        if !known(&f.event_type) {
            problem(
                &key("event_type"),
                format!("{:?} is not a Suricata event type", f.event_type),
            );
        }
        let action = match f.action.as_str() {
            "keep" => FilterAction::Keep,
            "drop" => FilterAction::Drop,
            a => {
                problem(
                    &key("action"),
                    format!("{a:?} is neither \"keep\" nor \"drop\""),
                );
                FilterAction::Drop
            }
        };
        if f.field.is_empty() {
            problem(&key("field"), "must not be empty".into());
        }
        r.filters.push(Filter {
            event_type: f.event_type.clone(),
            action,
            field: f.field.clone(),
            values: f.values.clone(),
        });
    }
    for (i, w) in windows.iter().enumerate() {
        let key = |k: &str| format!("eve.windows[{i}].{k}");
        if w.name.is_empty() || w.name.contains(['/', '+', '#']) {
            problem(&key("name"), "must be a non-empty MQTT topic level".into());
        }
        if !known(&w.event_type) || w.event_type == "*" {
            problem(
                &key("event_type"),
                format!("{:?} is not a Suricata event type", w.event_type),
            );
        }
        if w.key.is_empty() {
            problem(&key("key"), "must not be empty".into());
        }
        let window = w.window_secs.unwrap_or(1800);
        if window == 0 {
            problem(&key("window_secs"), "must be at least 1".into());
        }
        r.windows.push(WindowSpec {
            name: w.name.clone(),
            event_type: w.event_type.clone(),
            key: w.key.clone(),
            window: Duration::from_secs(window.max(1)),
            watermark: Duration::from_secs(w.watermark_secs.unwrap_or(300)),
            max: w.max.clone(),
            publish: w.publish.unwrap_or(false),
        });
    }
    r.alerts = alerts.unwrap_or(true);
    r.flows = flows.unwrap_or(true);
    r.dedupe_window = Duration::from_secs(dedupe_secs.unwrap_or(60));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let n = Net::parse("192.168.10.0/24").expect("net");
        assert!(n.contains("192.168.10.77".parse().expect("address")));
        assert!(!n.contains("192.168.11.1".parse().expect("address")));
        assert!(Net::parse("10.0.0.1")
            .expect("host")
            .contains("10.0.0.1".parse().expect("address")));
        assert!(Net::parse("::/0")
            .expect("all")
            .contains("fe80::1".parse().expect("address")));
        assert!(Net::parse("10.0.0.0/33").is_none());
    }
}
