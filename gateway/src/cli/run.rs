//! `netwarden run`: the gateway daemon. Flags override the configuration file, which overrides
//! the defaults (no file needed: NetFlow on 0.0.0.0:2055, the built-in model).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{Config, Overrides};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// TOML configuration (see docs/netwarden.example.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
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
}

impl RunArgs {
    /// The configuration file and what the flags override in it.
    fn split(self) -> (Option<PathBuf>, Overrides) {
        let RunArgs {
            config,
            netflow_listen,
            mqtt,
            data_dir,
            site,
            device,
            flow_model,
            series_model,
            capture,
            pcap,
            http_listen,
            http_token_file,
        } = self;
        let overrides = Overrides {
            netflow_listen,
            mqtt,
            data_dir,
            site,
            device,
            flow_model,
            series_model,
            capture,
            pcap,
            http_listen,
            http_token_file,
        };
        (config, overrides)
    }
}

pub fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (file, overrides) = args.split();
    let cfg = Config::load(file.as_deref(), &overrides).context("invalid configuration")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(crate::runtime::run(cfg))?;
    Ok(ExitCode::SUCCESS)
}
