//! What the real binary writes to stderr when it is not a terminal (journald, `2>file`, a pipe):
//! logs in plain text without ANSI escapes, or JSON lines on request (`--log-format json`,
//! `NETWARDEN_LOG_FORMAT=json`); offline commands without progress bars, only their summary. The daemon runs on loopback with an ephemeral NetFlow port and
//! no HTTP, and is killed (by its PID) once it has logged its start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The line every start logs (daemon.rs), after the model line.
const STARTED: &str = "netwarden started";

/// Runs `netwarden run` with `args`/`env` until it logged its start (or 60 s passed); returns
/// its stderr lines.
fn daemon_stderr(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netwarden"));
    cmd.args(args)
        .args([
            "run",
            "--netflow-listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("NO_COLOR")
        .env_remove("NETWARDEN_LOG_FORMAT")
        .env("NETWARDEN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn netwarden");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.contains(STARTED);
                lines.push(l);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    child.kill().expect("kill netwarden");
    child.wait().expect("wait netwarden");
    reader.join().expect("stderr reader");
    lines.extend(rx.try_iter());
    assert!(
        lines.iter().any(|l| l.contains(STARTED)),
        "no start line within 60 s: {lines:#?}"
    );
    lines
}

#[test]
fn text_logs_to_a_pipe_carry_no_escape_codes() {
    let lines = daemon_stderr(&[], &[]);
    let text = lines.join("\n");
    assert!(!text.contains('\u{1b}'), "ESC in piped logs: {text:?}");
    // Still the human format, level and message readable.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INFO") && l.contains(STARTED)),
        "{text}"
    );
}

fn assert_json_lines(lines: &[String]) {
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v["timestamp"].is_string(), "{l}");
        assert!(v["level"].is_string(), "{l}");
        assert!(v["fields"]["message"].is_string(), "{l}");
    }
    let start = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["fields"]["message"] == STARTED)
        .expect("start event");
    assert_eq!(start["level"], "INFO");
    // Structured fields stay fields, not text in the message.
    assert!(start["fields"]["listen"].is_string(), "{start}");
}

#[test]
fn log_format_json_flag_gives_one_json_object_per_line() {
    assert_json_lines(&daemon_stderr(&["--log-format", "json"], &[]));
}

#[test]
fn log_format_json_from_the_environment() {
    assert_json_lines(&daemon_stderr(&[], &[("NETWARDEN_LOG_FORMAT", "json")]));
}

#[test]
fn an_unknown_log_format_is_refused_before_anything_starts() {
    let out = Command::new(env!("CARGO_BIN_EXE_netwarden"))
        .args(["validate", "/nonexistent/netwarden.toml"])
        .env("NETWARDEN_LOG_FORMAT", "xml")
        .output()
        .expect("run netwarden");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NETWARDEN_LOG_FORMAT=\"xml\" is not a log format"),
        "{err}"
    );
}

#[test]
fn features_off_terminal_prints_only_the_summary_no_progress_bar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("f.csv");
    let pcap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/netflow/softflowd-v9-scan-mixed.pcap"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_netwarden"))
        .args(["features", "--netflow-pcap", pcap, "--out"])
        .arg(&csv)
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .output()
        .expect("run netwarden");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains(['\u{1b}', '\r']),
        "terminal control in {err:?}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("softflowd-v9-scan-mixed.pcap: ") && lines[0].contains(" flow rows"),
        "{err}"
    );
    let rows = std::fs::read_to_string(&csv).expect("csv").lines().count();
    assert!(rows > 1, "no feature rows");
}

#[test]
fn an_offline_command_writing_into_a_closed_pipe_ends_without_a_panic() {
    let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/bundles/flow-ae");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netwarden"))
        .args(["model", "check", bundle])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netwarden");
    // Close the reading end before the command writes anything, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
