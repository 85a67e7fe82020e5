//! `netwarden`: the gateway daemon (`run`) and its offline commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use netwarden::cli;
use netwarden::config::{Config, ConfigError, Overrides, RawConfig};
use netwarden::runtime;

#[derive(Debug, Parser)]
#[command(
    name = "netwarden",
    version,
    about = "Network anomaly detection for branch routers: NetFlow/IPFIX in, scored on the box, alerts over MQTT"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway daemon (no config file needed: NetFlow on 0.0.0.0:2055, built-in model).
    Run {
        /// TOML configuration (see docs/netwarden.example.toml); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to receive NetFlow v5/v9/IPFIX [default: 0.0.0.0:2055].
        #[arg(long, value_name = "ADDR")]
        netflow_listen: Option<String>,
        /// MQTT broker, e.g. mqtt://127.0.0.1:1883. Without it alerts stay in the local outbox.
        #[arg(long, value_name = "URL")]
        mqtt: Option<String>,
        /// State directory (sled database, stats.json) [default: ./netwarden-data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Site name, used in MQTT topics [default: default].
        #[arg(long)]
        site: Option<String>,
        /// Device name, used in MQTT topics [default: host name].
        #[arg(long)]
        device: Option<String>,
        /// A model bundle directory replacing the built-in flow model.
        #[arg(long, value_name = "DIR")]
        flow_model: Option<PathBuf>,
        /// A series_ae bundle directory scoring the SNMP interface series.
        #[arg(long, value_name = "DIR")]
        series_model: Option<PathBuf>,
        /// Capture packets on this interface and meter them into flows (needs root or
        /// CAP_NET_RAW; overrides `[capture] interface`).
        #[arg(long, value_name = "IFACE")]
        capture: Option<String>,
        /// Replay a pcap of raw traffic through the packet meter once, with its own timestamps.
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        /// HTTP API and dashboard address, or `off` [default: 127.0.0.1:8080]. Any address
        /// other than loopback needs a token (--http-token-file or NETWARDEN_HTTP_TOKEN).
        #[arg(long, value_name = "ADDR|off")]
        http_listen: Option<String>,
        /// File holding the HTTP bearer token (first line).
        #[arg(long, value_name = "FILE")]
        http_token_file: Option<PathBuf>,
    },
    /// Write feature vectors as CSV (training data): flow-v1 from NetFlow export captures or
    /// from raw-packet captures (metered into flows), or series-v1 rows from a CSV of
    /// interface rate samples.
    Features {
        /// Capture (pcap) of NetFlow/IPFIX export datagrams; repeat for several.
        #[arg(
            long = "netflow-pcap",
            value_name = "FILE",
            required_unless_present_any = ["series", "pcap"],
            conflicts_with_all = ["series", "pcap"]
        )]
        netflow_pcap: Vec<PathBuf>,
        /// Capture (pcap) of raw traffic, metered into flows by the packet meter; repeat for
        /// several.
        #[arg(long, value_name = "FILE", conflicts_with = "series")]
        pcap: Vec<PathBuf>,
        /// Rates CSV (ts_ms,target,if_index,if_name,in_bps,out_bps; empty = unknown).
        #[arg(long, value_name = "RATES.csv")]
        series: Option<PathBuf>,
        #[command(flatten)]
        series_params: SeriesArgs,
        /// Output CSV file, or - for standard output.
        #[arg(long, value_name = "FILE", default_value = "-")]
        out: PathBuf,
    },
    /// Recompute a series bundle's threshold from this device's own normal traffic and write
    /// the result as a new bundle directory.
    Calibrate {
        /// The series bundle to calibrate.
        #[arg(long = "series-model", value_name = "DIR")]
        series_model: PathBuf,
        /// Normal traffic as a rates CSV (as `features --series` reads).
        #[arg(
            long,
            value_name = "RATES.csv",
            conflicts_with = "data_dir",
            required_unless_present = "data_dir"
        )]
        rates: Option<PathBuf>,
        /// Normal traffic from this data directory's stored rate samples (stop the daemon
        /// first; sled locks its database).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Only stored samples at or after this time (RFC 3339), with --data-dir.
        #[arg(long)]
        since: Option<String>,
        /// Quantile of the window errors that becomes the threshold.
        #[arg(long, default_value_t = 0.95)]
        quantile: f64,
        #[command(flatten)]
        series_params: SeriesArgs,
        /// The new bundle directory (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// List stored alerts (the daemon must not be running on the same data directory).
    Alerts {
        #[arg(long, value_name = "DIR", default_value = "./netwarden-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        range: RangeArgs,
        /// Only alerts of this severity (medium, high).
        #[arg(long)]
        severity: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Query the stored history: flow summaries, scores, interface series, bucket sizes (the
    /// daemon must not be running on the same data directory).
    History {
        #[arg(
            long,
            value_name = "DIR",
            default_value = "./netwarden-data",
            global = true
        )]
        data_dir: PathBuf,
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Draw the dashboard's three plots (interface traffic with anomalous spans, error against
    /// the threshold, error distribution) from stored history into a PNG (stop the daemon
    /// first; sled locks its database).
    Plot {
        #[arg(long, value_name = "DIR", default_value = "./netwarden-data")]
        data_dir: PathBuf,
        /// Start: RFC 3339, Unix ms, or a duration ago (24h, 7d).
        #[arg(long, default_value = "24h")]
        since: String,
        /// End: as --since [default: now].
        #[arg(long)]
        until: Option<String>,
        /// SNMP target name of the interface to plot [default: the most anomalous].
        #[arg(long, requires = "if_name")]
        target: Option<String>,
        /// Interface name (with --target).
        #[arg(long, requires = "target")]
        if_name: Option<String>,
        /// The series bundle to score with [default: the built-in one].
        #[arg(long, value_name = "DIR")]
        series_model: Option<PathBuf>,
        #[command(flatten)]
        series_params: SeriesArgs,
        /// The PNG to write.
        #[arg(long, value_name = "FILE.png")]
        out: PathBuf,
    },
    /// Replay a shipped capture (benign traffic and a port scan) through the whole pipeline.
    Demo {
        /// Keep the demo's database here instead of a temporary directory.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check a configuration file and print every problem in it.
    Validate { file: PathBuf },
    /// Model bundle tools.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

/// How rate samples become series-v1 rows; training and serving must agree.
#[derive(Debug, Clone, Copy, clap::Args)]
struct SeriesArgs {
    /// Seconds added to UTC before taking hour and day of week (the site's local time).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    utc_offset_secs: i32,
    /// Unknown steps in a row tolerated before an interface's window restarts.
    #[arg(long, default_value_t = netwarden_firmware::SeriesParams::DEFAULT.max_unknown_steps)]
    max_unknown_steps: u16,
}

impl SeriesArgs {
    fn params(self) -> netwarden_firmware::SeriesParams {
        netwarden_firmware::SeriesParams {
            utc_offset_s: self.utc_offset_secs,
            max_unknown_steps: self.max_unknown_steps,
            ..netwarden_firmware::SeriesParams::DEFAULT
        }
    }
}

/// A time range: `--since`/`--until` take a duration back from now (2h, 7d) or an RFC 3339
/// time; the newest `--limit` records are shown.
#[derive(clap::Args, Debug, Clone)]
struct RangeArgs {
    /// From this time on (e.g. 2h, 7d, 2026-11-23T00:00:00Z); default: everything kept.
    #[arg(long)]
    since: Option<String>,
    /// Before this time (same forms); default: now and later.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

impl RangeArgs {
    fn range(&self) -> anyhow::Result<netwarden::sinks::history::TimeRange> {
        let now = netwarden::now_ms();
        let parse = |flag: &str, v: &Option<String>, default: u64| -> anyhow::Result<u64> {
            match v {
                None => Ok(default),
                Some(s) => {
                    cli::history::parse_time(s, now).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
                }
            }
        };
        Ok(netwarden::sinks::history::TimeRange {
            from_ms: parse("since", &self.since, 0)?,
            to_ms: parse("until", &self.until, u64::MAX)?,
            limit: self.limit,
        })
    }
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Flow summaries (per `history.summary_interval`: totals and the busiest sources).
    Flows {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Detector scores (flow detector per interval, series detector per interface window).
    Scores {
        #[command(flatten)]
        range: RangeArgs,
        /// Only this detector (flow_ae, series_ae).
        #[arg(long)]
        detector: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// SNMP rate samples of one interface; without --target/--if, lists the stored series.
    Series {
        #[arg(long)]
        target: Option<String>,
        /// Interface name (ifName, else ifDescr).
        #[arg(long = "if", value_name = "IF_NAME")]
        if_name: Option<String>,
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Buckets, live and on-disk bytes.
    Status,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Load a bundle as the daemon would (signature, hash, schema, tract, golden vectors) and
    /// time it.
    Check {
        bundle: PathBuf,
        /// A trusted ed25519 public key (a .pub file or its base64 text); repeatable. With a
        /// key the bundle must carry a manifest.sig that verifies against one of them.
        #[arg(long, value_name = "PUB")]
        key: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netwarden: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NETWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
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
        } => {
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
            let cfg =
                Config::load(config.as_deref(), &overrides).context("invalid configuration")?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(runtime::run(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Features {
            netflow_pcap,
            pcap,
            series,
            series_params,
            out,
        } => {
            if !pcap.is_empty() {
                for s in cli::features::write_metered_csv(&pcap, &out)? {
                    let m = &s.stats;
                    eprintln!(
                        "{}: {} frames, {} metered, {} not IP, {} truncated, {} malformed; {} flows ({} evicted from a full table), {} flow rows; {:.0} frames/s",
                        s.path.display(),
                        m.frames,
                        m.packets,
                        m.not_ip,
                        m.truncated,
                        m.malformed,
                        m.emitted(),
                        m.evicted,
                        s.rows,
                        m.frames as f64 / s.seconds.max(1e-9)
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let sink: Box<dyn Write> = if out.as_os_str() == "-" {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(
                    std::fs::File::create(&out)
                        .with_context(|| format!("cannot create {}", out.display()))?,
                )
            };
            let mut w = std::io::BufWriter::new(sink);
            if let Some(rates) = series {
                let samples = cli::series::read_rates_file(&rates)?;
                let s =
                    cli::series::write_features(&samples, &series_params.params(), &mut w, &out)?;
                eprintln!(
                    "{}: {} samples of {} interfaces, {} feature rows, {} unknown steps, {} out of order, {} restarts",
                    rates.display(),
                    s.samples,
                    s.interfaces,
                    s.rows,
                    s.unknown_steps,
                    s.out_of_order_steps,
                    s.restarts
                );
                return Ok(ExitCode::SUCCESS);
            }
            let summaries = cli::features::write_csv(&netflow_pcap, &mut w, &out)?;
            for s in summaries {
                if s.capture.skipped_truncated > 0 {
                    eprintln!(
                        "{}: warning: {} of {} records were cut by the capture's snap length and skipped (capture with tcpdump -s 0)",
                        s.path.display(),
                        s.capture.skipped_truncated,
                        s.capture.frames
                    );
                }
                eprintln!(
                    "{}: {} datagrams, {} flow rows, {} decode errors, {} template misses, {} missing by sequence",
                    s.path.display(),
                    s.datagrams,
                    s.rows,
                    s.totals.decode_errors(),
                    s.totals.template_misses,
                    s.totals.sequence_missing
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts {
            data_dir,
            range,
            severity,
            json,
        } => {
            let n = cli::list_alerts(&data_dir, &range.range()?, severity.as_deref(), json)?;
            if !json {
                eprintln!("{n} alert(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History { data_dir, command } => {
            let (n, what) = match command {
                HistoryCommand::Flows { range, json } => (
                    cli::history::flows(&data_dir, &range.range()?, json)?,
                    "flow summaries",
                ),
                HistoryCommand::Scores {
                    range,
                    detector,
                    json,
                } => (
                    cli::history::scores(&data_dir, &range.range()?, detector.as_deref(), json)?,
                    "scores",
                ),
                HistoryCommand::Series {
                    target,
                    if_name,
                    range,
                    json,
                } => (
                    cli::history::series(
                        &data_dir,
                        target.as_deref(),
                        if_name.as_deref(),
                        &range.range()?,
                        json,
                    )?,
                    "series rows",
                ),
                HistoryCommand::Status => {
                    cli::history::status(&data_dir)?;
                    return Ok(ExitCode::SUCCESS);
                }
            };
            eprintln!("{n} {what}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { data_dir } => demo(data_dir),
        Command::Calibrate {
            series_model,
            rates,
            data_dir,
            since,
            quantile,
            series_params,
            out,
        } => calibrate(
            &series_model,
            rates.as_deref(),
            data_dir.as_deref(),
            since.as_deref(),
            quantile,
            series_params.params(),
            &out,
        ),
        Command::Plot {
            data_dir,
            since,
            until,
            target,
            if_name,
            series_model,
            series_params,
            out,
        } => {
            let now = netwarden::now_ms();
            let since_ms = netwarden::sinks::http::parse_time(&since, now)
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let until_ms = match until {
                Some(u) => netwarden::sinks::http::parse_time(&u, now)
                    .map_err(|e| anyhow::anyhow!("--until: {e}"))?,
                None => now.saturating_add(1),
            };
            let s = cli::plot::plot(&cli::plot::PlotRequest {
                data_dir,
                since_ms,
                until_ms,
                interface: target.zip(if_name),
                series_model,
                trust: netwarden::models::Trust::default(),
                params: series_params.params(),
                out: out.clone(),
            })?;
            eprintln!(
                "{}: {} {}, {} samples, {} windows ({} over the threshold {}), {} alerts",
                out.display(),
                s.target,
                s.if_name,
                s.samples,
                s.windows,
                s.anomalous_windows,
                s.threshold,
                s.alerts
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file } => match RawConfig::from_file(&file)
            .and_then(|raw| raw.validate().map_err(ConfigError::Invalid))
        {
            Ok(cfg) => {
                println!(
                    "{}: valid (NetFlow on {}, MQTT {}, data in {})",
                    file.display(),
                    cfg.netflow.listen,
                    cfg.mqtt
                        .as_ref()
                        .map(|m| format!("{}:{}", m.host, m.port))
                        .unwrap_or_else(|| "off".into()),
                    cfg.data_dir.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                println!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Model {
            command: ModelCommand::Check { bundle, key },
        } => {
            let keys = key
                .iter()
                .map(|k| netwarden::models::PublicKey::from_arg(k))
                .collect::<Result<Vec<_>, _>>()
                .context("--key")?;
            model_check(&bundle, &netwarden::models::Trust::keys(keys))
        }
    }
}

fn demo(data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let bundle = netwarden::models::load_flow_bundle(None, 512, &netwarden::models::Trust::none())?;
    println!(
        "Replaying {} through decoder, features, model {} {} (threshold {:.5}) and alerting\n",
        cli::demo::FIXTURE_NAME,
        bundle.manifest.name,
        bundle.manifest.version,
        bundle.manifest.threshold.value
    );
    let tmp;
    let dir = match data_dir {
        Some(d) => d,
        None => {
            tmp = TempDir::new("netwarden-demo")?;
            tmp.0.clone()
        }
    };
    let r = cli::demo::run(bundle, &dir)?;
    let mut out = std::io::stdout().lock();
    for a in &r.alerts {
        writeln!(out, "ALERT {} [{}] {}", a.id, a.severity, a.summary)?;
    }
    writeln!(
        out,
        "\n{} datagrams, {} flow records decoded, {} scored, {} anomalous, {} alert(s) raised ({} folded into them by de-duplication)",
        r.datagrams,
        r.totals.records,
        r.metrics.flows_scored,
        r.metrics.flows_anomalous,
        r.alerts.len(),
        r.metrics.alerts_suppressed_dedupe
    )?;
    Ok(ExitCode::SUCCESS)
}

fn parse_since(since: Option<&str>) -> anyhow::Result<u64> {
    Ok(match since {
        None => 0,
        Some(s) => humantime::parse_rfc3339_weak(s)
            .with_context(|| format!("--since {s:?} is not an RFC 3339 time"))?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    })
}

fn calibrate(
    model: &std::path::Path,
    rates: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
    since: Option<&str>,
    quantile: f64,
    params: netwarden_firmware::SeriesParams,
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    // Calibration reads the operator's own bundle; its signature is reported, not required. The
    // result is unsigned (its manifest changed): see docs/keys.md.
    let mut bundle =
        netwarden::models::SeriesBundle::load_dir(model, &[64], &netwarden::models::Trust::none())
            .with_context(|| format!("bundle {} refused", model.display()))?;
    let (samples, source) = match (rates, data_dir) {
        (Some(r), _) => (
            cli::series::read_rates_file(r)?,
            format!("rates CSV {}", r.display()),
        ),
        (None, Some(d)) => {
            let since_ms = parse_since(since)?;
            let samples = cli::series::stored_samples(d, since_ms)?;
            (
                samples,
                format!("stored rate samples in {} since {since_ms} ms", d.display()),
            )
        }
        (None, None) => anyhow::bail!("give --rates or --data-dir"),
    };
    let cal = cli::series::calibrate(&mut bundle, &samples, &params, quantile, source)?;
    cli::series::write_calibrated(model, out, &cal, netwarden::now_ms())?;
    // Load what was written, as the daemon would, before calling it done.
    netwarden::models::SeriesBundle::load_dir(out, &[1], &netwarden::models::Trust::none())
        .with_context(|| format!("the calibrated bundle {} does not load", out.display()))?;
    println!(
        "{}: threshold {:.6} -> {:.6} (quantile {} of {} windows from {}); written to {}",
        model.display(),
        cal.previous,
        cal.threshold,
        cal.quantile,
        cal.n,
        cal.source,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn model_check(
    dir: &std::path::Path,
    trust: &netwarden::models::Trust,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let any = netwarden::models::AnyBundle::load_dir(
        dir,
        512,
        &netwarden::models::series_scorer::DEFAULT_BATCHES,
        trust,
    )
    .with_context(|| format!("bundle {} refused", dir.display()))?;
    let load = started.elapsed();
    println!("{}: {}", dir.display(), any.signature());
    let mut bundle = match any {
        netwarden::models::AnyBundle::Flow(b) => b,
        netwarden::models::AnyBundle::Series(b) => return series_model_check(b, dir, load),
    };
    let m = &bundle.manifest;
    println!(
        "{}: {} {} ({}), schema {}, threshold {} ({})",
        dir.display(),
        m.name,
        m.version,
        m.kind,
        m.features.schema,
        m.threshold.value,
        m.threshold.method
    );
    println!(
        "ok: sha256, schema, tract load+optimise, {} golden vectors within {}",
        m.golden.inputs.len(),
        m.golden.tolerance
    );
    println!(
        "load + optimise + golden check: {:.1} ms",
        load.as_secs_f64() * 1e3
    );
    let zero = [[0.0f32; netwarden_firmware::features::FLOW_WIDTH]];
    for rows in [1usize, 512] {
        let batch: Vec<_> = zero.iter().cycle().take(rows).copied().collect();
        let mut out = Vec::new();
        let iters = 200;
        let t = Instant::now();
        for _ in 0..iters {
            out.clear();
            bundle.detector.run_scaled(&batch, &mut out)?;
        }
        let per = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "batch {rows:>4}: {:>8.1} us per run, {:>6.0} ns per row",
            per * 1e6,
            per * 1e9 / rows as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A temporary directory removed on drop (std has none; keeps tempfile out of the binary).
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            netwarden::now_ms()
        ));
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn series_model_check(
    mut bundle: netwarden::models::SeriesBundle,
    dir: &std::path::Path,
    load: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let m = &bundle.manifest;
    println!(
        "{}: {} {} ({}, variant {}, {}), schema {}, window {}, threshold {} ({}{})",
        dir.display(),
        m.name,
        m.version,
        m.kind,
        m.model.variant.as_deref().unwrap_or("-"),
        m.model.precision,
        m.features.schema,
        bundle.detector.window(),
        m.threshold.value,
        m.threshold.method,
        m.threshold
            .quantile
            .map(|q| format!(", quantile {q}"))
            .unwrap_or_default()
    );
    println!(
        "ok: sha256, schema, tract load+optimise (batches {:?}, chunks of {} when many are due), {} golden windows within {}",
        bundle.detector.batch_sizes(),
        bundle.detector.chunk_size(),
        m.golden.inputs.len(),
        m.golden.tolerance
    );
    println!(
        "load + optimise + golden check: {:.1} ms",
        load.as_secs_f64() * 1e3
    );
    let golden: Vec<f32> = m.golden.inputs.iter().flatten().copied().collect();
    let mut one = Vec::new();
    bundle.detector.scale_rows(
        golden
            .chunks_exact(8)
            .take(bundle.detector.window())
            .map(|c| {
                let mut r = [0.0f32; 8];
                r.copy_from_slice(c);
                r
            })
            .collect::<Vec<_>>()
            .iter(),
        &mut one,
    );
    for b in bundle.detector.batch_sizes() {
        let batch: Vec<f32> = one.iter().copied().cycle().take(b * one.len()).collect();
        let mut out = Vec::new();
        let iters = (2000 / b).clamp(20, 500);
        bundle.detector.run_scaled(&batch, &mut out)?;
        let t = Instant::now();
        for _ in 0..iters {
            out.clear();
            bundle.detector.run_scaled(&batch, &mut out)?;
        }
        let per = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "batch {b:>4}: {:>9.1} us per run, {:>8.1} us per window",
            per * 1e6,
            per * 1e6 / b as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
