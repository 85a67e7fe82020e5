//! `netwarden plot`: the dashboard's three plots as one PNG, from a data directory's history,
//! for reports and e-mails.
//!
//! 1. the interface's traffic (in/out bits/s) with anomalous spans shaded;
//! 2. the series model's reconstruction error per window against the threshold;
//! 3. the distribution of those errors (log bins) with the threshold line.
//!
//! Errors are recomputed from the stored rate samples with the series model (the one the
//! daemon uses, or `--series-model`), exactly as `calibrate` does, so the plot needs only the
//! samples and alerts the store already keeps. Spans are shaded where a window is over the
//! threshold and where a stored interface alert's window lies.
//!
//! The panels' axes, ticks and labels are drawn by [`super::chart`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use netwarden_firmware::SeriesParams;

use super::args::{time_flag, DataDirArgs, SeriesArgs};

use super::chart::{fmt_time, log_range, sci, si, Panel, INK, MUTE};
use super::raster::{Canvas, Rgb};
use super::series::{window_scores, ScoredWindow, SeriesCliError};
use crate::models::Trust;
use crate::records::scoreboard::{bin_lower, bin_of, HIST_BINS};
use crate::records::RateSample;
use crate::sinks::store::Store;

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Start: RFC 3339, Unix ms, or a duration ago (24h, 7d).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// End: as --since [default: now].
    #[arg(long)]
    pub until: Option<String>,
    /// SNMP target name of the interface to plot [default: the most anomalous].
    #[arg(long, requires = "if_name")]
    pub target: Option<String>,
    /// Interface name (with --target).
    #[arg(long, requires = "target")]
    pub if_name: Option<String>,
    /// The series bundle to score with [default: the built-in one].
    #[arg(long, value_name = "DIR")]
    pub series_model: Option<PathBuf>,
    #[command(flatten)]
    pub series_params: SeriesArgs,
    /// The PNG to write.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
}

