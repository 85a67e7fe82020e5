//! Records that pass between layers (sources -> pipeline -> sinks, and the CLI). This module
//! imports nothing of the crate but `firmware`.

pub mod time;
pub mod topic;
