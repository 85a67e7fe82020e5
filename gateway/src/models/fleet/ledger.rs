//! What the gateway knows about delivered models, in a small sled database of its own
//! (`<data_dir>/fleet/ledger`), so it survives restarts: per detector the state
//! (`received`, `verified`, `shadowing`, `active`, `rejected`, `rolled_back`), the version
//! running, the one before it, the newest version ever verified (an older or equal one is
//! refused, even after a restart), the last refusal with its check, and a short history. The
//! ids of sets already handled are kept too, so a broker's retained copies, delivered again on
//! every reconnect, are not judged twice.
//!
//! Verified bundles are written under `<data_dir>/fleet/bundles/<detector>/<version>/` as
//! ordinary bundle directories (`manifest.json`, `manifest.sig`, `model.onnx`); the previous
//! ones stay there for `netwarden model activate` and rollbacks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::shadow::Trial;

/// History entries kept per detector.
const HISTORY: usize = 32;
/// Set ids remembered.
const HANDLED: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open the model ledger {path}: {error} (is a netwarden daemon running on this data directory? use the HTTP API then)")]
    Open { path: PathBuf, error: sled::Error },
    #[error("model ledger: {0}")]
    Db(#[from] sled::Error),
    #[error("cannot write bundle {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// States, as firmware updaters report them.
pub mod state {
    pub const RECEIVED: &str = "received";
    pub const VERIFIED: &str = "verified";
    pub const SHADOWING: &str = "shadowing";
    pub const ACTIVE: &str = "active";
    pub const REJECTED: &str = "rejected";
    pub const ROLLED_BACK: &str = "rolled_back";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts_ms: u64,
    pub version: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<Trial>,
}

/// One detector's delivered-model state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorState {
    /// The state of the latest delivery (see [`state`]); empty before the first one.
    pub state: String,
    /// The version the state is about.
    pub version: Option<String>,
    /// The delivered version running (`None`: the configured or built-in bundle).
    pub active: Option<String>,
    /// The delivered version that ran before it (rollbacks go there).
    pub previous: Option<String>,
    /// The newest version ever verified: anything not newer is refused.
    pub highest: Option<String>,
    /// Shadow or watch progress, 0 to 1, while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<Event>,
    pub history: Vec<Event>,
    pub ts_ms: u64,
}

#[derive(Debug)]
pub struct Ledger {
    db: sled::Db,
    detectors: sled::Tree,
    handled: sled::Tree,
    dir: PathBuf,
}

impl Ledger {
    pub fn open(data_dir: &Path) -> Result<Ledger, LedgerError> {
        let dir = data_dir.join("fleet");
        let path = dir.join("ledger");
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(1 << 20)
            .open()
            .map_err(|error| LedgerError::Open { path, error })?;
        Ok(Ledger {
            detectors: db.open_tree("detectors")?,
            handled: db.open_tree("handled")?,
            db,
            dir,
        })
    }

    pub fn get(&self, detector: &str) -> DetectorState {
        self.detectors
            .get(detector)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default()
    }

