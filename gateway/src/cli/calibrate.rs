//! `netwarden calibrate`: recomputes a series bundle's threshold from this device's own normal
//! traffic and writes the result as a new bundle directory (the computation is in
//! [`super::series`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::args::{time_flag, SeriesArgs};
use super::series;
use crate::models::{SeriesBundle, Trust};

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// The series bundle to calibrate.
    #[arg(long = "series-model", value_name = "DIR")]
    pub series_model: PathBuf,
    /// Normal traffic as a rates CSV (as `features --series` reads).
    #[arg(
        long,
        value_name = "RATES.csv",
        conflicts_with = "data_dir",
        required_unless_present = "data_dir"
    )]
    pub rates: Option<PathBuf>,
    /// Normal traffic from this data directory's stored rate samples (stop the daemon
    /// first; sled locks its database).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Only stored samples at or after this time (RFC 3339, Unix ms, or a duration ago such
    /// as 7d), with --data-dir.
    #[arg(long)]
    pub since: Option<String>,
    /// Quantile of the window errors that becomes the threshold.
    #[arg(long, default_value_t = 0.95)]
    pub quantile: f64,
    #[command(flatten)]
    pub series_params: SeriesArgs,
    /// The new bundle directory (must not exist).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn execute(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let model = &args.series_model;
    let out = &args.out;
    // Calibration reads the operator's own bundle; its signature is reported, not required. The
    // result is unsigned (its manifest changed): see docs/keys.md.
    let mut bundle = SeriesBundle::load_dir(model, &[64], &Trust::none())
        .with_context(|| format!("bundle {} refused", model.display()))?;
    let (samples, source) = match (&args.rates, &args.data_dir) {
        (Some(r), _) => (
            series::read_rates_file(r)?,
            format!("rates CSV {}", r.display()),
        ),
        (None, Some(d)) => {
            let since_ms = time_flag("since", args.since.as_deref(), crate::now_ms())?.unwrap_or(0);
            let samples = series::stored_samples(d, since_ms)?;
            (
                samples,
                format!("stored rate samples in {} since {since_ms} ms", d.display()),
            )
        }
        (None, None) => anyhow::bail!("give --rates or --data-dir"),
    };
    let params = args.series_params.params();
    let cal = series::calibrate(&mut bundle, &samples, &params, args.quantile, source)?;
    series::write_calibrated(model, out, &cal, crate::now_ms())?;
    // Load what was written, as the daemon would, before calling it done.
    SeriesBundle::load_dir(out, &[1], &Trust::none())
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
