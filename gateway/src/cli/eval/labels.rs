//! A lab run's ground truth: `labels.csv` (one row per phase) and `params.json` (how the run
//! was made). Every problem is reported with the file and line, all of them at once; nothing in
//! a bad file panics.
//!
//! `labels.csv` columns (header required, any order, extra columns ignored):
//! `phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes`. `label` is `benign` or
//! `malicious`; times are epoch ms; `attacker_ip`/`victim_ip` hold one address or several
//! separated by `;` or spaces, and may be empty on benign rows. Fields may be quoted as in
//! RFC 4180 (notes often hold commas).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The columns `labels.csv` must have.
pub const COLUMNS: [&str; 8] = [
    "phase",
    "kind",
    "label",
    "attacker_ip",
    "victim_ip",
    "start_ms",
    "end_ms",
    "notes",
];

/// Problems listed per file at most (the rest are counted).
const MAX_PROBLEMS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Benign,
    Malicious,
}

/// One row of `labels.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Line in the file (1 is the header).
    pub line: usize,
    pub phase: String,
    pub kind: String,
    pub label: Label,
    pub attackers: Vec<IpAddr>,
    pub victims: Vec<IpAddr>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub notes: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {}", .problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("{path} is not valid JSON: {message}")]
    Params { path: PathBuf, message: String },
}

