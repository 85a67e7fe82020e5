//! `netwarden samples fetch`: the central side of samples over MQTT (docs/fleet.md, "Samples
//! over MQTT"). Subscribes to the gateway's `<prefix>/samples/<id>`, publishes a request on
//! `<fleet topic>/samples/<site>/<device>/request`, checks and acknowledges every chunk
//! (cumulative acks), asks again from the first missing chunk when the gateway falls silent,
//! and writes the CSV once the whole matches its SHA-256.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, Packet, QoS};

use super::fleet::BrokerArgs;
use crate::sinks::mqtt::samples::{
    chunk_topic, control_base, Ack, Received, Receiver, Request, SampleChunk, DEFAULT_CHUNK_BYTES,
    DEFAULT_WINDOW, FORMAT, MAX_CHUNK_BYTES, MAX_WINDOW, MIN_CHUNK_BYTES,
};

/// Silence after which the request is sent again from the first missing chunk.
const SILENCE: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The gateway's site.
    #[arg(long)]
    pub site: String,
    /// The gateway's device name.
    #[arg(long)]
    pub device: String,
    /// The gateway's topic prefix [default: netwarden/<site>/<device>].
    #[arg(long)]
    pub prefix: Option<String>,
    /// Output CSV file, or - for standard output.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Bytes per chunk.
    #[arg(long, default_value_t = DEFAULT_CHUNK_BYTES,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_CHUNK_BYTES)..=i64::from(MAX_CHUNK_BYTES)))]
    pub chunk_bytes: u32,
    /// Chunks the gateway may send ahead of the acknowledgements.
    #[arg(long, default_value_t = DEFAULT_WINDOW,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WINDOW)))]
    pub window: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Which rows: `flow-v1`, `flow-v2` or `all` [default: the gateway's active flow model's].
    #[arg(long, value_name = "SCHEMA", value_parser = parse_schema)]
    pub schema: Option<String>,
}

fn parse_schema(s: &str) -> Result<String, String> {
    crate::records::samples::SchemaPick::parse(s).map(|_| s.to_string())
}

pub fn execute(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (bytes, report) = rt.block_on(fetch(&args))?;
    if args.out.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().lock().write_all(&bytes)?;
    } else {
        std::fs::write(&args.out, &bytes)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
    }
    eprintln!("{report}");
    Ok(ExitCode::SUCCESS)
}

async fn fetch(args: &FetchArgs) -> anyhow::Result<(Vec<u8>, String)> {
    let id = format!("{:x}-{:x}", crate::now_ms(), std::process::id());
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("netwarden/{}/{}", args.site, args.device));
    let base = control_base(&args.broker.topic, &args.site, &args.device);
    let chunks = chunk_topic(&prefix, &id);
    let cfg = super::fleet::broker_config(&args.broker, "samples")?;
    let mut opts = cfg.options_for(cfg.client_id.clone());
    let max = MAX_CHUNK_BYTES as usize + 4096;
    opts.set_max_packet_size(max, max);
    let (client, mut events) = AsyncClient::new(opts, 64);
    let mut rx = Receiver::new(&id);
    let request = |from: u32| Request {
        format: FORMAT,
        id: id.clone(),
        chunk_bytes: args.chunk_bytes,
        window: args.window,
        from,
        schema: args.schema.clone().filter(|s| s != "active"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout.max(1));
    let (mut received, mut refused, mut asked) = (0u64, 0u64, 0u32);
    let mut last_heard = tokio::time::Instant::now();
    let mut subscribed = false;
    loop {
        let wait = (last_heard + SILENCE).min(deadline);
        let ev = match tokio::time::timeout_at(wait, events.poll()).await {
            Err(_) if tokio::time::Instant::now() >= deadline => bail!(
                "timed out after {} s: {} of the chunks in order, {received} received \
                 ({refused} refused), {asked} requests; is the gateway's [fleet] on and \
                 subscribed?",
                args.timeout,
                rx.next()
            ),
            Err(_) => {
                // Silence: ask again from the first chunk still missing.
                if subscribed {
                    client
                        .publish(
                            format!("{base}/request"),
                            QoS::AtLeastOnce,
                            false,
                            request(rx.next()).encode(),
                        )
                        .await?;
                    asked += 1;
                }
                last_heard = tokio::time::Instant::now();
                continue;
            }
            Ok(ev) => ev.map_err(|e| anyhow::anyhow!("{}", crate::sinks::mqtt::explain(&e)))?,
        };
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                client.subscribe(chunks.clone(), QoS::AtLeastOnce).await?;
            }
            Event::Incoming(Packet::SubAck(_)) if !subscribed => {
                subscribed = true;
                client
                    .publish(
                        format!("{base}/request"),
                        QoS::AtLeastOnce,
                        false,
                        request(0).encode(),
                    )
                    .await?;
                asked += 1;
                last_heard = tokio::time::Instant::now();
            }
            Event::Incoming(Packet::Publish(p)) if p.topic == chunks => {
                last_heard = tokio::time::Instant::now();
                received += 1;
                let outcome = match SampleChunk::decode(&p.payload) {
                    Ok(c) => rx.on_chunk(c),
                    Err(e) => {
                        eprintln!("chunk refused: {e}");
                        refused += 1;
                        continue;
                    }
                };
                let ack = |next: u32| Ack {
                    id: id.clone(),
                    next,
                };
                match outcome {
                    Received::Progress { next } => {
                        client
                            .publish(
                                format!("{base}/ack"),
                                QoS::AtLeastOnce,
                                false,
                                ack(next).encode(),
                            )
                            .await?;
                    }
                    Received::Complete(bytes) => {
                        client
                            .publish(
                                format!("{base}/ack"),
                                QoS::AtLeastOnce,
                                false,
                                ack(rx.next()).encode(),
                            )
                            .await?;
                        // Let the final ack leave before disconnecting.
                        let _ = tokio::time::timeout(Duration::from_millis(500), async {
                            while let Ok(ev) = events.poll().await {
                                if matches!(ev, Event::Incoming(Packet::PubAck(_))) {
                                    break;
                                }
                            }
                        })
                        .await;
                        let _ = client.disconnect().await;
                        let rows = bytes
                            .iter()
                            .filter(|&&b| b == b'\n')
                            .count()
                            .saturating_sub(1);
                        let report = format!(
                            "{rows} rows, {} bytes in {} chunks from {}/{} ({received} chunk \
                             messages, {refused} refused, {asked} requests; SHA-256 checked)",
                            bytes.len(),
                            rx.next(),
                            args.site,
                            args.device
                        );
                        return Ok((bytes, report));
                    }
                    Received::Refused(why) => {
                        eprintln!("chunk refused: {why}");
                        refused += 1;
                    }
                    Received::Corrupt => {
                        bail!("every chunk arrived but the whole does not match its SHA-256; fetch again")
                    }
                }
            }
            _ => {}
        }
    }
}
