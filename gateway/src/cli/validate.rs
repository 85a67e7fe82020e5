//! `netwarden validate FILE`: checks a configuration file and prints every problem in it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{ConfigError, RawConfig};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    pub file: PathBuf,
}

/// Success for a valid file, failure (after printing the problems) otherwise.
pub fn execute(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let file = args.file;
    match RawConfig::from_file(&file).and_then(|raw| raw.validate().map_err(ConfigError::Invalid)) {
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
    }
}
