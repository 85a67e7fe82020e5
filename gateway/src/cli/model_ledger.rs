//! `netwarden model list|activate|rollback`: the delivered models of a stopped gateway's data
//! directory (the model ledger, docs/fleet.md). The daemon reads the ledger when it starts, so
//! a change made here applies at the next start.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::models::fleet::ledger::state;
use crate::models::fleet::wire::FLOW as FLOW_DETECTOR;
use crate::models::fleet::{Event, Ledger};

fn open(data_dir: &Path) -> anyhow::Result<Ledger> {
    Ledger::open(data_dir).with_context(|| format!("data directory {}", data_dir.display()))
}

pub fn list(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let ledger = open(data_dir)?;
    let all = ledger.all();
    if json {
        println!("{}", serde_json::to_string(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    for detector in ["flow", "series"] {
        let s = all.get(detector).cloned().unwrap_or_default();
        let on_disk = ledger.versions_on_disk(detector);
        if on_disk.is_empty() && s.state.is_empty() {
            continue;
        }
        println!(
            "{detector}: active {}, previous {}, newest verified {}, state {} {}",
            s.active.as_deref().unwrap_or("(configured)"),
            s.previous.as_deref().unwrap_or("-"),
            s.highest.as_deref().unwrap_or("-"),
            s.state,
            s.version.as_deref().unwrap_or("")
        );
        for v in &on_disk {
            let mark = if s.active.as_deref() == Some(v.as_str()) {
                "*"
            } else {
                " "
            };
            println!("  {mark} {v}  {}", ledger.bundle_dir(detector, v).display());
        }
        if let Some(r) = &s.last_refusal {
            println!(
                "  last refusal: {} {}: {}",
                r.version,
                r.check.as_deref().unwrap_or("?"),
                r.reason.as_deref().unwrap_or("")
            );
        }
        for e in s.history.iter().rev().take(10) {
            println!(
                "  {} {:<12} {:<16} {}",
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.ts_ms)
                ),
                e.state,
                e.version,
                e.reason.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn operator_event(version: &str, reason: &str) -> Event {
    Event {
        ts_ms: crate::now_ms(),
        version: version.to_string(),
        state: state::ACTIVE.to_string(),
        check: None,
        reason: Some(reason.to_string()),
        figures: None,
    }
}

pub fn activate(data_dir: &Path, version: &str) -> anyhow::Result<ExitCode> {
    let ledger = open(data_dir)?;
    if !ledger
        .versions_on_disk(FLOW_DETECTOR)
        .iter()
        .any(|v| v == version)
    {
        bail!(
            "flow version {version} is not on disk (netwarden model list shows what is); only delivered versions can be activated"
        );
    }
    ledger.set_active(FLOW_DETECTOR, Some(version.to_string()))?;
    ledger.record(
        FLOW_DETECTOR,
        operator_event(version, "activated by the operator"),
    )?;
    println!("flow: {version} is active from the next start");
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let ledger = open(data_dir)?;
    let s = ledger.get(FLOW_DETECTOR);
    let Some(current) = s.active.clone() else {
        bail!("flow: no delivered version is active; nothing to roll back");
    };
    let back = s.previous.clone();
    ledger.update(FLOW_DETECTOR, |s| {
        s.active = back.clone();
        s.previous = None;
    })?;
    let mut e = operator_event(&current, "rolled back by the operator");
    e.state = state::ROLLED_BACK.to_string();
    e.check = Some("operator".into());
    ledger.record(FLOW_DETECTOR, e)?;
    println!(
        "flow: {current} rolled back; {} runs from the next start",
        back.as_deref().unwrap_or("the configured model")
    );
    Ok(ExitCode::SUCCESS)
}
