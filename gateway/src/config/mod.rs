//! Configuration: a serde [`RawConfig`] exactly as written in TOML (unknown keys rejected), turned
//! by [`RawConfig::validate`] into a [`Config`] of real types. Each section belongs to its
//! component (`sources/netflow/config.rs`, `sinks/mqtt/config.rs`, ...), which validates it; this
//! folder only assembles the sections, so no component imports it. Validation reports every problem
//! at once, so `netwarden validate FILE` shows the operator the whole list.
//!
//! Every key has a default: `netwarden run` needs no file at all.

pub mod eve;
pub mod raw;

pub use raw::RawConfig;

use std::path::PathBuf;

use crate::models::Trust;
use crate::pipeline::arp::ArpSettings;
use crate::pipeline::config::{AlertingConfig, DetectorConfig};
use crate::sinks::history::HistoryConfig;
use crate::sinks::http::HttpConfig;
use crate::sinks::mqtt::MqttConfig;
use crate::sinks::store::config::StoreConfig;
use crate::sources::netflow::config::NetflowConfig;
use crate::sources::packets::config::CaptureConfig;
use crate::sources::snmp::SnmpConfig;

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub site: String,
    pub device: String,
    pub data_dir: PathBuf,
    pub netflow: NetflowConfig,
    pub detector: DetectorConfig,
    pub alerting: AlertingConfig,
    pub mqtt: Option<MqttConfig>,
    pub store: StoreConfig,
    /// SNMP targets to poll (none by default).
    pub snmp: SnmpConfig,
    /// Which bundle signatures are trusted (`[bundles]`; docs/keys.md).
    pub trust: Trust,
    /// History retention (`[history]`).
    pub history: HistoryConfig,
    /// The HTTP API and dashboard (`[http]`; docs/http.md).
    pub http: HttpConfig,
    /// Packet capture sources (`[capture]`, `--capture`, `--pcap`); none by default.
    pub capture: CaptureConfig,
    /// ARP on the capture path: the rules and the ARP table (`[arp]`; docs/arp.md).
    pub arp: ArpSettings,
    /// Fleet model delivery over MQTT (`[fleet]`; docs/fleet.md); off by default.
    pub fleet: Option<crate::models::fleet::FleetConfig>,
    /// The learning period of a fresh data directory (`[learning]`, `--learn`); `None`: off.
    pub learning: crate::pipeline::learning::config::LearningSettings,
    /// The reservoir of feature rows for central training (`[samples]`); `None`: off.
    pub samples: Option<crate::pipeline::reservoir::ReservoirConfig>,
    /// Suricata EVE (`[eve]`, `--eve`; docs/eve.md); no input by default.
    pub eve: eve::EveConfig,
}

/// One problem found in a configuration, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not valid netwarden TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{} problem(s) in the configuration:\n  {}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<ConfigProblem>),
}

/// Command-line values that override the file: the `run` flags, flattened into its arguments
/// (`cli/run.rs`), so the list of fields is written once.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Where to receive NetFlow v5/v9/IPFIX [default: 0.0.0.0:2055].
    #[arg(long, value_name = "ADDR")]
    pub netflow_listen: Option<String>,
    /// MQTT broker, e.g. mqtt://127.0.0.1:1883. Without it alerts stay in the local outbox.
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// State directory (sled database, stats.json) [default: ./netwarden-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Site name, used in MQTT topics [default: default].
    #[arg(long)]
    pub site: Option<String>,
    /// Device name, used in MQTT topics [default: host name].
    #[arg(long)]
    pub device: Option<String>,
    /// A model bundle directory replacing the built-in flow model.
    #[arg(long, value_name = "DIR")]
    pub flow_model: Option<PathBuf>,
    /// A series_ae bundle directory scoring the SNMP interface series.
    #[arg(long, value_name = "DIR")]
    pub series_model: Option<PathBuf>,
    /// Capture packets on this interface and meter them into flows (needs root or
    /// CAP_NET_RAW; overrides `[capture] interface`).
    #[arg(long, value_name = "IFACE")]
    pub capture: Option<String>,
    /// Replay a pcap of raw traffic through the packet meter once, with its own timestamps.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// HTTP API and dashboard address, or `off` [default: 127.0.0.1:8080]. Any address
    /// other than loopback needs a token (--http-token-file or NETWARDEN_HTTP_TOKEN).
    #[arg(long, value_name = "ADDR|off")]
    pub http_listen: Option<String>,
    /// File holding the HTTP bearer token (first line).
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
    /// Learn the site for this span of event time on a fresh data directory (or after
    /// `netwarden learn --restart`), e.g. 30m, or `off` [default: 24h, `[learning] period`].
    #[arg(long, value_name = "DURATION|off")]
    pub learn: Option<String>,
    /// Follow this Suricata eve.json (adds to `[[eve.files]]`; docs/eve.md).
    #[arg(long, value_name = "PATH")]
    pub eve: Option<PathBuf>,
}

impl Config {
    /// Reads `path` (or the defaults when `None`), applies `overrides`, validates.
    pub fn load(
        path: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut raw = match path {
            Some(p) => RawConfig::from_file(p)?,
            None => RawConfig::default(),
        };
        raw.apply(overrides);
        raw.validate().map_err(ConfigError::Invalid)
    }
}

/// The machine's host name, the default device name.
pub fn default_device_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "netwarden".to_string())
}
