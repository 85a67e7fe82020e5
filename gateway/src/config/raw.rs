//! The configuration as written: every field optional, unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    AlertingConfig, CaptureConfig, Config, ConfigError, ConfigProblem, DetectorConfig,
    NetflowConfig, Overrides, StoreConfig,
};
use crate::models::{PublicKey, Trust};
use crate::sinks::mqtt::RawMqtt;
use crate::sources::capture::CaptureTimeouts;
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
    pub http: crate::sinks::http::RawHttp,
    #[serde(default)]
    pub history: RawHistory,
    #[serde(default)]
    pub capture: RawCapture,
    /// `run --pcap FILE` (command line only).
    #[serde(skip)]
    pub pcap_override: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    /// Interface to capture packets on (needs root or CAP_NET_RAW).
    pub interface: Option<String>,
    /// A flow with no packet for this long ends (default 120).
    pub idle_timeout_secs: Option<u64>,
    /// A flow open this long ends; its next packet starts a new one (default 1800).
    pub active_timeout_secs: Option<u64>,
    /// Requested receive queue of the capture socket (default 8 MiB; capped by rmem_max).
    pub recv_buffer_bytes: Option<usize>,
}

/// `[history]`: how much history sled keeps (docs/operations.md, "History and retention").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    /// Oldest history kept, e.g. "7d" (humantime).
    pub max_age: Option<String>,
    /// Disk use of the data directory's database kept under this many MiB.
    pub max_disk_mb: Option<u64>,
    /// Width of one time bucket (one sled tree per kind), e.g. "1h".
    pub bucket: Option<String>,
    /// How often the flow and score summaries are written, e.g. "1m".
    pub summary_interval: Option<String>,
    /// Busiest source hosts listed in each flow summary.
    pub top_hosts: Option<usize>,
    /// How often retention runs, e.g. "30s".
    pub check_interval: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBundles {
    /// ed25519 public keys (base64 of the raw 32 bytes) whose signatures are trusted.
    pub trusted_keys: Option<Vec<String>>,
    /// Accept unsigned bundles even when keys are trusted (e.g. locally calibrated ones).
    pub allow_unsigned: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetflow {
    pub listen: Option<String>,
    pub recv_buffer_bytes: Option<usize>,
    pub queue_datagrams: Option<usize>,
    pub max_exporters: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetector {
    pub flow_model: Option<PathBuf>,
    pub batch_size: Option<usize>,
    /// A `series_lstm` bundle directory for the SNMP interface series.
    pub series_model: Option<PathBuf>,
    /// Seconds added to UTC for the series' hour and day-of-week features.
    pub series_utc_offset_secs: Option<i32>,
    /// One interface alert per interface per this many seconds of poll time (default 1800).
    pub series_dedupe_window_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    pub dedupe_window_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub cache_bytes: Option<u64>,
    pub outbox_max_alerts: Option<usize>,
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
        if let Some(v) = &o.http_listen {
            self.http.listen = Some(v.clone());
        }
        if let Some(v) = &o.http_token_file {
            self.http.token_file = Some(v.clone());
        }
    }

    /// Checks everything and returns either the config or every problem found.
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

        let listen = self.netflow.listen.as_deref().unwrap_or("0.0.0.0:2055");
        let listen = listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            problem(
                "netflow.listen",
                format!("{listen:?} is not an address:port ({e})"),
            );
            SocketAddr::from(([0, 0, 0, 0], 2055))
        });
        let queue_datagrams = positive(
            &mut problem,
            "netflow.queue_datagrams",
            self.netflow.queue_datagrams,
            8192,
        );
        let max_exporters = positive(
            &mut problem,
            "netflow.max_exporters",
            self.netflow.max_exporters,
            1024,
        );
        let recv_buffer_bytes = self.netflow.recv_buffer_bytes.unwrap_or(8 << 20);
        if recv_buffer_bytes < 65_536 {
            problem(
                "netflow.recv_buffer_bytes",
                format!("{recv_buffer_bytes} is below one datagram (65536)"),
            );
        }

        let batch_size = positive(
            &mut problem,
            "detector.batch_size",
            self.detector.batch_size,
            512,
        );
        if batch_size > 65_536 {
            problem(
                "detector.batch_size",
                format!("{batch_size} is more than 65536"),
            );
        }
        if let Some(dir) = &self.detector.flow_model {
            if !dir.join("manifest.json").is_file() {
                problem(
                    "detector.flow_model",
                    format!("{} has no manifest.json", dir.display()),
                );
            }
        }
        if let Some(dir) = &self.detector.series_model {
            if !dir.join("manifest.json").is_file() {
                problem(
                    "detector.series_model",
                    format!("{} has no manifest.json", dir.display()),
                );
            }
        }
        let series_utc_offset_secs = self.detector.series_utc_offset_secs.unwrap_or(0);
        if series_utc_offset_secs.abs() > 14 * 3600 {
            problem(
                "detector.series_utc_offset_secs",
                format!("{series_utc_offset_secs} is more than 14 hours from UTC"),
            );
        }
        let series_dedupe = self.detector.series_dedupe_window_secs.unwrap_or(1800);
        if series_dedupe == 0 {
            problem(
                "detector.series_dedupe_window_secs",
                "must be at least 1".to_string(),
            );
        }

        let dedupe = Duration::from_secs(self.alerting.dedupe_window_secs.unwrap_or(60));

        let mqtt = self.mqtt.validate(&site, &device, &mut problem);
        let outbox_max_alerts = positive(
            &mut problem,
            "store.outbox_max_alerts",
            self.store.outbox_max_alerts,
            100_000,
        );
        let cache_bytes = self.store.cache_bytes.unwrap_or(8 << 20);
        let snmp = self.snmp.validate(&mut problem);
        let mut trust = Trust {
            keys: Vec::new(),
            allow_unsigned: self.bundles.allow_unsigned.unwrap_or(false),
        };
        for (i, k) in self.bundles.trusted_keys.iter().flatten().enumerate() {
            match PublicKey::from_base64(k) {
                Ok(k) => trust.keys.push(k),
                Err(e) => problem(&format!("bundles.trusted_keys[{i}]"), e.to_string()),
            }
        }
        let http = self.http.validate(
            std::env::var(crate::sinks::http::config::TOKEN_ENV).ok(),
            &mut problem,
        );

        let history = self.history.validate(&mut problem);
        let capture = self.capture_config(&mut problem);

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            site,
            device,
            data_dir: self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./netwarden-data")),
            netflow: NetflowConfig {
                listen,
                recv_buffer_bytes,
                queue_datagrams,
                max_exporters,
            },
            detector: DetectorConfig {
                flow_model: self.detector.flow_model.clone(),
                series_model: self.detector.series_model.clone(),
                series_utc_offset_secs,
                series_dedupe: Duration::from_secs(series_dedupe),
                batch_size,
            },
            alerting: AlertingConfig {
                dedupe_window: dedupe,
            },
            mqtt,
            store: StoreConfig {
                cache_bytes,
                outbox_max_alerts,
            },
            snmp,
            trust,
            history,
            capture,
            http,
        })
    }

    fn capture_config(&self, problem: &mut impl FnMut(&str, String)) -> CaptureConfig {
        let defaults = CaptureTimeouts::default();
        let secs = |v: Option<u64>, default_ms: u64| v.map_or(default_ms, |s| s * 1000);
        let timeouts = CaptureTimeouts {
            idle_ms: secs(self.capture.idle_timeout_secs, defaults.idle_ms),
            active_ms: secs(self.capture.active_timeout_secs, defaults.active_ms),
        };
        if timeouts.idle_ms == 0 {
            problem(
                "capture.idle_timeout_secs",
                "must be at least 1".to_string(),
            );
        }
        if timeouts.active_ms == 0 {
            problem(
                "capture.active_timeout_secs",
                "must be at least 1".to_string(),
            );
        }
        if let Some(iface) = &self.capture.interface {
            if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ', '\0']) {
                problem(
                    "capture.interface",
                    format!("{iface:?} is not a Linux interface name"),
                );
            }
        }
        if let Some(p) = &self.pcap_override {
            if !p.is_file() {
                problem("--pcap", format!("{} is not a file", p.display()));
            }
        }
        CaptureConfig {
            interface: self.capture.interface.clone(),
            pcap: self.pcap_override.clone(),
            timeouts,
            recv_buffer_bytes: self.capture.recv_buffer_bytes.unwrap_or(8 << 20),
        }
    }
}

