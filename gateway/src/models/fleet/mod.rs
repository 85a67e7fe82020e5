//! Fleet model delivery (docs/fleet.md): signed bundles pushed over MQTT as retained chunk sets
//! ([`wire`]), put together ([`assemble`]), verified check by check ([`verify`]), remembered
//! across restarts ([`ledger`]), then shadowed beside the active model and watched after
//! promotion ([`shadow`]; the swap itself is in `pipeline/fleet.rs`, on the scoring thread).
//!
//! The MQTT side (subscriptions, the retained `<prefix>/models/state`) is
//! `sinks/mqtt/fleet.rs`; this module does no network I/O.

pub mod assemble;
pub mod config;
pub mod ledger;
pub mod shadow;
pub mod verify;
pub mod wire;

pub use config::{FleetConfig, RawFleet};
pub use ledger::{DetectorState, Event, Ledger, LedgerError};
pub use shadow::{Judgement, Policy, Trial};
pub use verify::Refusal;

use crate::models::Bundle;

/// A verified bundle on its way to the scoring thread.
#[derive(Debug)]
pub struct Candidate {
    /// The delivered version, or [`CONFIGURED`] for the configured (or built-in) bundle.
    pub version: String,
    pub bundle: Bundle,
    /// Swap at once, without a shadow or watch period (an operator's `activate`/`rollback`).
    pub immediate: bool,
}

/// The version name of the configured (or built-in) bundle in operator commands.
pub const CONFIGURED: &str = "configured";

/// What the scoring thread reports back about a candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Shadowing began (or began again after a restart).
    Shadowing { version: String },
    /// Shadow or watch progress, 0 to 1.
    Progress { version: String, share: f64 },
    /// Passed its shadow period and now alerts; the old model watches beside it.
    Promoted { version: String, figures: Trial },
    /// Failed its shadow period; the active model carries on.
    Rejected {
        version: String,
        reason: String,
        figures: Trial,
    },
    /// Failed its watch period; the old model is back.
    RolledBack {
        version: String,
        reason: String,
        figures: Trial,
    },
    /// Passed its watch period; the old model is dropped (it stays on disk).
    Settled { version: String, figures: Trial },
    /// Swapped in at once by the operator (activate or rollback).
    Activated { version: String },
}
