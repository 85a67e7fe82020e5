//! `nw-snmp-bench`: polls one SNMP agent back to back with netwarden's own client and interface
//! state (the code the daemon runs) and prints polls per second, wall and CPU time per poll, and
//! the share of one core that polling every 10 s would take. Run by tests/bench/snmp_poll.sh
//! against snmpd in a namespace with 1,000 dummy interfaces.
//!
//! ```text
//! nw-snmp-bench ADDR [v2c|v3] [POLLS] [MAX_REPETITIONS]
//! ```
//! v2c uses community `nwtest`, v3 the authPriv (SHA/AES) user of the e2e harness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netwarden::metrics::Metrics;
use netwarden::sources::snmp::config::{Selection, TargetConfig};
use netwarden::sources::snmp::credentials::{
    AuthProtocol, Credentials, PrivProtocol, V3Credentials,
};
use netwarden::sources::snmp::{Client, TargetState};
use netwarden_e2e::{SNMP_AUTH_PASSWORD, SNMP_COMMUNITY, SNMP_PRIV_PASSWORD, SNMP_USER};

/// User + system CPU time of this process (Linux /proc, clock ticks of 10 ms).
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').context("odd /proc/self/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = args.first() else {
        bail!("usage: nw-snmp-bench ADDR [v2c|v3] [POLLS] [MAX_REPETITIONS]");
    };
    let version = args.get(1).map(String::as_str).unwrap_or("v2c");
    let polls: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let max_repetitions: u32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let credentials = match version {
        "v2c" => Credentials::V2c {
            community: SNMP_COMMUNITY.to_string(),
        },
        "v3" => Credentials::V3(V3Credentials {
            user: SNMP_USER.to_string(),
            auth: Some((AuthProtocol::Sha1, SNMP_AUTH_PASSWORD.to_string())),
            privacy: Some((PrivProtocol::Aes128, SNMP_PRIV_PASSWORD.to_string())),
        }),
        other => bail!("unknown version {other:?}"),
    };
    let cfg = TargetConfig {
        name: "bench".into(),
        address: addr.parse().context("ADDR must be ip:port")?,
        credentials,
        interfaces: Selection::All,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        retries: 1,
        max_repetitions,
    };
    let max_gap = cfg.max_gap().as_millis() as u64;
    let metrics = Arc::new(Metrics::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = Client::new(cfg, metrics.clone(), 1);
        let mut state = TargetState::new("bench", Selection::All, max_gap);
        let mut samples = Vec::new();
        // Warm-up: session, v3 discovery, the agent's first cache fill.
        let walk = client.poll().await?;
        state.on_walk(&walk, netwarden::now_ms(), &mut samples);
        let interfaces = walk.rows.len();
        let mut walls = Vec::with_capacity(polls);
        let cpu0 = cpu_time()?;
        let t0 = Instant::now();
        for _ in 0..polls {
            let t = Instant::now();
            let walk = client.poll().await?;
            samples.clear();
            state.on_walk(&walk, netwarden::now_ms(), &mut samples);
            walls.push(t.elapsed());
        }
        let wall = t0.elapsed();
        let cpu = cpu_time()? - cpu0;
        walls.sort_unstable();
        let per_poll_cpu = cpu.as_secs_f64() / polls as f64;
        let m = metrics.snapshot();
        println!(
            "{version} max_repetitions={max_repetitions}: {interfaces} interfaces, {polls} polls in {:.2} s = {:.2} polls/s; \
             wall per poll median {:.1} ms, max {:.1} ms; poller CPU {:.2} ms per poll \
             = {:.2}% of one core at one poll per 10 s; samples per poll {}; timeouts {}, rebuilds {}",
            wall.as_secs_f64(),
            polls as f64 / wall.as_secs_f64(),
            walls[walls.len() / 2].as_secs_f64() * 1e3,
            walls[walls.len() - 1].as_secs_f64() * 1e3,
            per_poll_cpu * 1e3,
            per_poll_cpu / 10.0 * 100.0,
            samples.len(),
            m.snmp_timeouts,
            m.snmp_session_rebuilds,
        );
        Ok(())
    })
}