    pub fn all(&self) -> BTreeMap<String, DetectorState> {
        self.detectors
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                Some((
                    String::from_utf8(k.to_vec()).ok()?,
                    serde_json::from_slice(&v).ok()?,
                ))
            })
            .collect()
    }

    /// Changes a detector's record and writes it through (flushed: a refusal or promotion is
    /// not forgotten by a crash right after).
    pub fn update(
        &self,
        detector: &str,
        f: impl FnOnce(&mut DetectorState),
    ) -> Result<DetectorState, LedgerError> {
        let mut s = self.get(detector);
        f(&mut s);
        let bytes = serde_json::to_vec(&s).unwrap_or_default();
        self.detectors.insert(detector, bytes)?;
        self.db.flush()?;
        Ok(s)
    }

    /// Records a state change: the state, its history entry and, for a refusal, the last
    /// refusal; logs it.
    pub fn record(&self, detector: &str, event: Event) -> Result<DetectorState, LedgerError> {
        match event.state.as_str() {
            state::REJECTED | state::ROLLED_BACK => {
                tracing::warn!(detector, version = %event.version,
                state = %event.state, check = event.check.as_deref().unwrap_or(""),
                reason = event.reason.as_deref().unwrap_or(""), "Fleet model refused")
            }
            _ => tracing::info!(detector, version = %event.version, state = %event.state,
                reason = event.reason.as_deref().unwrap_or(""), "Fleet model state"),
        }
        self.update(detector, |s| {
            s.state.clone_from(&event.state);
            s.version = Some(event.version.clone());
            s.ts_ms = event.ts_ms;
            s.progress = None;
            match event.state.as_str() {
                state::REJECTED | state::ROLLED_BACK => s.last_refusal = Some(event.clone()),
                state::VERIFIED => {
                    let newer = s.highest.as_deref().is_none_or(|h| {
                        super::verify::compare_versions(&event.version, h)
                            .is_some_and(|o| o.is_gt())
                    });
                    if newer {
                        s.highest = Some(event.version.clone());
                    }
                }
                _ => {}
            }
            s.history.push(event);
            if s.history.len() > HISTORY {
                s.history.remove(0);
            }
        })
    }

    /// Makes `version` the running delivered version (promotion, activation).
    pub fn set_active(&self, detector: &str, version: Option<String>) -> Result<(), LedgerError> {
        self.update(detector, |s| {
            if s.active != version {
                s.previous = s.active.take();
                s.active = version;
            }
        })?;
        Ok(())
    }

    pub fn set_progress(&self, detector: &str, progress: f64) -> Result<(), LedgerError> {
        self.update(detector, |s| s.progress = Some(progress))?;
        Ok(())
    }

    pub fn is_handled(&self, id: &[u8; 16]) -> bool {
        self.handled.contains_key(id).unwrap_or(false)
    }

    pub fn mark_handled(&self, id: &[u8; 16], now_ms: u64) -> Result<(), LedgerError> {
        self.handled.insert(id, &now_ms.to_be_bytes())?;
        if self.handled.len() > HANDLED {
            // Forget the oldest.
            let mut all: Vec<(u64, sled::IVec)> = self
                .handled
                .iter()
                .filter_map(Result::ok)
                .map(|(k, v)| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&v[..8.min(v.len())]);
                    (u64::from_be_bytes(b), k)
                })
                .collect();
            all.sort();
            for (_, k) in all.iter().take(all.len() - HANDLED) {
                self.handled.remove(k)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// Where a delivered bundle lives.
    pub fn bundle_dir(&self, detector: &str, version: &str) -> PathBuf {
        self.dir.join("bundles").join(detector).join(version)
    }

    /// The delivered versions on disk for `detector`.
    pub fn versions_on_disk(&self, detector: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.join("bundles").join(detector))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().join("manifest.json").is_file())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| super::verify::compare_versions(a, b).unwrap_or_else(|| a.cmp(b)));
        v
    }

    /// Writes a verified bundle (a temporary directory renamed into place).
    pub fn save_bundle(
        &self,
        detector: &str,
        version: &str,
        manifest: &str,
        signature: &str,
        model_file: &str,
        model: &[u8],
    ) -> Result<PathBuf, LedgerError> {
        if version.contains(['/', '\\'])
            || version.starts_with('.')
            || model_file.contains(['/', '\\'])
        {
            return Err(LedgerError::Refused(format!(
                "version {version:?} or model file {model_file:?} is not a plain name"
            )));
        }
        let dir = self.bundle_dir(detector, version);
        let tmp = dir.with_extension("partial");
        let w = |path: PathBuf, bytes: &[u8]| {
            std::fs::write(&path, bytes).map_err(|error| LedgerError::Write { path, error })
        };
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|error| LedgerError::Write {
            path: tmp.clone(),
            error,
        })?;
        w(tmp.join("manifest.json"), manifest.as_bytes())?;
        w(
            tmp.join("manifest.sig"),
            format!("{}\n", signature.trim()).as_bytes(),
        )?;
        w(tmp.join(model_file), model)?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(|error| LedgerError::Write {
            path: dir.clone(),
            error,
        })?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(version: &str, st: &str) -> Event {
        Event {
            ts_ms: 1,
            version: version.into(),
            state: st.into(),
            ..Event::default()
        }
    }

    #[test]
    fn highest_version_and_state_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let l = Ledger::open(dir.path()).expect("open");
            l.record("flow", ev("2026.1.2", state::VERIFIED))
                .expect("record");
            l.record("flow", ev("2026.1.1", state::VERIFIED))
                .expect("record");
            l.record(
                "flow",
                Event {
                    check: Some("golden".into()),
                    ..ev("2026.1.3", state::REJECTED)
                },
            )
            .expect("record");
            l.set_active("flow", Some("2026.1.2".into()))
                .expect("active");
            l.mark_handled(&[7; 16], 5).expect("handled");
        }
        let l = Ledger::open(dir.path()).expect("reopen");
        let s = l.get("flow");
        assert_eq!(s.highest.as_deref(), Some("2026.1.2"));
        assert_eq!(s.active.as_deref(), Some("2026.1.2"));
        assert_eq!(s.state, state::REJECTED);
        assert_eq!(
            s.last_refusal.and_then(|e| e.check).as_deref(),
            Some("golden")
        );
        assert_eq!(s.history.len(), 3);
        assert!(l.is_handled(&[7; 16]));
        assert!(!l.is_handled(&[8; 16]));
    }

    #[test]
    fn bundles_are_saved_under_their_version_and_listed_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(dir.path()).expect("open");
        for v in ["2026.1.10", "2026.1.9"] {
            l.save_bundle("flow", v, "{}", "sig", "model.onnx", b"m")
                .expect("save");
        }
        assert_eq!(l.versions_on_disk("flow"), vec!["2026.1.9", "2026.1.10"]);
        assert!(l
            .save_bundle("flow", "../x", "{}", "s", "model.onnx", b"m")
            .is_err());
    }
}
