//! Following one `eve.json` the way Fluent Bit's tail input and Vector's file source do.
//!
//! - **Position**: the offset just past the last complete line handed out, with the file's
//!   inode and a fingerprint of its first line (FNV-1a of up to 1 KiB), saved by the caller
//!   after it has processed the lines ([`FileTail::position`]). On start the saved position is
//!   used when inode and fingerprint match; otherwise the file is new and read from 0.
//! - **Rename rotation** (`mv eve.json eve.json.1`, then Suricata reopens on SIGHUP): when the
//!   path names another inode, the old file is read to its end (the writer may still append
//!   until it reopens, so we switch only after a poll found nothing new in it), then the new
//!   file is read from 0. A rotation that happened while netwarden was stopped is caught too:
//!   the saved inode is looked for among the path's siblings and read from the saved offset.
//! - **copytruncate**: the file shrank below what we read, or its first line changed: read
//!   again from 0. (Lines written between our last read and the copy are only in the copy:
//!   copytruncate's own race, the same for every follower.)
//! - **Partial last line**: kept in memory, not handed out, not counted in the position.
//! - **Oversize line**: past `max_line` bytes the partial line is dropped and the rest of it
//!   skipped up to its newline (counted once as oversize).
//!
//! No I/O beyond the file itself; the caller owns the clock (poll interval) and the store.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes of the first line used for the fingerprint.
const FINGERPRINT_BYTES: usize = 1024;
/// Read size per `read` call.
const CHUNK: usize = 64 * 1024;

/// Where reading stopped, as saved between runs (24 bytes in sled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub inode: u64,
    /// FNV-1a of the first line (0 while the file has no complete first line).
    pub fingerprint: u64,
    pub offset: u64,
}

impl Position {
    pub fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.inode.to_be_bytes());
        b[8..16].copy_from_slice(&self.fingerprint.to_be_bytes());
        b[16..].copy_from_slice(&self.offset.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Position> {
        let word = |r: std::ops::Range<usize>| Some(u64::from_be_bytes(b.get(r)?.try_into().ok()?));
        Some(Position {
            inode: word(0..8)?,
            fingerprint: word(8..16)?,
            offset: word(16..24)?,
        })
    }
}

/// What one poll saw, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    pub bytes: u64,
    pub rotations: u64,
    pub oversize: u64,
}

struct Open {
    file: File,
    inode: u64,
    fingerprint: u64,
    /// Offset just past the last complete line handed out.
    offset: u64,
    /// Bytes read past `offset` (the partial line); file position is `offset + partial.len()`
    /// (or further while skipping an oversize line).
    read_pos: u64,
    partial: Vec<u8>,
    skipping: bool,
}

/// Follows one path.
pub struct FileTail {
    path: PathBuf,
    max_line: usize,
    cur: Option<Open>,
    /// The file the path named before a rename rotation, read to its end first.
    old: Option<Open>,
    /// Position loaded from the store, applied on first open.
    saved: Option<Position>,
}

impl std::fmt::Debug for FileTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTail")
            .field("path", &self.path)
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

/// FNV-1a, 64 bit: stable across builds (the fingerprint is persisted).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fingerprint of a file's first line, 0 when it has none yet.
fn fingerprint(file: &File) -> u64 {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    match head[..n].iter().position(|&b| b == b'\n') {
        Some(end) => fnv1a(&head[..end]),
        None if n == FINGERPRINT_BYTES => fnv1a(&head),
        None => 0,
    }
}

impl Open {
    fn at(file: File, inode: u64, offset: u64) -> std::io::Result<Open> {
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        let fingerprint = fingerprint(&file);
        Ok(Open {
            file,
            inode,
            fingerprint,
            offset,
            read_pos: offset,
            partial: Vec::new(),
            skipping: false,
        })
    }

