//! The commands of the `netwarden` binary: one file per command holds its flags (clap derive),
//! its body and its human output; `main.rs` only parses and dispatches. Shared flag groups are
//! in [`args`]; `run` hands over to the daemon, everything else is offline.

pub mod alerts;
pub mod args;
pub mod calibrate;
pub mod chart;
pub mod demo;
pub mod eval;
pub mod feature_sets;
pub mod features;
pub mod fleet;
pub mod fleet_collect;
pub mod history;
pub mod learn;
pub mod logging;
pub mod model;
pub mod model_graph;
pub mod model_http;
pub mod model_ledger;
pub mod plot;
pub mod progress;
pub mod raster;
pub mod run;
pub mod samples;
pub mod series;
pub mod validate;