/// Reads and checks `labels.csv`.
pub fn read_labels(path: &Path) -> Result<Vec<Phase>, LabelsError> {
    let bytes = std::fs::read(path).map_err(|error| LabelsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_labels(&String::from_utf8_lossy(&bytes)).map_err(|problems| LabelsError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// Reads `params.json` (any JSON object); `None` when the file does not exist.
pub fn read_params(path: &Path) -> Result<Option<serde_json::Value>, LabelsError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(LabelsError::Read {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| LabelsError::Params {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if !value.is_object() {
        return Err(LabelsError::Params {
            path: path.to_path_buf(),
            message: "expected a JSON object".into(),
        });
    }
    Ok(Some(value))
}

/// Parses the text of `labels.csv`; `Err` lists every problem found ("line N: ...").
pub fn parse_labels(text: &str) -> Result<Vec<Phase>, Vec<String>> {
    let mut problems = Vec::new();
    let mut extra = 0usize;
    let mut note = |problems: &mut Vec<String>, msg: String| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(msg);
        } else {
            extra += 1;
        }
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let Some((_, header)) = lines.find(|(_, l)| !l.trim().is_empty()) else {
        return Err(vec![format!(
            "empty file (expected the header {})",
            COLUMNS.join(",")
        )]);
    };
    let header = match split_csv(header.trim_start_matches('\u{feff}')) {
        Ok(h) => h,
        Err(e) => return Err(vec![format!("header: {e}")]),
    };
    let mut index = [0usize; COLUMNS.len()];
    let mut missing = Vec::new();
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        match header.iter().position(|h| h.trim() == name) {
            Some(i) => *slot = i,
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(vec![format!(
            "header lacks column(s) {} (expected {})",
            missing.join(", "),
            COLUMNS.join(",")
        )]);
    }
    let mut phases = Vec::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let fields = match split_csv(text) {
            Ok(f) => f,
            Err(e) => {
                note(&mut problems, format!("line {line}: {e}"));
                continue;
            }
        };
        if fields.len() < header.len() {
            note(
                &mut problems,
                format!(
                    "line {line}: {} fields, the header has {}",
                    fields.len(),
                    header.len()
                ),
            );
            continue;
        }
        let get = |c: usize| fields[index[c]].trim();
        let mut row_problems = Vec::new();
        let label = match get(2).to_ascii_lowercase().as_str() {
            "benign" => Some(Label::Benign),
            "malicious" => Some(Label::Malicious),
            other => {
                row_problems.push(format!(
                    "label {other:?} is neither \"benign\" nor \"malicious\""
                ));
                None
            }
        };
        let mut ips = |col: usize| -> Vec<IpAddr> {
            let mut out = Vec::new();
            for part in get(col)
                .split(|c: char| c == ';' || c == '|' || c.is_whitespace())
                .filter(|p| !p.is_empty())
            {
                match part.parse() {
                    Ok(ip) => out.push(ip),
                    Err(_) => {
                        row_problems.push(format!("{} {part:?} is not an IP address", COLUMNS[col]))
                    }
                }
            }
            out
        };
        let attackers = ips(3);
        let victims = ips(4);
        let mut ms = |col: usize| -> Option<u64> {
            let v = get(col);
            match v.parse::<u64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    row_problems.push(format!(
                        "{} {v:?} is not a whole number of epoch ms",
                        COLUMNS[col]
                    ));
                    None
                }
            }
        };
        let start_ms = ms(5);
        let end_ms = ms(6);
        if let (Some(s), Some(e)) = (start_ms, end_ms) {
            if e < s {
                row_problems.push(format!("end_ms {e} is before start_ms {s}"));
            }
        }
        if label == Some(Label::Malicious) && attackers.is_empty() && row_problems.is_empty() {
            row_problems.push("a malicious phase needs an attacker_ip".into());
        }
        if !row_problems.is_empty() {
            for p in row_problems {
                note(&mut problems, format!("line {line}: {p}"));
            }
            continue;
        }
        let (Some(label), Some(start_ms), Some(end_ms)) = (label, start_ms, end_ms) else {
            continue;
        };
        phases.push(Phase {
            line,
            phase: get(0).to_string(),
            kind: get(1).to_string(),
            label,
            attackers,
            victims,
            start_ms,
            end_ms,
            notes: get(7).to_string(),
        });
    }
    if problems.is_empty() && phases.is_empty() {
        problems.push("no phases after the header".into());
    }
    if extra > 0 {
        problems.push(format!("... and {extra} more problem(s)"));
    }
    if problems.is_empty() {
        Ok(phases)
    } else {
        Err(problems)
    }
}

/// Splits one CSV line into fields (RFC 4180 quoting; no newlines inside fields).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == ',' {
            fields.push(std::mem::take(&mut field));
            at_start = true;
            continue;
        } else if c == '"' && at_start && field.trim().is_empty() {
            field.clear();
            quoted = true;
        } else {
            field.push(c);
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes";

    #[test]
    fn parses_phases_quotes_and_lists() {
        let text = format!(
            "{HEADER}\r\nlead-in,benign,benign,,,1000,5000,\n\
             scan,nmap_syn,malicious,10.0.0.9,\"10.0.0.2;10.0.0.3\",5000,6000,\"nmap -sS, fast \"\"T4\"\"\"\n"
        );
        let p = parse_labels(&text).expect("valid");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].label, Label::Benign);
        assert!(p[0].attackers.is_empty());
        assert_eq!(p[1].line, 3);
        assert_eq!(p[1].kind, "nmap_syn");
        assert_eq!(p[1].victims.len(), 2);
        assert_eq!(p[1].notes, "nmap -sS, fast \"T4\"");
        assert_eq!((p[1].start_ms, p[1].end_ms), (5000, 6000));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = format!(
            "{HEADER}\nscan,x,evil,10.0.0.9,,1,2,\nscan,x,malicious,10.0.0.999,,1,2,\n\
             scan,x,malicious,,,1,2,\nscan,x,benign,,,9,2,\nscan,x,benign,,,soon,2,\nshort,row\n"
        );
        let errs = parse_labels(&text).expect_err("invalid");
        let all = errs.join("\n");
        assert!(all.contains("line 2: label \"evil\""), "{all}");
        assert!(
            all.contains("line 3: attacker_ip \"10.0.0.999\" is not an IP"),
            "{all}"
        );
        assert!(
            all.contains("line 4: a malicious phase needs an attacker_ip"),
            "{all}"
        );
        assert!(
            all.contains("line 5: end_ms 2 is before start_ms 9"),
            "{all}"
        );
        assert!(all.contains("line 6: start_ms \"soon\""), "{all}");
        assert!(all.contains("line 7: 2 fields, the header has 8"), "{all}");
    }

    #[test]
    fn bad_headers_and_empty_files() {
        assert!(parse_labels("")
            .expect_err("empty")
            .join("")
            .contains("empty file"));
        let e = parse_labels("phase,kind,label\n").expect_err("short header");
        assert!(e[0].contains("lacks column(s) attacker_ip"), "{e:?}");
        let e = parse_labels(&format!("{HEADER}\n")).expect_err("no rows");
        assert!(e[0].contains("no phases"), "{e:?}");
        let e = parse_labels(&format!("{HEADER}\na,b,benign,,,1,2,\"open\n")).expect_err("quote");
        assert!(e[0].contains("line 2: unterminated"), "{e:?}");
    }

    #[test]
    fn columns_found_by_name_and_extra_ignored() {
        let text = "start_ms,end_ms,label,phase,kind,attacker_ip,victim_ip,notes,extra\n\
                    1,2,malicious,p,k,10.0.0.1,,n,zzz\n";
        let p = parse_labels(text).expect("valid");
        assert_eq!(
            p[0].attackers,
            vec!["10.0.0.1".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(p[0].phase, "p");
    }

    #[test]
    fn params_must_be_a_json_object() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("params.json");
        assert!(read_params(&p).expect("absent is fine").is_none());
        std::fs::write(&p, b"{\"seed\": 3}").expect("write");
        assert_eq!(read_params(&p).expect("ok").expect("some")["seed"], 3);
        std::fs::write(&p, b"[1]").expect("write");
        let e = read_params(&p).expect_err("array").to_string();
        assert!(e.contains("params.json") && e.contains("object"), "{e}");
        std::fs::write(&p, b"{seed").expect("write");
        let e = read_params(&p).expect_err("broken").to_string();
        assert!(e.contains("params.json is not valid JSON"), "{e}");
    }
}
