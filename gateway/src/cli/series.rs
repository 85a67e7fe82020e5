//! Offline tools for the interface series: `netwarden features --series` (rates CSV ->
//! `series-v1` rows, the training data) and `netwarden calibrate` (a bundle's threshold from
//! this device's own normal traffic).
//!
//! Rates CSV (what the SNMP source's [`RateSample`]s look like on disk), header required:
//! `ts_ms,target,if_index,if_name,in_bps,out_bps`; an empty rate is unknown. Fields may be
//! double-quoted (RFC 4180) so that `ifDescr` strings with commas survive.
//!
//! Feature CSV: `ts_ms,target,if_index,if_name,segment` then the 8 features. One row per known
//! step that has full rolling stats (see `firmware/src/series.rs`); `segment` counts the
//! interface's restarts, so a trainer cuts 50-row windows only within one segment.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use netwarden_firmware::series::{
    judge_window, SeriesParams, SeriesWindow, Step, SERIES_FEATURES, WINDOW_STEPS,
};

use crate::models::series_scorer::SeriesDetectorError;
use crate::models::{BundleError, SeriesBundle};
use crate::records::RateSample;
use crate::sinks::store::{Store, StoreError};

/// The rates CSV header.
pub const RATES_COLUMNS: [&str; 6] = [
    "ts_ms", "target", "if_index", "if_name", "in_bps", "out_bps",
];

/// The key columns of the feature CSV, before the features.
pub const KEY_COLUMNS: [&str; 5] = ["ts_ms", "target", "if_index", "if_name", "segment"];

#[derive(Debug, thiserror::Error)]
pub enum SeriesCliError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("series model failed: {0}")]
    Model(SeriesDetectorError),
    #[error("--quantile {0} is not in (0, 1)")]
    Quantile(f64),
    #[error("only {got} complete windows of normal traffic; calibration needs at least {need} (more history, or a longer rates file)")]
    TooFew { got: usize, need: usize },
    #[error("{0} exists; calibrate writes a new bundle directory and will not overwrite one")]
    Exists(PathBuf),
}

// The messages above include their cause, so it is not also a `source` (a `{:#}` chain would
// print it twice); `?` still converts.
impl From<SeriesDetectorError> for SeriesCliError {
    fn from(e: SeriesDetectorError) -> Self {
        SeriesCliError::Model(e)
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    out.push(cur);
    Ok(out)
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn parse_rate(s: &str) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(format!(
            "rate {s:?} is not a non-negative number (leave it empty when unknown)"
        )),
    }
}

/// Reads a rates CSV. Every bad line is an error naming the line; nothing is guessed.
pub fn read_rates(path: &Path, input: impl BufRead) -> Result<Vec<RateSample>, SeriesCliError> {
    let csv_err = |line: usize, message: String| SeriesCliError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = input.lines();
    let header = match lines.next() {
        Some(h) => h.map_err(|error| SeriesCliError::Read {
            path: path.to_path_buf(),
            error,
        })?,
        None => return Err(csv_err(1, "empty file (expected a header)".into())),
    };
    let cols = split_csv(header.trim_end_matches('\r')).map_err(|m| csv_err(1, m.into()))?;
    if cols
        .iter()
        .map(|c| c.trim())
        .ne(RATES_COLUMNS.iter().copied())
    {
        return Err(csv_err(
            1,
            format!("header is {cols:?}, expected {}", RATES_COLUMNS.join(",")),
        ));
    }
    let mut last_step: HashMap<(String, u32), u64> = HashMap::new();
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let lineno = n + 2;
        let line = line.map_err(|error| SeriesCliError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let f = split_csv(line).map_err(|m| csv_err(lineno, m.into()))?;
        if f.len() != RATES_COLUMNS.len() {
            return Err(csv_err(
                lineno,
                format!("{} fields, expected {}", f.len(), RATES_COLUMNS.len()),
            ));
        }
        let ts_ms: u64 = f[0]
            .trim()
            .parse()
            .map_err(|_| csv_err(lineno, format!("ts_ms {:?} is not a Unix time in ms", f[0])))?;
        let if_index: u32 = f[2]
            .trim()
            .parse()
            .map_err(|_| csv_err(lineno, format!("if_index {:?} is not a number", f[2])))?;
        let in_bps = parse_rate(&f[4]).map_err(|m| csv_err(lineno, m))?;
        let out_bps = parse_rate(&f[5]).map_err(|m| csv_err(lineno, m))?;
        let key = (f[1].clone(), if_index);
        let prev = last_step.insert(key, ts_ms);
        out.push(RateSample {
            target: f[1].clone(),
            if_index,
            if_name: f[3].clone(),
            ts_ms,
            step_ms: prev.map_or(0, |p| ts_ms.saturating_sub(p)),
            in_bps,
            out_bps,
        });
    }
    Ok(out)
}

