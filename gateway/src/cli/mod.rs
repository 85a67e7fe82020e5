//! The offline commands of the `netwarden` CLI (everything but `run`). They print for humans;
//! the daemon never does.

pub mod demo;
pub mod features;
pub mod series;

use std::path::Path;

use crate::sinks::store::{Store, StoreError};

/// `netwarden alerts`: stored alerts, oldest first.
pub fn list_alerts(
    data_dir: &Path,
    since_ms: u64,
    limit: usize,
    json: bool,
) -> Result<usize, StoreError> {
    let store = Store::open(data_dir, 1 << 20, usize::MAX)?;
    let alerts = store.alerts(since_ms, limit)?;
    for a in &alerts {
        if json {
            println!("{}", serde_json::to_string(a)?);
        } else {
            println!("{}  {:<6}  {}  {}", a.ts, a.severity, a.id, a.summary);
        }
    }
    Ok(alerts.len())
}
