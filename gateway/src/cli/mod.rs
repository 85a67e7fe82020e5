//! The commands of the `netwarden` binary: one file per command holds its flags (clap derive),
//! its body and its human output; `main.rs` only parses and dispatches. Shared flag groups are
//! in [`args`]; `run` hands over to the daemon, everything else is offline.
//!
//! The central-side and lab commands (`eval`, `fleet publish|status|collect`, `plot`) are behind
//! the `central` feature (on by default): the router build (`cross/build.sh`, `release-small`)
//! leaves them out to stay under 10 MB.

pub mod alerts;
pub mod args;
pub mod calibrate;
#[cfg(feature = "central")]
pub mod chart;
pub mod demo;
#[cfg(feature = "central")]
pub mod eval;
pub mod feature_sets;
pub mod features;
#[cfg(feature = "central")]
pub mod fleet;
#[cfg(feature = "central")]
pub mod fleet_collect;
pub mod history;
pub mod learn;
pub mod logging;
pub mod model;
pub mod model_graph;
pub mod model_http;
pub mod model_ledger;
pub mod model_quant;
#[cfg(feature = "central")]
pub mod plot;
pub mod progress;
#[cfg(feature = "central")]
pub mod raster;
pub mod run;
pub mod samples;
#[cfg(feature = "central")]
pub mod samples_fetch;
pub mod series;
pub mod validate;
