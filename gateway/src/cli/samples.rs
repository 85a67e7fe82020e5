//! `netwarden samples export --out FILE`: writes the reservoir of feature rows kept for
//! central training (`[samples]`, docs/operations.md) as CSV: `ts_ms`, `schema`, the identity
//! columns when they were kept, the features of the active flow model's schema (`flow-v1` or
//! `flow-v2`; `--schema` for others), `score`. The daemon must not be running on the
//! data directory (sled locks it); while it runs, `GET /samples` serves the same CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct SamplesArgs {
    #[command(subcommand)]
    pub command: SamplesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SamplesCommand {
    /// Write the stored feature rows as CSV.
    Export {
        /// State directory of the daemon.
        #[arg(long, value_name = "DIR", default_value = "./netwarden-data")]
        data_dir: PathBuf,
        /// Output CSV file, or - for standard output.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Which rows: `flow-v1`, `flow-v2`, `all` (both, for inspection: a site model trains
        /// on one), or `active` (the flow model's the daemon ran last).
        #[arg(long, value_name = "SCHEMA", default_value = "active")]
        schema: String,
    },
    /// Central side: ask a gateway for its samples over MQTT (chunked, checksummed,
    /// acknowledged; docs/fleet.md) and write them as CSV.
    #[cfg(feature = "central")]
    Fetch(super::samples_fetch::FetchArgs),
}

pub fn execute(args: SamplesArgs) -> anyhow::Result<ExitCode> {
    let (data_dir, out, schema) = match args.command {
        SamplesCommand::Export {
            data_dir,
            out,
            schema,
        } => (data_dir, out, schema),
        #[cfg(feature = "central")]
        SamplesCommand::Fetch(f) => return super::samples_fetch::execute(f),
    };
    if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
    {
        // No Parquet writer in the binary (the router build stays small): CSV, converted on
        // the central side.
        anyhow::bail!(
            "{} : the gateway writes CSV only; write CSV and convert it centrally with \
             `python -m netwarden_models samples-parquet FILE.csv --out {}` (docs/fleet.md)",
            out.display(),
            out.display()
        );
    }
    let store = super::history::open(&data_dir)
        .with_context(|| format!("cannot open {}", data_dir.display()))?;
    let pick = crate::records::samples::SchemaPick::parse(&schema)
        .map_err(|e| anyhow::anyhow!("--schema: {e}"))?;
    let (text, stats) = store
        .samples_csv(pick)
        .context("cannot read the stored samples")?;
    if out.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().lock().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    eprintln!(
        "{} {} rows from {} buckets{}{}",
        stats.rows,
        stats.schema.map_or("mixed", |s| s.schema()),
        stats.buckets,
        if stats.other_rows > 0 {
            format!(
                " ({} rows of another schema left out: --schema all)",
                stats.other_rows
            )
        } else {
            String::new()
        },
        if stats.damaged > 0 {
            format!(
                " ({} damaged: their readable rows are included)",
                stats.damaged
            )
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
