//! `netwarden features`: the exact `flow-v1` vectors the detector would see, as CSV, from
//! captures of export datagrams. This is the only source of training data (docs/bundle-format.md):
//! the trainer never recomputes features.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::args::SeriesArgs;
pub use super::feature_sets::FeatureSet;
pub use super::feature_sets::V2Params;
use super::feature_sets::{write_row, Featurizer, RowId};
use super::progress::{open_pcap_file, Progress};
use crate::records::ExporterStats;
use crate::sources::netflow::export_pcap::{read_datagrams_from, ExportPcapStats, PcapError};
use crate::sources::netflow::NetflowDecoder;
use crate::sources::packets::{self, GatewayMeter, RecordBatch};

#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {
    /// Capture (pcap) of NetFlow/IPFIX export datagrams; repeat for several.
    #[arg(
        long = "netflow-pcap",
        value_name = "FILE",
        required_unless_present_any = ["series", "pcap"],
        conflicts_with_all = ["series", "pcap"]
    )]
    pub netflow_pcap: Vec<PathBuf>,
    /// Capture (pcap) of raw traffic, metered into flows by the packet meter; repeat for
    /// several.
    #[arg(long, value_name = "FILE", conflicts_with = "series")]
    pub pcap: Vec<PathBuf>,
    /// Rates CSV (ts_ms,target,if_index,if_name,in_bps,out_bps; empty = unknown).
    #[arg(long, value_name = "RATES.csv")]
    pub series: Option<PathBuf>,
    #[command(flatten)]
    pub series_params: SeriesArgs,
    /// Which features each flow row carries: `flow-v1` (the flow autoencoder's) or `graph-v1`
    /// (the temporal graph's edge row).
    #[arg(
        long = "set",
        value_enum,
        default_value = "flow-v1",
        conflicts_with = "series"
    )]
    pub set: FeatureSet,
    /// `flow-v2` novelty: services used before this event time (Unix ms; a lab run's
    /// lead-in end) are the learnt ones, later ones novel unless learnt. Without it novelty
    /// is 0, as on a gateway without a learning period.
    #[arg(long, value_name = "EPOCH_MS")]
    pub learn_until: Option<u64>,
    /// `flow-v2`: how long a record waits for its reverse direction, in arrival (datagram)
    /// time, as `[detector] pair_wait` on the gateway: 0 to 60s.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = crate::pipeline::config::parse_pair_wait)]
    pub pair_wait: std::time::Duration,
    /// Output CSV file, or - for standard output.
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,
}

