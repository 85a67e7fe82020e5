//! Wiring of fleet model delivery (docs/fleet.md): the model ledger, the flow bundle to start
//! with (the delivered version the ledger says is active, if its directory is there), a
//! shadow to resume after a restart, and what the flow thread does with the pipeline's
//! [`Outcome`]s (ledger, log, the retained state).

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::models::fleet::ledger::state;
use crate::models::fleet::wire::FLOW as FLOW_DETECTOR;
use crate::models::fleet::{Candidate, Event, Ledger, Outcome};
use crate::models::{Bundle, LoadError, ModelSources};
use crate::pipeline::FlowPipeline;

/// What the flow thread holds for fleet delivery.
#[derive(Debug)]
pub(super) struct FleetHooks {
    pub ledger: Arc<Ledger>,
    pub changed: Arc<Notify>,
    pub candidates: Receiver<Candidate>,
}

/// Opens the ledger when fleet delivery is on, or when one exists (an operator may have
/// activated a delivered version offline).
pub(super) fn open_ledger(data_dir: &Path, enabled: bool) -> Option<Arc<Ledger>> {
    if !enabled && !data_dir.join("fleet").join("ledger").exists() {
        return None;
    }
    match Ledger::open(data_dir) {
        Ok(l) => Some(Arc::new(l)),
        Err(e) => {
            tracing::error!(error = %e, "Cannot open the model ledger; delivered models are not used");
            None
        }
    }
}

/// The flow bundle to start with: the delivered active version, else the configured one.
pub(super) fn flow_bundle(
    sources: &ModelSources,
    ledger: Option<&Ledger>,
    batch_size: usize,
) -> Result<Bundle, LoadError> {
    if let Some(ledger) = ledger {
        if let Some(v) = ledger.get(FLOW_DETECTOR).active {
            let dir = ledger.bundle_dir(FLOW_DETECTOR, &v);
            match Bundle::load_dir(&dir, batch_size, &sources.trust) {
                Ok(b) => {
                    tracing::info!(version = %v, dir = %dir.display(), "Delivered flow model is active");
                    return Ok(b);
                }
                Err(e) => tracing::error!(version = %v, dir = %dir.display(), error = %e,
                    "Delivered flow model cannot be loaded; using the configured one"),
            }
        }
    }
    sources.load_flow(batch_size)
}

/// A candidate that was shadowing when the gateway stopped shadows again from the start.
pub(super) fn resume_shadow(
    pipeline: &mut FlowPipeline,
    sources: &ModelSources,
    ledger: &Ledger,
    batch_size: usize,
) {
    let s = ledger.get(FLOW_DETECTOR);
    let Some(v) = s
        .version
        .filter(|_| s.state == state::SHADOWING || s.state == state::VERIFIED)
    else {
        return;
    };
    let dir = ledger.bundle_dir(FLOW_DETECTOR, &v);
    match Bundle::load_dir(&dir, batch_size, &sources.trust) {
        Ok(bundle) => {
            tracing::info!(version = %v, "Shadowing of a delivered flow model starts again after the restart");
            pipeline.offer_candidate(Candidate {
                version: v,
                bundle,
                immediate: false,
            });
        }
        Err(e) => {
            let _ = ledger.record(
                FLOW_DETECTOR,
                Event {
                    ts_ms: crate::now_ms(),
                    version: v,
                    state: state::REJECTED.into(),
                    check: Some("disk".into()),
                    reason: Some(format!("cannot load it again after a restart: {e}")),
                    figures: None,
                },
            );
        }
    }
}

impl FleetHooks {
    /// Between two drains of the queue: takes a new candidate, records what happened.
    pub(super) fn poll(&self, pipeline: &mut FlowPipeline) {
        while let Ok(c) = self.candidates.try_recv() {
            pipeline.offer_candidate(c);
        }
        let outcomes = pipeline.take_fleet_outcomes();
        if outcomes.is_empty() {
            return;
        }
        for o in outcomes {
            if let Err(e) = apply(&self.ledger, o) {
                tracing::error!(error = %e, "Cannot write the model ledger");
            }
        }
        self.changed.notify_one();
    }
}

fn apply(ledger: &Ledger, o: Outcome) -> Result<(), crate::models::fleet::LedgerError> {
    let ev = |version: String, st: &str, check: Option<&str>, reason: Option<String>| Event {
        ts_ms: crate::now_ms(),
        version,
        state: st.to_string(),
        check: check.map(str::to_string),
        reason,
        figures: None,
    };
    let d = FLOW_DETECTOR;
    match o {
        Outcome::Shadowing { version } => {
            ledger.record(d, ev(version, state::SHADOWING, None, None))?;
        }
        Outcome::Progress { share, .. } => ledger.set_progress(d, share)?,
        Outcome::Promoted { version, figures } => {
            ledger.set_active(d, Some(version.clone()))?;
            let mut e = ev(
                version,
                state::ACTIVE,
                None,
                Some("promoted after its shadow period; the previous model watches".into()),
            );
            e.figures = Some(figures);
            ledger.record(d, e)?;
        }
        Outcome::Rejected {
            version,
            reason,
            figures,
        } => {
            let mut e = ev(version, state::REJECTED, Some("shadow"), Some(reason));
            e.figures = Some(figures);
            ledger.record(d, e)?;
        }
        Outcome::RolledBack {
            version,
            reason,
            figures,
        } => {
            ledger.update(d, |s| {
                s.active = s.previous.take();
            })?;
            let mut e = ev(version, state::ROLLED_BACK, Some("watch"), Some(reason));
            e.figures = Some(figures);
            ledger.record(d, e)?;
        }
        Outcome::Activated { version } => {
            let delivered = (version != crate::models::fleet::CONFIGURED).then(|| version.clone());
            ledger.set_active(d, delivered)?;
            ledger.record(
                d,
                ev(
                    version,
                    state::ACTIVE,
                    None,
                    Some("activated by the operator".into()),
                ),
            )?;
        }
        Outcome::Settled { version, figures } => {
            let mut e = ev(
                version,
                state::ACTIVE,
                None,
                Some("watch period passed".into()),
            );
            e.figures = Some(figures);
            ledger.record(d, e)?;
        }
    }
    Ok(())
}
