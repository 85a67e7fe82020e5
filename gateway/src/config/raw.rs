//! The configuration as written: every field optional, unknown keys are errors. Each section's
//! raw struct and its validation live with the component that owns it (`*/config.rs`); this
//! file assembles them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Config, ConfigError, ConfigProblem, Overrides};
use crate::models::config::RawBundles;
use crate::models::fleet::RawFleet;
use crate::pipeline::arp::RawArp;
use crate::pipeline::config::{RawAlerting, RawDetector};
use crate::sinks::http::config::TOKEN_ENV;
use crate::sinks::http::RawHttp;
use crate::sinks::mqtt::RawMqtt;
use crate::sinks::store::config::{RawHistory, RawStore};
use crate::sources::netflow::config::RawNetflow;
use crate::sources::packets::config::RawCapture;
use crate::sources::snmp::RawSnmp;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub site: Option<String>,
    pub device: Option<String>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub netflow: RawNetflow,
    #[serde(default)]
    pub detector: RawDetector,
    #[serde(default)]
    pub alerting: RawAlerting,
    #[serde(default)]
    pub mqtt: RawMqtt,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub snmp: RawSnmp,
    #[serde(default)]
    pub bundles: RawBundles,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub history: RawHistory,
    #[serde(default)]
    pub capture: RawCapture,
    #[serde(default)]
    pub arp: RawArp,
    /// Fleet model delivery over MQTT (docs/fleet.md).
    #[serde(default)]
    pub fleet: RawFleet,
    #[serde(default)]
    pub learning: crate::pipeline::learning::config::RawLearning,
    #[serde(default)]
    pub samples: crate::pipeline::learning::config::RawSamples,
    /// `run --pcap FILE` (command line only).
    #[serde(skip)]
    pub pcap_override: Option<PathBuf>,
    /// Suricata EVE input and rules (docs/eve.md).
    #[serde(default)]
    pub eve: super::eve::RawEve,
    /// `run --eve PATH` (command line only).
    #[serde(skip)]
    pub eve_override: Option<PathBuf>,
}

const MAX_NAME: usize = 64;

impl RawConfig {
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.netflow_listen {
            self.netflow.listen = Some(v.clone());
        }
        if let Some(v) = &o.mqtt {
            self.mqtt.url = Some(v.clone());
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = Some(v.clone());
        }
        if let Some(v) = &o.site {
            self.site = Some(v.clone());
        }
        if let Some(v) = &o.device {
            self.device = Some(v.clone());
        }
        if let Some(v) = &o.flow_model {
            self.detector.flow_model = Some(v.clone());
        }
        if let Some(v) = &o.series_model {
            self.detector.series_model = Some(v.clone());
        }
        if let Some(v) = &o.capture {
            self.capture.interface = Some(v.clone());
        }
        self.pcap_override = o.pcap.clone();
        self.eve_override = o.eve.clone();
        if let Some(v) = &o.http_listen {
            self.http.listen = Some(v.clone());
        }
        if let Some(v) = &o.http_token_file {
            self.http.token_file = Some(v.clone());
        }
        if let Some(v) = &o.learn {
            self.learning.period = Some(v.clone());
        }
    }

    /// Checks everything and returns either the config or every problem found: each section
    /// is validated by the component that owns it, and their problems are listed together.
    pub fn validate(&self) -> Result<Config, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem {
                key: key.to_string(),
                message,
            })
        };

        let site = self.site.clone().unwrap_or_else(|| "default".to_string());
        check_topic_level("site", &site, &mut problem);
        let device = self
            .device
            .clone()
            .unwrap_or_else(super::default_device_name);
        check_topic_level("device", &device, &mut problem);

        let netflow = self.netflow.validate(&mut problem);
        let detector = self.detector.validate(&mut problem);
        let alerting = self.alerting.validate();
        let mqtt = self.mqtt.validate(&site, &device, &mut problem);
        let store = self.store.validate(&mut problem);
        let snmp = self.snmp.validate(&mut problem);
        let trust = self.bundles.validate(&mut problem);
        let http = self
            .http
            .validate(std::env::var(TOKEN_ENV).ok(), &mut problem);
        let history = self.history.validate(&mut problem);
        let capture = self
            .capture
            .validate(self.pcap_override.as_ref(), &mut problem);
        let arp = self.arp.validate(&mut problem);
        let learning = self.learning.validate(&mut problem);
        let samples = self.samples.validate(&mut problem);

        let fleet = self.fleet.validate(&mut problem);
        if fleet.is_some() && self.mqtt.url.is_none() {
            problem(
                "fleet.enabled",
                "fleet model delivery needs [mqtt] url".into(),
            );
        }
        if fleet.is_some() && trust.keys.is_empty() {
            problem(
                "fleet.enabled",
                "fleet model delivery needs at least one [bundles] trusted_keys entry".into(),
            );
        }
        let eve = self.eve.validate(self.eve_override.as_ref(), &mut problem);

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            fleet,
            site,
            device,
            data_dir: self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./netwarden-data")),
            netflow,
            detector,
            alerting,
            mqtt,
            store,
            snmp,
            trust,
            history,
            capture,
            http,
            arp,
            learning,
            samples,
            eve,
        })
    }
}

