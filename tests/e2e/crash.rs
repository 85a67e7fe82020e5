//! kill -9 at any point never leaves a database that fails to open. The gateway is started on
//! one data directory again and again while a port scan is replayed into it (alerts: history +
//! outbox transactions and flushes; flow and score summaries every second; one-second history
//! buckets created and dropped by retention), killed with SIGKILL after a random delay, and the
//! store is reopened by the test each time: it must open normally (no recovery, no
//! `db.broken-*`), and every alert that was stored before must still be there.
//!
//! Short by default (8 kills); `NW_CRASH_KILLS=200 cargo test -p netwarden-e2e --test crash`
//! runs the long version.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::sinks::store::Store;
use netwarden_e2e::{
    capture_payloads, fixture, free_udp_port, netwarden_bin, tempdir, wait_for, Proc,
};

fn kills() -> usize {
    std::env::var("NW_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// A small xorshift, seeded from the clock (printed, so a failing run can be repeated).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn alert_ids(data: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let store = Store::open(data, 1 << 20, usize::MAX)?;
    anyhow::ensure!(
        store.recovery().is_none(),
        "the database needed recovery after kill -9: {:?}",
        store.recovery()
    );
    Ok(store
        .alerts(0, usize::MAX)?
        .into_iter()
        .map(|a| (a.id, a.ts_ms))
        .collect())
}

#[test]
fn kill_9_during_writes_never_leaves_a_database_that_fails_to_open() -> anyhow::Result<()> {
    let dir = tempdir::Dir::new("crash")?;
    let data = dir.path().join("data");
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[history]\nsummary_interval = \"1s\"\nbucket = \"1s\"\nmax_age = \"1m\"\ncheck_interval = \"1s\"\n",
    )?;
    let payloads = capture_payloads(&fixture("netflow/softflowd-v9-scan-mixed.pcap"))?;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut known: Vec<(String, u64)> = Vec::new();
    for round in 0..kills() {
        let port = free_udp_port()?;
        let _ = std::fs::remove_file(data.join("stats.json"));
        let log = std::fs::File::create(dir.path().join(format!("netwarden-{round}.log")))?;
        let mut gw = Proc::spawn(
            "netwarden",
            Command::new(netwarden_bin()?)
                .arg("run")
                .args(["--learn", "off"])
                .arg("--config")
                .arg(&config)
                .args(["--netflow-listen", &format!("127.0.0.1:{port}")])
                .args(["--http-listen", "127.0.0.1:0"])
                .arg("--data-dir")
                .arg(&data)
                .env("NETWARDEN_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log),
        )?;
        wait_for(Duration::from_secs(30), "netwarden to start", || {
            data.join("stats.json").exists().then_some(())
        })?;
        // Replay in a loop until the kill (bounded: at most 20 passes of the capture).
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (stop, payloads) = (stop.clone(), payloads.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let sock = UdpSocket::bind("127.0.0.1:0")?;
                for _ in 0..20 {
                    for (i, p) in payloads.iter().enumerate() {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let _ = sock.send_to(p, ("127.0.0.1", port));
                        if i % 10 == 9 {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                }
                Ok(())
            })
        };
        let delay = Duration::from_millis(200 + next(&mut seed) % 2300);
        let started = Instant::now();
        while started.elapsed() < delay && gw.is_running() {
            std::thread::sleep(Duration::from_millis(10));
        }
        anyhow::ensure!(
            gw.is_running(),
            "netwarden exited on its own in round {round}"
        );
        gw.child.kill()?; // SIGKILL
        gw.child.wait()?;
        stop.store(true, Ordering::Relaxed);
        let _ = sender.join();

        let ids = alert_ids(&data)
            .map_err(|e| anyhow::anyhow!("round {round}, killed after {delay:?}: {e:#}"))?;
        // Retention drops alerts older than a minute (max_age); younger ones must all be there.
        let horizon = netwarden::now_ms().saturating_sub(50_000);
        for (id, ts) in known.iter().filter(|(_, ts)| *ts > horizon) {
            anyhow::ensure!(
                ids.iter().any(|(x, _)| x == id),
                "round {round}: alert {id} (ts {ts}) stored before is gone"
            );
        }
        eprintln!(
            "round {round}: killed after {delay:?}, {} alert(s) stored",
            ids.len()
        );
        known = ids;
    }
    let broken: Vec<_> = std::fs::read_dir(&data)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("db.broken"))
        .collect();
    assert!(broken.is_empty(), "no recovery may ever be needed");
    assert!(!known.is_empty(), "the replayed scan raised alerts");
    Ok(())
}