fn positive(
    problem: &mut impl FnMut(&str, String),
    key: &str,
    v: Option<usize>,
    default: usize,
) -> usize {
    match v {
        Some(0) => {
            problem(key, "must be at least 1".to_string());
            default
        }
        Some(v) => v,
        None => default,
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

impl RawHistory {
    fn validate(
        &self,
        problem: &mut impl FnMut(&str, String),
    ) -> crate::sinks::history::HistoryConfig {
        let d = crate::sinks::history::HistoryConfig::default();
        let mut duration = |key: &str, v: &Option<String>, default: Duration, min: Duration| match v
            .as_deref()
            .map(humantime::parse_duration)
        {
            None => default,
            Some(Ok(x)) if x >= min => x,
            Some(Ok(_)) => {
                problem(
                    key,
                    format!("must be at least {}", humantime::format_duration(min)),
                );
                default
            }
            Some(Err(e)) => {
                problem(key, format!("not a duration like \"7d\" or \"1h\": {e}"));
                default
            }
        };
        let max_age = duration(
            "history.max_age",
            &self.max_age,
            d.max_age,
            Duration::from_secs(60),
        );
        let bucket = duration(
            "history.bucket",
            &self.bucket,
            d.bucket,
            Duration::from_secs(1),
        );
        let summary_interval = duration(
            "history.summary_interval",
            &self.summary_interval,
            d.summary_interval,
            Duration::from_secs(1),
        );
        let check_interval = duration(
            "history.check_interval",
            &self.check_interval,
            d.check_interval,
            Duration::from_secs(1),
        );
        if bucket > max_age {
            problem(
                "history.bucket",
                "must not be longer than history.max_age (retention drops whole buckets)"
                    .to_string(),
            );
        }
        let max_disk_bytes = match self.max_disk_mb {
            None => d.max_disk_bytes,
            Some(mb) if mb >= 4 => mb << 20,
            Some(_) => {
                problem("history.max_disk_mb", "must be at least 4".to_string());
                d.max_disk_bytes
            }
        };
        crate::sinks::history::HistoryConfig {
            max_age,
            max_disk_bytes,
            bucket,
            summary_interval,
            top_hosts: self.top_hosts.unwrap_or(d.top_hosts),
            check_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