/// Reads a rates CSV file.
pub fn read_rates_file(path: &Path) -> Result<Vec<RateSample>, SeriesCliError> {
    let f = std::fs::File::open(path).map_err(|error| SeriesCliError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let progress = super::progress::Progress::for_file(path, &label);
    read_rates(path, std::io::BufReader::new(progress.reader(f)))
}

/// Every rate sample stored in `data_dir`'s sled `series` tree at or after `since_ms`, each
/// interface oldest first.
pub fn stored_samples(data_dir: &Path, since_ms: u64) -> Result<Vec<RateSample>, SeriesCliError> {
    let store = Store::open(data_dir, 1 << 20, usize::MAX)?;
    let mut out = Vec::new();
    for (target, if_name) in store.series_names()? {
        out.extend(store.series(&target, &if_name, since_ms, u64::MAX)?);
    }
    Ok(out)
}

/// What `features --series` did, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeaturesSummary {
    pub samples: usize,
    pub interfaces: usize,
    pub rows: u64,
    pub unknown_steps: u64,
    pub out_of_order_steps: u64,
    pub restarts: u64,
}

/// Writes the feature CSV of `samples` (in file order; interfaces are independent).
pub fn write_features(
    samples: &[RateSample],
    params: &SeriesParams,
    out: &mut dyn Write,
    out_name: &Path,
) -> Result<FeaturesSummary, SeriesCliError> {
    let werr = |error| SeriesCliError::Write {
        path: out_name.to_path_buf(),
        error,
    };
    let header: Vec<&str> = KEY_COLUMNS
        .iter()
        .chain(SERIES_FEATURES.iter())
        .copied()
        .collect();
    writeln!(out, "{}", header.join(",")).map_err(werr)?;
    // The window itself is not needed here, only rows: capacity 1 keeps memory small.
    let mut series: HashMap<(&str, u32), SeriesWindow<1>> = HashMap::new();
    let mut summary = FeaturesSummary {
        samples: samples.len(),
        ..Default::default()
    };
    for s in samples {
        let w = series.entry((s.target.as_str(), s.if_index)).or_default();
        if let Step::Row { row, .. } = w.push(s.ts_ms, s.in_bps, s.out_bps, params) {
            write!(
                out,
                "{},{},{},{},{}",
                s.ts_ms,
                csv_field(&s.target),
                s.if_index,
                csv_field(&s.if_name),
                w.segment()
            )
            .map_err(werr)?;
            for x in row {
                write!(out, ",{x}").map_err(werr)?;
            }
            writeln!(out).map_err(werr)?;
        }
    }
    out.flush().map_err(werr)?;
    summary.interfaces = series.len();
    for w in series.values() {
        let st = w.stats();
        summary.rows += st.rows;
        summary.unknown_steps += st.unknown_steps;
        summary.out_of_order_steps += st.out_of_order_steps;
        summary.restarts += st.restarts;
    }
    Ok(summary)
}

