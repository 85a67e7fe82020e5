//! `netwarden features`: the exact `flow-v1` vectors the detector would see, as CSV, from
//! captures of export datagrams. This is the only source of training data (docs/bundle-format.md):
//! the trainer never recomputes features.

use std::io::Write;
use std::path::{Path, PathBuf};

use netwarden_firmware::features::{HostWindows, FLOW_FEATURES};

use crate::pipeline::HOST_WINDOWS;
use crate::sources::netflow::capture::{read_datagrams, CaptureError};
use crate::sources::netflow::{ExporterStats, NetflowDecoder};

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
    Capture(#[from] CaptureError),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Per-file result, for the summary line.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub path: PathBuf,
    pub datagrams: usize,
    pub rows: usize,
    pub totals: ExporterStats,
}

/// Writes the header and one row per flow record of every capture. Each file starts with fresh
/// template caches and host windows: it is one exporter's session, replayed.
pub fn write_csv(
    inputs: &[PathBuf],
    out: &mut dyn Write,
    out_name: &Path,
) -> Result<Vec<FileSummary>, FeaturesError> {
    let werr = |error| FeaturesError::Write {
        path: out_name.to_path_buf(),
        error,
    };
    let header: Vec<&str> = ID_COLUMNS
        .iter()
        .chain(FLOW_FEATURES.iter())
        .copied()
        .collect();
    writeln!(out, "{}", header.join(",")).map_err(werr)?;
    let mut summaries = Vec::new();
    for path in inputs {
        let (datagrams, _) = read_datagrams(path, None)?;
        let mut decoder = NetflowDecoder::new(1024);
        let mut windows: Box<HostWindows<HOST_WINDOWS>> = Box::default();
        let mut recs = Vec::new();
        let mut rows = 0;
        for d in &datagrams {
            recs.clear();
            decoder.decode(d.src, &d.payload, &mut recs);
            for (src, r) in &recs {
                let v = windows.observe(r);
                write!(
                    out,
                    "{},{},{},{},{},{},{},{},{}",
                    src.exporter,
                    src.domain,
                    r.src_addr,
                    r.dst_addr,
                    r.src_port,
                    r.dst_port,
                    r.protocol,
                    r.first_ms,
                    r.last_ms
                )
                .map_err(werr)?;
                for x in v {
                    write!(out, ",{x}").map_err(werr)?;
                }
                writeln!(out).map_err(werr)?;
                rows += 1;
            }
        }
        summaries.push(FileSummary {
            path: path.clone(),
            datagrams: datagrams.len(),
            rows,
            totals: decoder.totals(),
        });
    }
    out.flush().map_err(werr)?;
    Ok(summaries)
}