    fn restart(&mut self) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.read_pos = 0;
        self.partial.clear();
        self.skipping = false;
        self.fingerprint = fingerprint(&self.file);
        Ok(())
    }

    /// Reads what was appended; hands out complete lines. Returns the bytes read.
    fn read_lines(
        &mut self,
        max_line: usize,
        stats: &mut PollStats,
        out: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<u64> {
        let mut chunk = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = self.file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            self.read_pos += n as u64;
            let mut data = &chunk[..n];
            while let Some(nl) = data.iter().position(|&b| b == b'\n') {
                let (line, rest) = (&data[..nl], &data[nl + 1..]);
                if self.skipping {
                    self.skipping = false;
                } else if self.partial.len() + line.len() > max_line {
                    self.partial.clear();
                    stats.oversize += 1;
                } else if self.partial.is_empty() {
                    out(line);
                } else {
                    self.partial.extend_from_slice(line);
                    out(&self.partial);
                    self.partial.clear();
                }
                self.offset = self.read_pos - rest.len() as u64;
                data = rest;
            }
            if !self.skipping {
                self.partial.extend_from_slice(data);
                if self.partial.len() > max_line {
                    self.partial.clear();
                    self.skipping = true;
                    stats.oversize += 1;
                }
            }
            if self.skipping {
                // Nothing of the oversize line is kept; its bytes count as consumed.
                self.offset = self.read_pos;
            }
        }
        if self.fingerprint == 0 && self.read_pos > 0 {
            self.fingerprint = fingerprint(&self.file);
        }
        Ok(total)
    }

    /// The partial line, handed out when the file is left for good.
    fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() && !self.skipping {
            out(&self.partial);
            self.offset += self.partial.len() as u64;
            self.partial.clear();
        }
    }

    fn position(&self) -> Position {
        Position {
            inode: self.inode,
            fingerprint: self.fingerprint,
            offset: self.offset,
        }
    }
}

impl FileTail {
    pub fn new(path: PathBuf, max_line: usize, saved: Option<Position>) -> FileTail {
        FileTail {
            path,
            max_line,
            cur: None,
            old: None,
            saved,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where to resume after what was handed out so far: save this once those lines are
    /// processed. While an old (rotated) file is still being drained, its position is saved,
    /// so a restart drains it again from there.
    pub fn position(&self) -> Option<Position> {
        self.old
            .as_ref()
            .or(self.cur.as_ref())
            .map(Open::position)
            .or(self.saved)
    }

    /// Reads everything new, calling `out` with each complete line (without its newline).
    pub fn poll(&mut self, out: &mut dyn FnMut(&[u8])) -> std::io::Result<PollStats> {
        let mut stats = PollStats::default();
        if self.cur.is_none() && self.old.is_none() {
            self.open_first(&mut stats)?;
        }
        // A rotated-away file first, to its end.
        if let Some(old) = &mut self.old {
            let n = old.read_lines(self.max_line, &mut stats, out)?;
            stats.bytes += n;
            if n == 0 {
                old.finish(out);
                self.old = None;
            } else {
                return Ok(stats);
            }
        }
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match (&mut self.cur, meta) {
            (None, None) => {}
            (None, Some(m)) => {
                let file = File::open(&self.path)?;
                self.cur = Some(Open::at(file, m.ino(), 0)?);
            }
            (Some(cur), Some(m)) if m.ino() != cur.inode => {
                // Renamed away and a new file in its place: drain the old one first.
                stats.rotations += 1;
                stats.bytes += cur.read_lines(self.max_line, &mut stats, out)?;
                let file = File::open(&self.path)?;
                let new = Open::at(file, m.ino(), 0)?;
                self.old = self.cur.replace(new);
                return Ok(stats);
            }
            (Some(cur), _) => {
                let len = cur.file.metadata()?.len();
                let fp_changed = cur.fingerprint != 0 && fingerprint(&cur.file) != cur.fingerprint;
                if len < cur.read_pos || fp_changed {
                    stats.rotations += 1;
                    cur.restart()?;
                }
            }
        }
        if let Some(cur) = &mut self.cur {
            stats.bytes += cur.read_lines(self.max_line, &mut stats, out)?;
        }
        Ok(stats)
    }

    /// First open: apply the saved position, and catch a rotation that happened while we were
    /// stopped by finding the saved inode among the path's siblings.
    fn open_first(&mut self, stats: &mut PollStats) -> std::io::Result<()> {
        let Some(saved) = self.saved.take() else {
            return Ok(());
        };
        let current = std::fs::metadata(&self.path).ok();
        if let Some(m) = &current {
            if m.ino() == saved.inode {
                let file = File::open(&self.path)?;
                let fp = fingerprint(&file);
                let offset = if (saved.fingerprint == 0 || fp == saved.fingerprint)
                    && saved.offset <= m.len()
                {
                    saved.offset
                } else {
                    stats.rotations += 1;
                    0
                };
                self.cur = Some(Open::at(file, m.ino(), offset)?);
                return Ok(());
            }
        }
        // The saved file is not at the path any more: look for it beside it.
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let Ok(m) = entry.metadata() else { continue };
                if m.ino() != saved.inode || !m.is_file() || saved.offset > m.len() {
                    continue;
                }
                let Ok(file) = File::open(entry.path()) else {
                    continue;
                };
                if saved.fingerprint != 0 && fingerprint(&file) != saved.fingerprint {
                    continue;
                }
                stats.rotations += 1;
                self.old = Some(Open::at(file, saved.inode, saved.offset)?);
                break;
            }
        }
        Ok(())
    }
}