/// Writes the CSV and one summary line per input to stderr.
pub fn execute(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    let out = &args.out;
    let v2 = V2Params {
        learn_until: args.learn_until,
        pair_wait_ms: args.pair_wait.as_millis() as u64,
    };
    if !args.pcap.is_empty() {
        for s in write_metered_csv(&args.pcap, out, args.set, v2)? {
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
            graph_line(&s.path, s.graph);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let sink: Box<dyn Write> = if out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(out)
                .with_context(|| format!("cannot create {}", out.display()))?,
        )
    };
    let mut w = std::io::BufWriter::new(sink);
    if let Some(rates) = &args.series {
        let samples = super::series::read_rates_file(rates)?;
        let params = args.series_params.params();
        let s = super::series::write_features(&samples, &params, &mut w, out)?;
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
    for s in write_csv_set(&args.netflow_pcap, &mut w, out, args.set, v2)? {
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
        graph_line(&s.path, s.graph);
    }
    Ok(ExitCode::SUCCESS)
}

/// The `flow-v2` pairing counters of one input (stderr, beside the summary line).
fn pair_line(path: &Path, p: &netwarden_firmware::features_v2::FlowV2Stats) {
    eprintln!(
        "{}: flow-v2: {} records paired, {} alone ({} pushed out of the full table, {} by a duplicate), {} services evicted",
        path.display(),
        p.paired,
        p.unpaired,
        p.pair_evictions,
        p.pair_duplicates,
        p.service_evictions
    );
}

fn graph_line(path: &Path, stats: Option<crate::pipeline::graph::TableStats>) {
    if let Some(g) = stats {
        eprintln!(
            "{}: graph: {} edges, {} endpoints tracked at the end, {} evicted",
            path.display(),
            g.edges,
            g.endpoints,
            g.evictions
        );
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The identity columns before the features.
pub const ID_COLUMNS: [&str; 9] = [
    "exporter",
    "observation_domain",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "protocol",
    "first_seen_ms",
    "last_seen_ms",
];

#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    #[error(transparent)]
    Capture(#[from] PcapError),
    #[error("cannot start the meter thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// Per-file result, for the summary line.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub path: PathBuf,
    pub datagrams: usize,
    /// Frames of the file, and those skipped (not UDP, cut by the snap length).
    pub capture: ExportPcapStats,
    pub rows: usize,
    pub totals: ExporterStats,
    /// The endpoint table's counters (`graph-v1` only).
    pub graph: Option<crate::pipeline::graph::TableStats>,
}

/// Writes the header and one row per flow record of every capture. Each file starts with fresh
/// template caches and host windows: it is one exporter's session, replayed.
pub fn write_csv(
    inputs: &[PathBuf],
    out: &mut dyn Write,
    out_name: &Path,
) -> Result<Vec<FileSummary>, FeaturesError> {
    write_csv_set(
        inputs,
        out,
        out_name,
        FeatureSet::FlowV1,
        V2Params::default(),
    )
}

fn header(set: FeatureSet) -> String {
    let mut h: Vec<String> = ID_COLUMNS.iter().map(|s| s.to_string()).collect();
    h.extend(set.columns());
    h.join(",")
}

/// [`write_csv`] with the feature set chosen (and, for `flow-v2`, the end of novelty
/// learning). Records arrive at their datagram's capture time.
pub fn write_csv_set(
    inputs: &[PathBuf],
    out: &mut dyn Write,
    out_name: &Path,
    set: FeatureSet,
    v2: V2Params,
) -> Result<Vec<FileSummary>, FeaturesError> {
    let werr = |error| FeaturesError::Write {
        path: out_name.to_path_buf(),
        error,
    };
    writeln!(out, "{}", header(set)).map_err(werr)?;
    let mut summaries = Vec::new();
    for path in inputs {
        let (reader, read_progress) = open_pcap_file(path, &file_label(path))?;
        let (datagrams, capture) = read_datagrams_from(reader, path, None)?;
        read_progress.finish();
        let progress = Progress::for_records(datagrams.len() as u64, &file_label(path));
        let mut decoder = NetflowDecoder::new(1024);
        let mut featurizer = Featurizer::new(set).with_v2(v2);
        let mut recs = Vec::new();
        let mut rows = 0;
        let mut sink = |id: &RowId, r: &netwarden_firmware::FlowRecord, v: &[f32]| {
            rows += 1;
            write_row(out, id, r, v)
        };
        for d in &datagrams {
            progress.inc(1);
            recs.clear();
            decoder.decode(d.src, &d.payload, &mut recs);
            for (src, r) in &recs {
                let id = RowId {
                    exporter: src.exporter.to_string().into(),
                    domain: src.domain,
                };
                featurizer.push(id, r, d.ts_ms, &mut sink).map_err(werr)?;
            }
        }
        featurizer.finish(&mut sink).map_err(werr)?;
        if let Some(p) = featurizer.pair_stats() {
            pair_line(path, &p);
        }
        summaries.push(FileSummary {
            path: path.clone(),
            datagrams: datagrams.len(),
            capture,
            rows,
            totals: decoder.totals(),
            graph: featurizer.graph_stats(),
        });
    }
    out.flush().map_err(werr)?;
    Ok(summaries)
}

/// Per-file result of [`write_metered_csv`].
#[derive(Debug, Clone)]
pub struct MeteredSummary {
    pub path: PathBuf,
    pub stats: netwarden_firmware::meter::MeterStats,
    pub rows: usize,
    /// Wall time of the whole file: reading, metering, features and CSV.
    pub seconds: f64,
    /// The endpoint table's counters (`graph-v1` only).
    pub graph: Option<crate::pipeline::graph::TableStats>,
}

/// `netwarden features --pcap`: meters each raw-packet capture with the gateway's packet meter
/// (fresh meter and host windows per file) and writes one row per flow record, the records a
/// NetFlow exporter would have sent, exactly as the daemon's pipeline featurises them. `out`
/// is a file, or `-` for standard output. Runs on a thread with a stack for the meter's table.
pub fn write_metered_csv(
    inputs: &[PathBuf],
    out: &Path,
    set: FeatureSet,
    v2: V2Params,
) -> Result<Vec<MeteredSummary>, FeaturesError> {
    let inputs = inputs.to_vec();
    let out = out.to_path_buf();
    std::thread::Builder::new()
        .name("features-meter".into())
        .stack_size(packets::meter_stack_bytes())
        .spawn(move || metered_csv_thread(&inputs, &out, set, v2))
        .map_err(FeaturesError::Thread)?
        .join()
        .unwrap_or_else(|_| {
            Err(FeaturesError::Thread(std::io::Error::other(
                "the meter thread panicked",
            )))
        })
}

fn metered_csv_thread(
    inputs: &[PathBuf],
    out_name: &Path,
    set: FeatureSet,
    v2: V2Params,
) -> Result<Vec<MeteredSummary>, FeaturesError> {
    let werr = |error| FeaturesError::Write {
        path: out_name.to_path_buf(),
        error,
    };
    let sink: Box<dyn Write> = if out_name.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::fs::File::create(out_name).map_err(werr)?)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, sink);
    writeln!(out, "{}", header(set)).map_err(werr)?;
    let mut summaries = Vec::new();
    for path in inputs {
        let started = std::time::Instant::now();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let origin = format!("pcap:{name}");
        let mut meter = GatewayMeter::new(packets::CaptureTimeouts::default().meter_config());
        let mut featurizer = Featurizer::new(set).with_v2(v2);
        let mut batch = RecordBatch::with_capacity(packets::RECORDS_PER_BATCH);
        let mut rows = 0;
        let mut write_error = None;
        let id = RowId {
            exporter: origin.as_str().into(),
            domain: 0,
        };
        // The meter emits a flow's records when the flow ends, at packet time: that is their
        // arrival (both directions come together).
        let mut clock = 0u64;
        let mut write_batch =
            |batch: &mut RecordBatch, out: &mut dyn Write, featurizer: &mut Featurizer| {
                let mut sink = |id: &RowId, r: &netwarden_firmware::FlowRecord, v: &[f32]| {
                    rows += 1;
                    write_row(out, id, r, v)
                };
                for r in batch.records.drain(..) {
                    clock = clock.max(r.last_ms);
                    if let Err(e) = featurizer.push(id.clone(), &r, clock, &mut sink) {
                        write_error.get_or_insert(e);
                    }
                }
            };
        let (reader, progress) = open_pcap_file(path, &file_label(path))?;
        let stats = packets::pcap::replay_from(
            reader,
            path,
            &mut meter,
            &mut |f| {
                batch.push(f);
                if batch.is_full() {
                    write_batch(&mut batch, &mut out, &mut featurizer);
                }
            },
            &mut |_, _, _| {},
            &mut |_| {},
        )?;
        write_batch(&mut batch, &mut out, &mut featurizer);
        let mut rows_at_end = 0;
        let finished = featurizer.finish(&mut |id, r, v| {
            rows_at_end += 1;
            write_row(&mut out, id, r, v)
        });
        if let Err(e) = finished {
            write_error.get_or_insert(e);
        }
        rows += rows_at_end;
        progress.finish();
        if let Some(p) = featurizer.pair_stats() {
            pair_line(path, &p);
        }
        if let Some(e) = write_error {
            return Err(werr(e));
        }
        summaries.push(MeteredSummary {
            path: path.clone(),
            stats,
            rows,
            seconds: started.elapsed().as_secs_f64(),
            graph: featurizer.graph_stats(),
        });
    }
    out.flush().map_err(werr)?;
    Ok(summaries)
}