/// Window errors of `samples` under `bundle`'s model: every complete window of every
/// interface, scored in batches as the daemon does.
pub fn window_errors(
    bundle: &mut SeriesBundle,
    samples: &[RateSample],
    params: &SeriesParams,
) -> Result<Vec<f32>, SeriesCliError> {
    Ok(window_scores(bundle, samples, params)?
        .into_iter()
        .map(|w| w.error)
        .collect())
}

/// One scored window: its interface (index into the samples), its last poll time, its error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredWindow {
    /// Index in `samples` of the window's last sample.
    pub sample: usize,
    pub ts_ms: u64,
    pub error: f32,
    pub anomalous: bool,
}

/// Like [`window_errors`], with where each window ends and whether it is over the threshold.
pub fn window_scores(
    bundle: &mut SeriesBundle,
    samples: &[RateSample],
    params: &SeriesParams,
) -> Result<Vec<ScoredWindow>, SeriesCliError> {
    const BATCH: usize = 64;
    let det = &mut bundle.detector;
    let per = det.window_len();
    let mut series: HashMap<(&str, u32), Box<SeriesWindow<WINDOW_STEPS>>> = HashMap::new();
    let mut scaled = Vec::with_capacity(BATCH * per);
    let mut ends: Vec<usize> = Vec::with_capacity(BATCH);
    let mut out = Vec::with_capacity(BATCH * per);
    let mut scores = Vec::new();
    let mut flush = |scaled: &mut Vec<f32>,
                     ends: &mut Vec<usize>,
                     out: &mut Vec<f32>,
                     det: &mut crate::models::series_scorer::SeriesAe|
     -> Result<(), SeriesCliError> {
        out.clear();
        det.run_scaled(scaled, out)?;
        for ((s, o), &i) in scaled.chunks(per).zip(out.chunks(per)).zip(ends.iter()) {
            let v = judge_window(s, o, det.threshold, det.high_ratio);
            scores.push(ScoredWindow {
                sample: i,
                ts_ms: samples[i].ts_ms,
                error: v.error,
                anomalous: v.severity.is_some(),
            });
        }
        scaled.clear();
        ends.clear();
        Ok(())
    };
    for (i, s) in samples.iter().enumerate() {
        let w = series.entry((s.target.as_str(), s.if_index)).or_default();
        if let Step::Row {
            window_full: true, ..
        } = w.push(s.ts_ms, s.in_bps, s.out_bps, params)
        {
            det.scale_rows(w.rows(), &mut scaled);
            ends.push(i);
            if scaled.len() >= BATCH * per {
                flush(&mut scaled, &mut ends, &mut out, det)?;
            }
        }
    }
    if !scaled.is_empty() {
        flush(&mut scaled, &mut ends, &mut out, det)?;
    }
    Ok(scores)
}

/// The `q` quantile of `errors` (linear interpolation between order statistics, as numpy's
/// default, so a trainer and the device agree). NaN errors are ignored.
pub fn quantile(errors: &[f32], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = errors
        .iter()
        .filter(|e| !e.is_nan())
        .map(|&e| e as f64)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// A recalibrated threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub threshold: f64,
    pub previous: f64,
    pub quantile: f64,
    pub n: usize,
    pub source: String,
}

/// Fewest windows a calibration accepts: below this a 95th percentile is mostly noise.
pub const MIN_CALIBRATION_WINDOWS: usize = 100;

/// Computes the `q` quantile of this device's window errors over `samples`.
pub fn calibrate(
    bundle: &mut SeriesBundle,
    samples: &[RateSample],
    params: &SeriesParams,
    q: f64,
    source: String,
) -> Result<Calibration, SeriesCliError> {
    if !(q > 0.0 && q < 1.0) {
        return Err(SeriesCliError::Quantile(q));
    }
    let errors = window_errors(bundle, samples, params)?;
    let n = errors.iter().filter(|e| !e.is_nan()).count();
    if n < MIN_CALIBRATION_WINDOWS {
        return Err(SeriesCliError::TooFew {
            got: n,
            need: MIN_CALIBRATION_WINDOWS,
        });
    }
    let threshold = quantile(&errors, q).ok_or(SeriesCliError::TooFew {
        got: 0,
        need: MIN_CALIBRATION_WINDOWS,
    })?;
    Ok(Calibration {
        threshold,
        previous: bundle.manifest.threshold.value as f64,
        quantile: q,
        n,
        source,
    })
}

