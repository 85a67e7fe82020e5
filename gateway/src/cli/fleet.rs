//! `netwarden fleet publish|status`: the central side of fleet model delivery (docs/fleet.md).
//! `publish` splits a signed bundle into a retained set manifest and retained chunks on the
//! topic of its scope (all appliances, a site or a device); `status` reads every appliance's
//! retained `<prefix>/models/state` and prints a table (or JSON).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};

use crate::models::fleet::config::DEFAULT_TOPIC;
use crate::models::fleet::wire::{self, Scope};
use crate::models::fleet::DetectorState;
use crate::models::manifest::{KIND_FLOW, KIND_SERIES};
use crate::sinks::mqtt::{MqttConfig, RawMqtt};

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// How to reach the broker (the central publisher's credentials).
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Broker URL, mqtt://host:port or mqtts://host:port.
    #[arg(long, value_name = "URL")]
    pub mqtt: String,
    /// User name (or NETWARDEN_MQTT_USERNAME).
    #[arg(long)]
    pub username: Option<String>,
    /// File holding the password (or NETWARDEN_MQTT_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// CA certificate for mqtts://.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Topic root of the model sets.
    #[arg(long, default_value = DEFAULT_TOPIC)]
    pub topic: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    /// Publish a signed bundle as a retained chunk set (docs/fleet.md).
    Publish {
        /// The bundle directory (manifest.json, manifest.sig, model.onnx).
        bundle: PathBuf,
        #[command(flatten)]
        broker: BrokerArgs,
        /// Only the appliances of this site.
        #[arg(long, conflicts_with = "all")]
        site: Option<String>,
        /// Only this device of --site.
        #[arg(long, requires = "site")]
        device: Option<String>,
        /// Every appliance.
        #[arg(long)]
        all: bool,
        /// Only this share of the addressed appliances applies it.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
        canary: u8,
        /// Model bytes per chunk.
        #[arg(long, default_value_t = wire::DEFAULT_CHUNK_BYTES)]
        chunk_bytes: u32,
    },
    /// Every appliance's delivered models, from their retained state messages.
    Status {
        #[command(flatten)]
        broker: BrokerArgs,
        /// The state topics to read (one per appliance).
        #[arg(long, default_value = "netwarden/+/+/models/state")]
        states: String,
        /// Seconds to collect retained messages.
        #[arg(long, default_value_t = 2.0)]
        wait: f64,
        /// One JSON object per appliance and line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Subscribe to every site's alerts and EVE window results and write rolling JSON-lines
    /// files for the fleet analytics job (docs/fleet-analytics.md).
    Collect(super::fleet_collect::CollectArgs),
}

pub fn execute(args: FleetArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.command {
        FleetCommand::Collect(c) => super::fleet_collect::collect(c),
        FleetCommand::Publish {
            bundle,
            broker,
            site,
            device,
            all,
            canary,
            chunk_bytes,
        } => {
            let scope = match (all, site, device) {
                (true, _, _) => Scope::All,
                (false, Some(s), Some(d)) => Scope::Device(s, d),
                (false, Some(s), None) => Scope::Site(s),
                (false, None, _) => {
                    bail!("say who gets it: --all, --site S or --site S --device D")
                }
            };
            rt.block_on(publish(&bundle, &broker, &scope, canary, chunk_bytes))
        }
        FleetCommand::Status {
            broker,
            states,
            wait,
            json,
        } => rt.block_on(status(
            &broker,
            &states,
            Duration::from_secs_f64(wait.clamp(0.1, 60.0)),
            json,
        )),
    }
}

pub(crate) fn broker_config(b: &BrokerArgs, role: &str) -> anyhow::Result<MqttConfig> {
    let raw = RawMqtt {
        url: Some(b.mqtt.clone()),
        client_id: Some(format!("netwarden-fleet-{role}-{}", std::process::id())),
        username: b.username.clone(),
        password_file: b.password_file.clone(),
        ca_file: b.ca_file.clone(),
        ..RawMqtt::default()
    };
    let mut problems = Vec::new();
    let cfg = raw.validate("fleet", "central", &mut |k: &str, m: String| {
        problems.push(format!("{k}: {m}"))
    });
    match cfg {
        Some(c) if problems.is_empty() => Ok(c),
        _ => bail!("broker settings: {}", problems.join("; ")),
    }
}

