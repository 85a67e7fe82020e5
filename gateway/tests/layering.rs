//! The dependency rules of `gateway/src` (docs/ARCHITECTURE.md, "Dependency rules"), checked by
//! reading the source files: every `crate::` and `super::` path is resolved to the top-level
//! module it names, and each file may name only the modules its folder is allowed to.
//!
//! - `records/` names nothing of the crate;
//! - `sources/`, `pipeline/`, `sinks/` name only `records`, `models`, `metrics`, `shutdown`
//!   and their own folder (never each other);
//! - `models/` names only `records`, `metrics`, `shutdown` and itself;
//! - no component (those five) names `config`;
//! - only `main.rs` and `cli/` name `runtime`.
//!
//! Items of the crate root (`crate::now_ms`) are allowed everywhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `sinks/mqtt/mod.rs` -> [sinks, mqtt]; `lib.rs` -> [].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// Every `crate::...` / `super::...` path in `text`, each as its segments and the byte offset
/// where it starts (grouped imports `crate::{a::b, c}` give one path per member).
fn paths_in(line: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        let starts = ["crate::", "super::"]
            .iter()
            .find(|p| rest.starts_with(**p))
            .copied();
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        match starts {
            Some(_) if boundary => {
                let (segments, used) = read_path(rest);
                out.extend(segments.into_iter().map(|p| (i, p)));
                i += used.max(1);
            }
            _ => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// Reads one path (with a possible brace group) from the start of `s`.
fn read_path(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut segs = Vec::new();
    let mut i = 0;
    let b = s.as_bytes();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i > start {
            segs.push(s[start..i].to_string());
        }
        if s[i..].starts_with("::{") {
            i += 3;
            let mut depth = 1;
            let open = i;
            while i < b.len() && depth > 0 {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            let close = if depth == 0 { i - 1 } else { i };
            let inner = &s[open..close];
            let mut members = Vec::new();
            let mut d = 0;
            let mut from = 0;
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => d += 1,
                    '}' => d -= 1,
                    ',' if d == 0 => {
                        members.push(&inner[from..k]);
                        from = k + 1;
                    }
                    _ => {}
                }
            }
            members.push(&inner[from..]);
            let mut out = Vec::new();
            for m in members.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
                let (sub, _) = read_path(m);
                for p in sub {
                    let mut full = segs.clone();
                    full.extend(p);
                    out.push(full);
                }
            }
            return (out, i);
        }
        if s[i..].starts_with("::") {
            i += 2;
            continue;
        }
        return (vec![segs], i);
    }
}

/// The crate's top-level module a path names, resolved from the file's module; `None` for an
/// item of the crate root.
fn top_module(path: &[String], here: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("super") => {
            base = here.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let first = base.first().or(rest.first())?;
    modules.contains(first).then(|| first.clone())
}

/// What the folder of a file may name, or `None` when it is unrestricted.
fn allowed(top: &str) -> Option<&'static [&'static str]> {
    match top {
        "records" => Some(&[]),
        "sources" | "pipeline" | "sinks" => Some(&["records", "models", "metrics", "shutdown"]),
        "models" => Some(&["records", "metrics", "shutdown"]),
        _ => None,
    }
}

fn violations() -> Vec<String> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("src")
        .filter_map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_stem()?.to_string_lossy().into_owned();
            (p.is_dir() || p.extension().is_some_and(|x| x == "rs")).then_some(name)
        })
        .filter(|n| !matches!(n.as_str(), "lib" | "main"))
        .collect();
    let mut found = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let here = module_path(rel);
        let own = here.first().cloned().unwrap_or_default();
        let text = std::fs::read_to_string(file).expect("read");
        // Comment lines (docs, intra-doc links) are blanked; multi-line `use` groups stay whole.
        let code: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    ""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for (at, path) in paths_in(&code) {
            let n = code[..at].matches('\n').count();
            {
                let Some(target) = top_module(&path, &here, &modules) else {
                    continue;
                };
                if target == own {
                    continue;
                }
                let at = format!("{}:{}: `{}`", rel.display(), n + 1, path.join("::"));
                if let Some(ok) = allowed(&own) {
                    if !ok.contains(&target.as_str()) {
                        found.push(format!("{at}: {own}/ may not import {target}"));
                        continue;
                    }
                }
                if target == "runtime" && !(rel == Path::new("main.rs") || own == "cli") {
                    found.push(format!("{at}: only main.rs and cli/ may import runtime"));
                }
            }
        }
    }
    found
}

#[test]
fn imports_follow_the_dependency_rules() {
    let found = violations();
    assert!(
        found.is_empty(),
        "{} import(s) break the dependency rules (docs/ARCHITECTURE.md):\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

#[test]
fn the_checker_sees_grouped_and_relative_paths() {
    let modules: BTreeSet<String> = ["records", "sinks", "pipeline", "config"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let here = vec!["sinks".to_string(), "http".to_string()];
    let tops = |line: &str| -> Vec<Option<String>> {
        paths_in(line)
            .iter()
            .map(|(_, p)| top_module(p, &here, &modules))
            .collect()
    };
    assert_eq!(
        tops("use crate::{records::Alert, pipeline::{FlowPipeline, x}};"),
        [
            Some("records".into()),
            Some("pipeline".into()),
            Some("pipeline".into())
        ]
    );
    assert_eq!(tops("let n = crate::now_ms();"), [None]);
    assert_eq!(
        tops("use super::super::config::X;"),
        [Some("config".into())]
    );
    assert_eq!(tops("use super::store::Store;"), [Some("sinks".into())]);
    assert!(tops("let supercrate::x = 1;").is_empty());
    assert_eq!(
        tops("use crate::{\n    records::Alert,\n    sinks::store::Store,\n};"),
        [Some("records".into()), Some("sinks".into())]
    );
}

/// Logic files (Rust sources) in `gateway/src` over this many lines mix several jobs.
const MAX_LINES: usize = 600;

#[test]
fn no_logic_file_is_over_600_lines() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("read").lines().count();
            (n > MAX_LINES).then(|| {
                format!(
                    "{} ({n} lines)",
                    f.strip_prefix(&src).expect("src").display()
                )
            })
        })
        .collect();
    assert!(
        long.is_empty(),
        "{} file(s) over {MAX_LINES} lines:\n  {}",
        long.len(),
        long.join("\n  ")
    );
}