/// Draws the plot and prints a summary line.
pub fn execute(args: PlotArgs) -> anyhow::Result<ExitCode> {
    let now = crate::now_ms();
    let since_ms = time_flag("since", Some(&args.since), now)?.unwrap_or(0);
    let until_ms = time_flag("until", args.until.as_deref(), now)?.unwrap_or(now.saturating_add(1));
    let out = args.out;
    let s = plot(&PlotRequest {
        data_dir: args.data.data_dir,
        since_ms,
        until_ms,
        interface: args.target.zip(args.if_name),
        series_model: args.series_model,
        trust: Trust::default(),
        params: args.series_params.params(),
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

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Series(#[from] SeriesCliError),
    #[error(transparent)]
    Store(#[from] crate::sinks::store::StoreError),
    #[error(transparent)]
    Model(#[from] crate::models::LoadError),
    #[error("no interface samples in {dir} in that time range: `plot` needs SNMP interface history (`[[snmp.targets]]`)")]
    NoHistory { dir: PathBuf },
    #[error(
        "no samples for interface {target} {if_name} in that range; stored interfaces: {known}"
    )]
    UnknownInterface {
        target: String,
        if_name: String,
        known: String,
    },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: String },
}

/// What to plot.
#[derive(Debug, Clone)]
pub struct PlotRequest {
    pub data_dir: PathBuf,
    pub since_ms: u64,
    pub until_ms: u64,
    /// `(target, if_name)`; default: the interface with the most anomalous windows.
    pub interface: Option<(String, String)>,
    pub series_model: Option<PathBuf>,
    pub trust: Trust,
    pub params: SeriesParams,
    pub out: PathBuf,
}

/// What was drawn, for the CLI's summary line and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    pub target: String,
    pub if_name: String,
    pub samples: usize,
    pub windows: usize,
    pub anomalous_windows: usize,
    pub alerts: usize,
    pub threshold: f32,
}

const W: usize = 1200;
const H: usize = 1040;
const BG: Rgb = [255, 255, 255];
const IN: Rgb = [47, 111, 223];
const OUT: Rgb = [20, 163, 127];
const ERR: Rgb = [122, 79, 214];
const THR: Rgb = [210, 60, 60];

pub fn plot(req: &PlotRequest) -> Result<PlotSummary, PlotError> {
    let store = Store::open(&req.data_dir, 1 << 20, usize::MAX)?;
    let names = store.series_names()?;
    // Windows need the 50 polls before `since` too: read from well before it.
    let mut per_iface: Vec<((String, String), Vec<RateSample>)> = Vec::new();
    for (target, if_name) in &names {
        if let Some((t, n)) = &req.interface {
            if t != target || n != if_name {
                continue;
            }
        }
        let s = store.series(target, if_name, 0, req.until_ms)?;
        if s.iter().any(|x| x.ts_ms >= req.since_ms) {
            per_iface.push(((target.clone(), if_name.clone()), s));
        }
    }
    if per_iface.is_empty() {
        if let Some((target, if_name)) = &req.interface {
            return Err(PlotError::UnknownInterface {
                target: target.clone(),
                if_name: if_name.clone(),
                known: names
                    .iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        return Err(PlotError::NoHistory {
            dir: req.data_dir.clone(),
        });
    }
    let mut bundle = crate::models::ModelSources {
        flow_model: None,
        series_model: req.series_model.clone(),
        trust: req.trust.clone(),
    }
    .load_series()?;
    let threshold = bundle.detector.threshold;
    // Score every interface (for the histogram); plot the chosen or most anomalous one.
    let mut scored: Vec<(usize, Vec<ScoredWindow>)> = Vec::new();
    for (i, (_, samples)) in per_iface.iter().enumerate() {
        let w: Vec<ScoredWindow> = window_scores(&mut bundle, samples, &req.params)?
            .into_iter()
            .filter(|w| w.ts_ms >= req.since_ms)
            .collect();
        scored.push((i, w));
    }
    let pick = scored
        .iter()
        .max_by_key(|(i, w)| {
            (
                w.iter().filter(|x| x.anomalous).count(),
                w.len(),
                std::cmp::Reverse(*i),
            )
        })
        .map_or(0, |(i, _)| *i);
    let ((target, if_name), samples) = &per_iface[pick];
    let samples: Vec<&RateSample> = samples.iter().filter(|s| s.ts_ms >= req.since_ms).collect();
    let windows = &scored[pick].1;
    let (alerts, _) = store.alerts_page(req.since_ms, req.until_ms, None, 1000, |a| {
        a.subject
            .interface()
            .is_some_and(|i| &i.target == target && &i.if_name == if_name)
    })?;
    let mut hist = vec![0u64; HIST_BINS];
    for (_, w) in &scored {
        for x in w {
            hist[bin_of(x.error)] += 1;
        }
    }

    let x0 = samples.first().map_or(req.since_ms, |s| s.ts_ms);
    let x1 = samples.last().map_or(req.until_ms, |s| s.ts_ms).max(x0 + 1);
    let step = if samples.len() > 1 {
        (x1 - x0) / (samples.len() as u64 - 1)
    } else {
        10_000
    };
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for w in windows.iter().filter(|w| w.anomalous) {
        push_span(
            &mut spans,
            w.ts_ms.saturating_sub(step / 2),
            w.ts_ms + step / 2,
            step,
        );
    }
    for a in &alerts {
        if let Some(i) = a.subject.interface() {
            push_span(
                &mut spans,
                i.window_last_ms.saturating_sub(step),
                i.window_last_ms + step / 2,
                step,
            );
        }
    }

    let mut c = Canvas::new(W, H, BG);
    c.text(30.0, 18.0, "netwarden", INK, 3, 0);
    c.text(
        220.0,
        24.0,
        &format!(
            "{target} {if_name}   {} to {} UTC",
            fmt_time(x0, true),
            fmt_time(x1, true)
        ),
        MUTE,
        2,
        0,
    );

    // 1. traffic
    let p1 = Panel {
        x: 110.0,
        y: 80.0,
        w: 1060.0,
        h: 260.0,
    };
    let ymax = samples
        .iter()
        .flat_map(|s| [s.in_bps, s.out_bps])
        .flatten()
        .fold(1.0f64, f64::max)
        * 1.1;
    p1.frame(
        &mut c,
        "TRAFFIC (BITS/S)  IN: BLUE  OUT: GREEN  ANOMALOUS: SHADED",
    );
    p1.shade(&mut c, &spans, x0, x1);
    p1.y_ticks_linear(&mut c, 0.0, ymax, si);
    p1.time_ticks(&mut c, x0, x1);
    for (get, col) in [(0usize, IN), (1, OUT)] {
        let pts: Vec<(f64, Option<f64>)> = samples
            .iter()
            .map(|s| (s.ts_ms as f64, if get == 0 { s.in_bps } else { s.out_bps }))
            .collect();
        p1.polyline(&mut c, &pts, x0, x1, |v| v / ymax, col);
    }

    // 2. error against threshold (log scale)
    let p2 = Panel {
        x: 110.0,
        y: 420.0,
        w: 1060.0,
        h: 260.0,
    };
    let (lo, hi) = log_range(windows.iter().map(|w| w.error), threshold);
    p2.frame(
        &mut c,
        "RECONSTRUCTION ERROR PER WINDOW (LOG)  THRESHOLD: RED DASHES",
    );
    p2.shade(&mut c, &spans, x0, x1);
    p2.y_ticks_log(&mut c, lo, hi);
    p2.time_ticks(&mut c, x0, x1);
    let frac = |v: f64| (v.max(1e-12).log10() - lo) / (hi - lo);
    let pts: Vec<(f64, Option<f64>)> = windows
        .iter()
        .map(|w| (w.ts_ms as f64, Some(f64::from(w.error))))
        .collect();
    p2.polyline(&mut c, &pts, x0, x1, frac, ERR);
    let ty = p2.y + p2.h - frac(f64::from(threshold)).clamp(0.0, 1.0) * p2.h;
    c.dashed_hline(p2.x, p2.x + p2.w, ty, THR);
    if windows.is_empty() {
        c.text(
            p2.x + p2.w / 2.0,
            p2.y + p2.h / 2.0,
            "NO COMPLETE 50-STEP WINDOWS IN RANGE",
            MUTE,
            2,
            1,
        );
    }

    // 3. histogram of errors (all interfaces), log-count bars
    let p3 = Panel {
        x: 110.0,
        y: 760.0,
        w: 1060.0,
        h: 230.0,
    };
    p3.frame(
        &mut c,
        "ERROR DISTRIBUTION, ALL INTERFACES (LOG COUNT)  THRESHOLD: RED DASHES",
    );
    let tb = bin_of(threshold);
    let first = hist
        .iter()
        .position(|&n| n > 0)
        .unwrap_or(tb)
        .min(tb)
        .saturating_sub(2);
    let last = (HIST_BINS - 1 - hist.iter().rev().position(|&n| n > 0).unwrap_or(0))
        .max(tb)
        .saturating_add(2)
        .min(HIST_BINS - 1);
    let nb = (last - first + 1) as f64;
    let maxc = hist.iter().copied().max().unwrap_or(1).max(1) as f64;
    let cmax = (maxc * 1.2).log10().ceil().max(1.0);
    p3.y_ticks_log(&mut c, 0.0, cmax);
    let bw = p3.w / nb;
    for (i, &n) in hist.iter().enumerate().take(last + 1).skip(first) {
        let x = p3.x + (i - first) as f64 * bw;
        if n > 0 {
            let f = ((n as f64).log10() + 0.1) / (cmax + 0.1);
            let col = if i >= tb { THR } else { ERR };
            c.rect(
                x + 1.0,
                p3.y + p3.h - f * p3.h,
                x + bw - 1.0,
                p3.y + p3.h,
                col,
                0.85,
            );
        }
        if i % crate::records::scoreboard::BINS_PER_DECADE == 0 {
            c.line(x, p3.y + p3.h, x, p3.y + p3.h + 6.0, MUTE, 1.0);
            c.text(x, p3.y + p3.h + 12.0, &sci(bin_lower(i)), MUTE, 2, 1);
        }
    }
    let tx = p3.x
        + ((f64::from(threshold).log10() - bin_lower(first).log10())
            * crate::records::scoreboard::BINS_PER_DECADE as f64)
            * bw;
    c.dashed_vline(tx, p3.y, p3.y + p3.h, THR);

    let summary = PlotSummary {
        target: target.clone(),
        if_name: if_name.clone(),
        samples: samples.len(),
        windows: windows.len(),
        anomalous_windows: windows.iter().filter(|w| w.anomalous).count(),
        alerts: alerts.len(),
        threshold,
    };
    c.text(
        30.0,
        (H - 22) as f64,
        &format!(
            "{} samples, {} windows, {} over the threshold {}, {} alerts. {} {}",
            summary.samples,
            summary.windows,
            summary.anomalous_windows,
            sci(f64::from(threshold)),
            summary.alerts,
            bundle.manifest.name,
            bundle
                .manifest
                .version
                .get(..16)
                .unwrap_or(&bundle.manifest.version)
        ),
        MUTE,
        2,
        0,
    );
    write(&c, &req.out)?;
    Ok(summary)
}

fn write(c: &Canvas, path: &Path) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError::Write {
        path: path.to_path_buf(),
        error: e.to_string(),
    };
    let tmp = path.with_extension("png.tmp");
    let f = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
    c.write_png(std::io::BufWriter::new(f))
        .map_err(|e| err(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}

fn push_span(spans: &mut Vec<(u64, u64)>, a: u64, b: u64, step: u64) {
    if let Some(last) = spans.last_mut() {
        if a <= last.1 + step / 2 && b >= last.0 {
            last.0 = last.0.min(a);
            last.1 = last.1.max(b);
            return;
        }
    }
    spans.push((a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of 60 s polls of one interface: a daily sine, then a ten-fold burst.
    fn history(store: &Store, start: u64, polls: u64) {
        for i in 0..polls {
            let ts = start + i * 60_000;
            let base = 5e6 + 3e6 * ((i as f64) / 240.0 * std::f64::consts::TAU).sin();
            let burst = if (polls - 40..polls - 25).contains(&i) {
                12.0
            } else {
                1.0
            };
            store
                .append_sample(&RateSample {
                    target: "r1".into(),
                    if_index: 2,
                    if_name: "eth0".into(),
                    ts_ms: ts,
                    step_ms: 60_000,
                    in_bps: Some(base * burst),
                    out_bps: Some(base / 3.0),
                })
                .expect("append");
        }
    }

    #[test]
    fn plots_a_valid_png_with_content_from_stored_history() {
        let dir = tempfile::tempdir().expect("tmp");
        let start = 1_763_856_000_000; // 2025-11-23T00:00:00Z
        let samples = {
            let store = Store::open(dir.path(), 1 << 20, 10).expect("open");
            history(&store, start, 400);
            store.series("r1", "eth0", 0, u64::MAX).expect("read")
        };
        // As an operator would: calibrate the series model on this interface's normal hours
        // (the built-in threshold is for the training data's traffic), then plot with it.
        let mut bundle = crate::models::SeriesBundle::builtin(&[1, 8]).expect("builtin");
        let cal = crate::cli::series::calibrate(
            &mut bundle,
            &samples[..340],
            &SeriesParams::DEFAULT,
            0.995,
            "plot test".into(),
        )
        .expect("calibrate");
        let model = dir.path().join("calibrated");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/series-ae");
        crate::cli::series::write_calibrated(&src, &model, &cal, start).expect("bundle");
        let out = dir.path().join("plot.png");
        let s = plot(&PlotRequest {
            data_dir: dir.path().to_path_buf(),
            since_ms: start,
            until_ms: u64::MAX,
            interface: None,
            series_model: Some(model),
            trust: Trust::default(),
            params: SeriesParams::DEFAULT,
            out: out.clone(),
        })
        .expect("plot");
        assert_eq!(
            (s.target.as_str(), s.if_name.as_str(), s.samples),
            ("r1", "eth0", 400)
        );
        assert!(s.windows > 300, "{s:?}");
        assert!(
            s.anomalous_windows > 0,
            "the burst is over the threshold: {s:?}"
        );
        assert!(
            s.anomalous_windows < s.windows / 4,
            "normal hours are not: {s:?}"
        );
        let bytes = std::fs::read(&out).expect("png written");
        // Kept for a look (CI artifacts; docs/http.md).
        let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
        if std::fs::create_dir_all(&keep).is_ok() {
            let _ = std::fs::write(keep.join("plot.png"), &bytes);
        }
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("png");
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (W as u32, H as u32));
        let count = |rgb: Rgb| buf.chunks(3).filter(|p| *p == rgb).count();
        assert!(count(IN) > 1000, "the traffic line is drawn");
        assert!(count(ERR) > 1000, "the error line and histogram are drawn");
        assert!(count(THR) > 200, "the threshold lines are drawn");
        let shaded = buf
            .chunks(3)
            .filter(|p| p[0] > 240 && p[1] < 230 && p[2] < 230 && p[0] != 255)
            .count();
        assert!(shaded > 1000, "anomalous spans are shaded ({shaded} px)");
    }

    #[test]
    fn no_history_and_unknown_interfaces_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        drop(Store::open(dir.path(), 1 << 20, 10).expect("open"));
        let mut req = PlotRequest {
            data_dir: dir.path().to_path_buf(),
            since_ms: 0,
            until_ms: u64::MAX,
            interface: None,
            series_model: None,
            trust: Trust::default(),
            params: SeriesParams::DEFAULT,
            out: dir.path().join("x.png"),
        };
        assert!(matches!(plot(&req), Err(PlotError::NoHistory { .. })));
        req.interface = Some(("r9".into(), "eth9".into()));
        assert!(plot(&req)
            .expect_err("unknown")
            .to_string()
            .contains("r9 eth9"));
    }
}
