//! What the SNMP source hands the series pipeline.
//!
//! CONTRACT (shared by the SNMP source and the series detector; keep it stable):
//! the SNMP source produces one [`RateSample`] per interface per poll step and hands it on;
//! the series pipeline owns everything after that.

/// One poll step's rates for one interface, as the SNMP source hands them on.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSample {
    /// The target's name from the config (or its address when unnamed).
    pub target: String,
    pub if_index: u32,
    /// ifName, else ifDescr, else `if<index>`.
    pub if_name: String,
    /// Poll time (end of the step), Unix ms.
    pub ts_ms: u64,
    /// Time since this interface's previous sample, ms.
    pub step_ms: u64,
    /// Bits per second over the step; `None` when the step is unknown (agent restart, counter
    /// discontinuity, missed or failed poll): never a guessed value.
    pub in_bps: Option<f64>,
    pub out_bps: Option<f64>,
}