/// Site and device names become MQTT topic levels: no wildcards, separators or empties.
fn check_topic_level(key: &str, v: &str, problem: &mut impl FnMut(&str, String)) {
    if v.is_empty() || v.len() > MAX_NAME {
        problem(key, format!("must be 1 to {MAX_NAME} characters"));
    } else if v.contains(['/', '+', '#', '\0']) || v.chars().any(char::is_whitespace) {
        problem(
            key,
            format!("{v:?} may not contain '/', '+', '#' or spaces (it is an MQTT topic level)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn history_defaults_and_every_bad_value_reported() {
        let c = RawConfig::default().validate().expect("defaults");
        assert_eq!(c.history.max_age, Duration::from_secs(7 * 86_400));
        assert_eq!(c.history.max_disk_bytes, 256 << 20);
        let raw: RawConfig =
            toml::from_str("[history]\nmax_age = \"2d\"\nmax_disk_mb = 64\nbucket = \"30m\"")
                .expect("toml");
        let c = raw.validate().expect("valid");
        assert_eq!(c.history.max_age, Duration::from_secs(2 * 86_400));
        assert_eq!(c.history.max_disk_bytes, 64 << 20);
        assert_eq!(c.history.bucket, Duration::from_secs(1800));
        let raw: RawConfig =
            toml::from_str("[history]\nmax_age = \"soon\"\nmax_disk_mb = 1\nbucket = \"30d\"")
                .expect("toml");
        let keys: Vec<String> = raw
            .validate()
            .expect_err("invalid")
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            ["history.max_age", "history.bucket", "history.max_disk_mb"]
        );
    }

    #[test]
    fn defaults_need_no_file() {
        let c = RawConfig::default().validate().expect("defaults are valid");
        assert_eq!(c.netflow.listen, "0.0.0.0:2055".parse().expect("addr"));
        assert_eq!(c.site, "default");
        assert!(c.mqtt.is_none());
        assert_eq!(c.data_dir, PathBuf::from("./netwarden-data"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let raw: RawConfig = toml::from_str(
            r#"
            site = "a/b"
            [netflow]
            listen = "nonsense"
            queue_datagrams = 0
            [mqtt]
            url = "http://x"
            "#,
        )
        .expect("parses");
        let problems = raw.validate().expect_err("invalid");
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "site",
                "netflow.listen",
                "netflow.queue_datagrams",
                "mqtt.url"
            ]
        );
    }

    #[test]
    fn trusted_keys_are_parsed_and_bad_ones_named() {
        let good = "A".repeat(43) + "=";
        let raw: RawConfig = toml::from_str(&format!(
            "[bundles]\ntrusted_keys = [\"{good}\", \"short\"]\n"
        ))
        .expect("parses");
        let problems = raw.validate().expect_err("one bad key");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "bundles.trusted_keys[1]");
        let raw: RawConfig =
            toml::from_str(&format!("[bundles]\ntrusted_keys = [\"{good}\"]\n")).expect("parses");
        let c = raw.validate().expect("valid");
        assert_eq!(c.trust.keys.len(), 1);
        assert!(!c.trust.allow_unsigned);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<RawConfig>("[netflow]\nlisten_addr = \"1.2.3.4:5\"\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/netwarden.example.toml");
        // The example's secrets and CA live in /etc/netwarden once installed: put stand-ins
        // in a temporary directory instead.
        let dir = tempfile::tempdir().expect("tmp");
        let text = std::fs::read_to_string(&path)
            .expect("example")
            .replace("/etc/netwarden/", &format!("{}/", dir.path().display()));
        for f in ["mqtt-password", "snmp-auth", "snmp-priv", "snmp-community"] {
            std::fs::write(dir.path().join(f), "secret-12345\n").expect("write");
        }
        std::fs::write(
            dir.path().join("mqtt-ca.pem"),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let example = dir.path().join("netwarden.toml");
        std::fs::write(&example, text).expect("write");
        let raw = RawConfig::from_file(&example).expect("example parses");
        // The example names a model directory that exists only once installed; drop it here.
        let mut raw = raw;
        raw.detector.flow_model = None;
        raw.detector.series_model = None;
        raw.validate().expect("example validates");
    }
}