/// The files a configured path names now: itself, or with a `*` in its file name every file of
/// its directory that matches (`eve.*.json` for Suricata's threaded output), sorted.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return vec![pattern.to_path_buf()];
    }
    let dir = pattern
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(t: &mut FileTail) -> Vec<String> {
        let mut got = Vec::new();
        t.poll(&mut |l| got.push(String::from_utf8_lossy(l).into_owned()))
            .expect("poll");
        got
    }

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("open");
        f.write_all(s.as_bytes()).expect("write");
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("eve.json");
        append(&p, "one\ntw");
        let mut t = FileTail::new(p.clone(), 1024, None);
        assert_eq!(lines(&mut t), ["one"]);
        assert_eq!(t.position().expect("pos").offset, 4);
        append(&p, "o\n");
        assert_eq!(lines(&mut t), ["two"]);
        assert_eq!(t.position().expect("pos").offset, 8);
    }

    #[test]
    fn restart_resumes_at_the_saved_offset() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("eve.json");
        append(&p, "a\nb\n");
        let mut t = FileTail::new(p.clone(), 1024, None);
        assert_eq!(lines(&mut t), ["a", "b"]);
        let saved = Position::from_bytes(&t.position().expect("pos").to_bytes());
        append(&p, "c\n");
        let mut t = FileTail::new(p.clone(), 1024, saved);
        assert_eq!(lines(&mut t), ["c"]);
    }

    #[test]
    fn rename_rotation_drains_the_old_file_then_reads_the_new() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("eve.json");
        append(&p, "a\n");
        let mut t = FileTail::new(p.clone(), 1024, None);
        assert_eq!(lines(&mut t), ["a"]);
        append(&p, "b\n");
        std::fs::rename(&p, d.path().join("eve.json.1")).expect("mv");
        append(&d.path().join("eve.json.1"), "c\n"); // the writer has not reopened yet
        append(&p, "d\n");
        let mut got = Vec::new();
        for _ in 0..4 {
            got.extend(lines(&mut t));
        }
        assert_eq!(got, ["b", "c", "d"]);
    }

    #[test]
    fn copytruncate_reads_from_the_start_again() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("eve.json");
        append(&p, "first line\nsecond\n");
        let mut t = FileTail::new(p.clone(), 1024, None);
        assert_eq!(lines(&mut t).len(), 2);
        std::fs::copy(&p, d.path().join("eve.json.1")).expect("cp");
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .expect("truncate");
        append(&p, "x\n");
        assert_eq!(lines(&mut t), ["x"]);
        // Truncated and refilled past the old size before we looked: the fingerprint tells.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .expect("truncate");
        append(&p, "a much longer first line than before\n");
        assert_eq!(lines(&mut t), ["a much longer first line than before"]);
    }

    #[test]
    fn rotation_while_stopped_is_drained_from_the_saved_offset() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("eve.json");
        append(&p, "a\n");
        let mut t = FileTail::new(p.clone(), 1024, None);
        assert_eq!(lines(&mut t), ["a"]);
        let saved = t.position();
        drop(t);
        append(&p, "b\n");
        std::fs::rename(&p, d.path().join("eve.json.1")).expect("mv");
        append(&p, "c\n");
        let mut t = FileTail::new(p.clone(), 1024, saved);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(lines(&mut t));
        }
        assert_eq!(got, ["b", "c"]);
    }

    #[test]
    fn oversize_line_is_skipped_up_to_its_newline() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("eve.json");
        append(&p, &format!("ok\n{}\nnext\n", "x".repeat(200)));
        let mut t = FileTail::new(p.clone(), 64, None);
        let mut got = Vec::new();
        let stats = t
            .poll(&mut |l| got.push(String::from_utf8_lossy(l).into_owned()))
            .expect("poll");
        assert_eq!(got, ["ok", "next"]);
        assert_eq!(stats.oversize, 1);
    }

    #[test]
    fn globs_find_threaded_outputs() {
        let d = tempfile::tempdir().expect("dir");
        for n in ["eve.1.json", "eve.2.json", "eve.json", "other.1.json"] {
            append(&d.path().join(n), "");
        }
        let found = expand(&d.path().join("eve.*.json"));
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["eve.1.json", "eve.2.json"]);
        assert!(glob_match("eve.*.json", "eve.12.json"));
        assert!(!glob_match("eve.*.json", "eve.json"));
    }
}
