//! The inputs of `[eve]`: files to follow (`[[eve.files]]`, `run --eve PATH`) and unix sockets
//! Suricata writes to (`[[eve.sockets]]`). Filters and windows are the pipeline's
//! (`pipeline/eve/config.rs`); `config/eve.rs` puts the section together.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::parse::DEFAULT_MAX_LINE_BYTES;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEveFile {
    /// `/var/log/suricata/eve.json`, or with `*` in the file name (`eve.*.json`).
    pub path: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEveSocket {
    /// Socket path netwarden binds; Suricata's `eve-log` `filename` with `filetype: unix_stream`
    /// or `unix_dgram`.
    pub path: PathBuf,
    /// `stream` (default) or `dgram`.
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Stream,
    Dgram,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveSocket {
    pub path: PathBuf,
    pub kind: SocketKind,
}

/// The validated inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveInputs {
    /// Paths (or patterns) followed.
    pub files: Vec<PathBuf>,
    pub sockets: Vec<EveSocket>,
    /// Longer lines are skipped and counted (`eve_skipped_oversize`).
    pub max_line_bytes: usize,
    /// How often the files are checked for new lines.
    pub poll_interval: Duration,
}

impl Default for EveInputs {
    fn default() -> Self {
        EveInputs {
            files: Vec::new(),
            sockets: Vec::new(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            poll_interval: Duration::from_millis(200),
        }
    }
}

impl EveInputs {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.sockets.is_empty()
    }
}

/// Checks the inputs; `extra` is `run --eve PATH`.
pub fn validate_inputs(
    files: &[RawEveFile],
    sockets: &[RawEveSocket],
    max_line_bytes: Option<usize>,
    poll_ms: Option<u64>,
    extra: Option<&PathBuf>,
    problem: &mut impl FnMut(&str, String),
) -> EveInputs {
    let mut out = EveInputs::default();
    for (i, f) in files.iter().enumerate() {
        if f.path.as_os_str().is_empty() {
            problem(&format!("eve.files[{i}].path"), "must not be empty".into());
        }
        out.files.push(f.path.clone());
    }
    if let Some(p) = extra {
        out.files.push(p.clone());
    }
    for (i, s) in sockets.iter().enumerate() {
        let kind = match s.kind.as_deref() {
            None | Some("stream") => SocketKind::Stream,
            Some("dgram") => SocketKind::Dgram,
            Some(k) => {
                problem(
                    &format!("eve.sockets[{i}].kind"),
                    format!("{k:?} is neither \"stream\" nor \"dgram\""),
                );
                SocketKind::Stream
            }
        };
        out.sockets.push(EveSocket {
            path: s.path.clone(),
            kind,
        });
    }
    if let Some(n) = max_line_bytes {
        if !(1024..=(64 << 20)).contains(&n) {
            problem(
                "eve.max_line_bytes",
                "must be between 1024 and 67108864".into(),
            );
        }
        out.max_line_bytes = n;
    }
    if let Some(ms) = poll_ms {
        if !(10..=60_000).contains(&ms) {
            problem(
                "eve.poll_interval_ms",
                "must be between 10 and 60000".into(),
            );
        }
        out.poll_interval = Duration::from_millis(ms);
    }
    out
}
