//! `[eve]`: Suricata EVE input (files, sockets; `sources/eve/config.rs`) and what is done with
//! the events (filters, windows, alerts, flows; `pipeline/eve/config.rs`), one TOML section.

use std::path::PathBuf;

use serde::Deserialize;

use crate::pipeline::eve::config::{validate_rules, EveRules, RawFilter, RawWindow};
use crate::sources::eve::config::{validate_inputs, EveInputs, RawEveFile, RawEveSocket};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEve {
    #[serde(default)]
    pub files: Vec<RawEveFile>,
    #[serde(default)]
    pub sockets: Vec<RawEveSocket>,
    pub max_line_bytes: Option<usize>,
    pub poll_interval_ms: Option<u64>,
    /// Only these event types are handled (default: all).
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Events from these sources (addresses or CIDRs) are dropped.
    #[serde(default)]
    pub exclude_sources: Vec<String>,
    #[serde(default)]
    pub filters: Vec<RawFilter>,
    #[serde(default)]
    pub windows: Vec<RawWindow>,
    /// Forward Suricata alerts as netwarden alerts (default true).
    pub alerts: Option<bool>,
    /// Feed EVE flow/netflow records to the flow pipeline (default true).
    pub flows: Option<bool>,
    /// Repeats of a signature on a flow, and alerts of two detectors on one flow, within this
    /// are one alert (default 60).
    pub dedupe_window_secs: Option<u64>,
}

/// The validated section: nothing to read unless `inputs` names a file or socket.
#[derive(Debug, Clone, Default)]
pub struct EveConfig {
    pub inputs: EveInputs,
    pub rules: EveRules,
}

impl RawEve {
    /// Checks the section; `extra` is `run --eve PATH`.
    pub fn validate(
        &self,
        extra: Option<&PathBuf>,
        problem: &mut impl FnMut(&str, String),
    ) -> EveConfig {
        EveConfig {
            inputs: validate_inputs(
                &self.files,
                &self.sockets,
                self.max_line_bytes,
                self.poll_interval_ms,
                extra,
                problem,
            ),
            rules: validate_rules(
                &self.event_types,
                &self.exclude_sources,
                &self.filters,
                &self.windows,
                self.alerts,
                self.flows,
                self.dedupe_window_secs,
                problem,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_section_validates_and_every_problem_is_reported() {
        let raw: RawEve = toml::from_str(
            r#"
            files = [{ path = "/var/log/suricata/eve.json" }, { path = "/var/log/suricata/eve.*.json" }]
            sockets = [{ path = "/run/suricata/eve.sock", kind = "dgram" }]
            exclude_sources = ["192.168.10.0/24"]
            [[filters]]
            event_type = "dns"
            action = "drop"
            field = "dns.rrname"
            values = ["*.in-addr.arpa"]
            [[windows]]
            name = "dhcp"
            event_type = "dhcp"
            key = "dhcp.id"
            max = ["src_ip", "dhcp.hostname", "dhcp.client_ip", "dhcp.requested_ip"]
            publish = true
            "#,
        )
        .expect("toml");
        let mut problems = Vec::new();
        let c = raw.validate(None, &mut |k, m| problems.push(format!("{k}: {m}")));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.inputs.files.len(), 2);
        assert_eq!(c.rules.windows[0].window.as_secs(), 1800);
        let bad: RawEve = toml::from_str(
            r#"
            sockets = [{ path = "/x", kind = "seqpacket" }]
            exclude_sources = ["10.0.0.0/40"]
            event_types = ["dnsx"]
            [[filters]]
            event_type = "dns"
            action = "maybe"
            field = ""
            values = []
            "#,
        )
        .expect("toml");
        let mut problems = Vec::new();
        bad.validate(None, &mut |k, _| problems.push(k.to_string()));
        assert_eq!(
            problems,
            [
                "eve.sockets[0].kind",
                "eve.event_types",
                "eve.exclude_sources",
                "eve.filters[0].action",
                "eve.filters[0].field"
            ]
        );
    }
}
