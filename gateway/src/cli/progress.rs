//! Progress of the long offline commands (`features`, `calibrate`, `eval`): a bar on stderr when
//! stderr is a terminal, nothing at all otherwise (a pipe, a CI log, journald), so scripted runs
//! and their captured output stay as they were.
//!
//! ```no_run
//! # fn f(path: &std::path::Path) -> std::io::Result<()> {
//! use netwarden::cli::progress::Progress;
//! let progress = Progress::for_file(path, "replay");
//! let reader = progress.reader(std::fs::File::open(path)?); // counts bytes as they are read
//! // ... consume `reader` ...
//! progress.finish(); // or drop it: the bar is cleared either way
//! # Ok(()) }
//! ```

use std::io::{IsTerminal, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sources::netflow::export_pcap::PcapError;

/// Opens a pcap file (raw packets or NetFlow export datagrams) buffered, with a progress bar
/// over its bytes labelled `label` (shown only on a terminal). Used by `features` and `eval`.
pub fn open_pcap_file(path: &Path, label: &str) -> Result<(impl Read, Progress), PcapError> {
    let file = std::fs::File::open(path).map_err(|error| PcapError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let progress = Progress::for_file(path, label);
    let reader = std::io::BufReader::with_capacity(1 << 20, progress.reader(file));
    Ok((reader, progress))
}

/// A progress bar, or nothing when stderr is not a terminal. Cheap to update (an atomic add;
/// drawing is rate-limited by indicatif), so callers update it per read or per record.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

const BYTES: &str = "{prefix} [{bar:20}] {bytes}/{total_bytes} eta {eta}";
const RECORDS: &str = "{prefix} [{bar:20}] {human_pos}/{human_len} eta {eta}";

impl Progress {
    /// Progress through the bytes of the file at `path` (its size now is the total; a file
    /// whose size cannot be read gets a spinner-like bar without a total).
    pub fn for_file(path: &Path, label: &str) -> Progress {
        let len = std::fs::metadata(path).map(|m| m.len()).ok();
        Progress::new(on_terminal(), len, BYTES, label)
    }

    /// Progress through `total` records (datagrams, rows, windows).
    pub fn for_records(total: u64, label: &str) -> Progress {
        Progress::new(on_terminal(), Some(total), RECORDS, label)
    }

    /// No bar at all, whatever stderr is.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    fn new(shown: bool, len: Option<u64>, template: &str, label: &str) -> Progress {
        if !shown {
            return Progress::hidden();
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(label.to_string());
        Progress { bar: Some(bar) }
    }

    /// Whether a bar is drawn.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    /// Wraps `inner` so that every byte read advances the bar.
    pub fn reader<R: Read>(&self, inner: R) -> ProgressReader<R> {
        ProgressReader {
            inner,
            bar: self.bar.clone(),
        }
    }

    /// Clears the bar, so the summary lines that follow stand alone.
    pub fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// A reader that advances a [`Progress`] by the bytes it reads.
#[derive(Debug)]
pub struct ProgressReader<R> {
    inner: R,
    bar: Option<ProgressBar>,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}

/// Bars only for a person watching: stderr is a terminal.
fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_terminal_there_is_no_bar_and_the_reader_passes_bytes_through() {
        // `cargo test` captures stderr, but be explicit rather than rely on it.
        let p = Progress::new(false, Some(10), BYTES, "t");
        assert!(!p.is_shown());
        let mut out = Vec::new();
        p.reader(&b"0123456789"[..])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"0123456789");
        p.inc(5);
        p.finish();
    }

    #[test]
    fn on_a_terminal_reads_advance_the_bar() {
        let p = Progress::new(true, Some(10), BYTES, "t");
        assert!(p.is_shown());
        let mut out = Vec::new();
        p.reader(&b"0123456789"[..])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(p.bar.as_ref().map(ProgressBar::position), Some(10));
        assert_eq!(p.bar.as_ref().and_then(ProgressBar::length), Some(10));
    }

    #[test]
    fn the_templates_parse() {
        for t in [BYTES, RECORDS] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }
}
