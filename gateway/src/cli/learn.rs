//! `netwarden learn`: shows where the learning period stands (progress, fitted thresholds), and
//! `--restart` forgets what was learnt, so the next `netwarden run` learns the site again
//! (docs/operations.md). The daemon must not be running on the data directory (sled locks it).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct LearnArgs {
    /// State directory of the daemon.
    #[arg(long, value_name = "DIR", default_value = "./netwarden-data")]
    pub data_dir: PathBuf,
    /// Forget the learnt state: the next start learns again for `[learning] period`.
    #[arg(long)]
    pub restart: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: LearnArgs) -> anyhow::Result<ExitCode> {
    let store = super::history::open(&args.data_dir)
        .with_context(|| format!("cannot open {}", args.data_dir.display()))?;
    if args.restart {
        store
            .reset_learning()
            .context("cannot reset the learning state")?;
        println!("learning state cleared; the next `netwarden run` learns this site again");
        return Ok(ExitCode::SUCCESS);
    }
    let list = store
        .learning_statuses()
        .context("cannot read the learning state")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!(
            "nothing learnt yet (learning starts with the first record `netwarden run` scores)"
        );
    }
    for l in &list {
        match &l.fitted {
            None => println!(
                "{}: learning, {:.0} % of {} of event time, {} scores; alerts only {}x over the shipped threshold {:.6}",
                l.detector,
                l.progress() * 100.0,
                humantime::format_duration(std::time::Duration::from_millis(l.period_ms)),
                l.scored,
                l.alert_ratio,
                l.shipped_threshold
            ),
            Some(f) => println!(
                "{}: learnt from {} scores: threshold {:.6} ({}; shipped {:.6}), {} scores of {} sources left out{}",
                l.detector,
                l.scored,
                f.threshold,
                f.method,
                l.shipped_threshold,
                f.excluded_samples,
                f.excluded.len(),
                if f.excluded.is_empty() {
                    String::new()
                } else {
                    format!(": {}", f.excluded.join(" "))
                }
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