async fn publish(
    dir: &std::path::Path,
    broker: &BrokerArgs,
    scope: &Scope,
    canary: u8,
    chunk_bytes: u32,
) -> anyhow::Result<ExitCode> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("cannot read {}", dir.join(name).display()))
    };
    let manifest =
        String::from_utf8(read("manifest.json")?).context("manifest.json is not UTF-8")?;
    let signature = String::from_utf8(read("manifest.sig")?).context("manifest.sig is not text")?;
    let parsed: crate::models::Manifest =
        serde_json::from_str(&manifest).context("manifest.json is not a bundle manifest")?;
    let model = read(&parsed.model.file)?;
    let detector = match parsed.kind.as_str() {
        KIND_FLOW => "flow",
        KIND_SERIES => "series",
        other => bail!("bundle kind {other:?} has no detector to deliver to"),
    };
    let (set, chunks) = wire::split(
        detector,
        manifest,
        signature,
        &model,
        chunk_bytes,
        canary,
        crate::now_ms(),
    )?;
    let base = wire::set_base(&broker.topic, detector, scope);
    let cfg = broker_config(broker, "publish")?;
    let mut opts = cfg.options_for(cfg.client_id.clone());
    let max = wire::MAX_SET_MANIFEST_BYTES.max(wire::CHUNK_HEADER + wire::MAX_CHUNK_BYTES as usize)
        + 1024;
    opts.set_max_packet_size(max, max);
    let (client, mut events) = AsyncClient::new(opts, chunks.len() + 8);
    let mut messages: Vec<(String, Vec<u8>)> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| (wire::chunk_topic(&base, i), c))
        .collect();
    // The manifest last: an appliance that sees it has every chunk already retained.
    messages.push((wire::manifest_topic(&base), set.encode()));
    let total = messages.len();
    let mut acked = 0usize;
    let mut sent = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked < total {
        let ev = tokio::time::timeout_at(deadline, events.poll())
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {acked} of {total} acknowledgements"))?;
        match ev.map_err(|e| anyhow::anyhow!("{}", crate::sinks::mqtt::explain(&e)))? {
            Event::Incoming(Packet::ConnAck(_)) if !sent => {
                for (topic, payload) in messages.drain(..) {
                    client
                        .publish(topic, QoS::AtLeastOnce, true, payload)
                        .await?;
                }
                sent = true;
            }
            Event::Incoming(Packet::PubAck(_)) => acked += 1,
            _ => {}
        }
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(ev) = events.poll().await {
            if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
    println!(
        "published {} {} ({} bytes, {} chunks of {}) to {}/ (retained, canary {}%)",
        parsed.name,
        parsed.version,
        set.model_bytes,
        set.chunks.len(),
        set.chunk_bytes,
        base,
        canary
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(
    broker: &BrokerArgs,
    filter: &str,
    wait: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cfg = broker_config(broker, "status")?;
    let mut opts = cfg.options_for(cfg.client_id.clone());
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(opts, 8);
    let mut states: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let ev = match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => break,
            Ok(ev) => ev.map_err(|e| anyhow::anyhow!("{}", crate::sinks::mqtt::explain(&e)))?,
        };
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                client.subscribe(filter, QoS::AtLeastOnce).await?;
            }
            Event::Incoming(Packet::Publish(p)) if !p.payload.is_empty() => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                    states.insert(p.topic.clone(), v);
                }
            }
            _ => {}
        }
    }
    let _ = client.disconnect().await;
    if json {
        for v in states.values() {
            println!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<12} {:<8} {:<16} {:<12} {:<16} last refusal",
        "site", "device", "detector", "active", "state", "version"
    );
    for v in states.values() {
        let site = v["site"].as_str().unwrap_or("?");
        let device = v["device"].as_str().unwrap_or("?");
        let detectors: BTreeMap<String, DetectorState> =
            serde_json::from_value(v["detectors"].clone()).unwrap_or_default();
        for (d, s) in &detectors {
            let refusal = s
                .last_refusal
                .as_ref()
                .map(|r| {
                    format!(
                        "{} {}: {}",
                        r.version,
                        r.check.as_deref().unwrap_or("?"),
                        r.reason.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            let progress = s
                .progress
                .map(|p| format!(" {:.0}%", p * 100.0))
                .unwrap_or_default();
            println!(
                "{:<12} {:<12} {:<8} {:<16} {:<12} {:<16} {}",
                site,
                device,
                d,
                s.active.as_deref().unwrap_or("(configured)"),
                format!("{}{progress}", s.state),
                s.version.as_deref().unwrap_or("-"),
                refusal
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
