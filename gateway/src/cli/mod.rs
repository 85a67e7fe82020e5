//! The offline commands of the `netwarden` CLI (everything but `run`). They print for humans;
//! the daemon never does.

pub mod demo;
pub mod features;
pub mod history;
pub mod plot;
pub mod raster;
pub mod series;

pub use history::list_alerts;