/// Writes a copy of the bundle in `src` to `dest` (a new directory) with the manifest's
/// `threshold` section replaced by `cal`; every other manifest key is kept as it was.
pub fn write_calibrated(
    src: &Path,
    dest: &Path,
    cal: &Calibration,
    now_ms: u64,
) -> Result<(), SeriesCliError> {
    if dest.exists() {
        return Err(SeriesCliError::Exists(dest.to_path_buf()));
    }
    let read =
        |p: PathBuf| std::fs::read(&p).map_err(|error| SeriesCliError::Read { path: p, error });
    let manifest = read(src.join("manifest.json"))?;
    let mut m: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(BundleError::Manifest)?;
    let file = m["model"]["file"]
        .as_str()
        .unwrap_or("model.onnx")
        .to_string();
    let model = read(src.join(&file))?;
    m["threshold"] = serde_json::json!({
        "value": cal.threshold,
        "method": "device_error_quantile",
        "quantile": cal.quantile,
        "n": cal.n,
        "source": cal.source,
        "previous_value": cal.previous,
        "calibrated_utc": humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms)
        ).to_string(),
    });
    let werr = |p: &Path| {
        let p = p.to_path_buf();
        move |error| SeriesCliError::Write { path: p, error }
    };
    std::fs::create_dir_all(dest).map_err(werr(dest))?;
    let json = serde_json::to_string_pretty(&m).map_err(BundleError::Manifest)?;
    std::fs::write(dest.join("manifest.json"), json + "\n").map_err(werr(dest))?;
    std::fs::write(dest.join(&file), model).map_err(werr(dest))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes_and_commas() {
        assert_eq!(
            split_csv(r#"1,"r 1","Gi0/1, uplink","say ""hi""",,"#).expect("csv"),
            ["1", "r 1", "Gi0/1, uplink", r#"say "hi""#, "", ""]
        );
        assert!(split_csv(r#"1,"open"#).is_err());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("ab"), "ab");
    }

    #[test]
    fn rates_csv_errors_name_the_line() {
        let p = Path::new("r.csv");
        let good =
            "ts_ms,target,if_index,if_name,in_bps,out_bps\n10,r1,2,eth0,5.5,\n20,r1,2,eth0,6,7\n";
        let s = read_rates(p, good.as_bytes()).expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].in_bps, s[0].out_bps), (Some(5.5), None));
        assert_eq!(s[1].step_ms, 10);
        for (bad, line, what) in [
            ("ts,target\n", 1, "header"),
            (
                "ts_ms,target,if_index,if_name,in_bps,out_bps\n1,r,x,e,1,1\n",
                2,
                "if_index",
            ),
            (
                "ts_ms,target,if_index,if_name,in_bps,out_bps\n1,r,1,e,1,1\n2,r,1,e,-4,1\n",
                3,
                "non-negative",
            ),
            (
                "ts_ms,target,if_index,if_name,in_bps,out_bps\n1,r,1,e,1\n",
                2,
                "fields",
            ),
            (
                "ts_ms,target,if_index,if_name,in_bps,out_bps\n1,r,1,e,NaN,1\n",
                2,
                "non-negative",
            ),
        ] {
            let e = read_rates(p, bad.as_bytes()).expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!("r.csv:{line}:")) && e.contains(what),
                "{e}"
            );
        }
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [4.0, 1.0, 3.0, 2.0, f32::NAN];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert!((quantile(&v, 0.95).expect("q") - 3.85).abs() < 1e-9);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
