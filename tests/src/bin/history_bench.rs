//! `nw-history-bench`: proves that the history stays under its disk cap through a long replay.
//!
//! Writes a router's history as fast as it can through the real store (alerts with the outbox
//! transaction and flush, then acknowledged; flow and score summaries; SNMP rate samples and
//! series scores), on a simulated clock: each step is one minute of a busy branch router (50
//! interfaces polled every 10 s, 10 alerts, a flow summary with 20 hosts). Retention runs every
//! 5 simulated minutes (the daemon runs it every 30 s of real time, so this leaves it ten times
//! more data to catch up with). Prints one JSON line per second of real time with the disk use
//! (allocated blocks, as `du`), the live-byte estimate and the buckets dropped, then a summary.
//!
//! Usage: nw-history-bench --data-dir DIR --cap-mb N --seconds S [--bucket-min M]
//!        [--max-age-days D] [--speed MINUTES_PER_S]
//! `--speed` paces the replay at that many simulated minutes per real second (0: as fast as
//! possible, about 60 here; a router writes one per minute).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netwarden::records::RateSample;
use netwarden::records::{Alert, Contribution, FlowSubject, ModelRef, Subject};
use netwarden::records::{FlowSummary, HostSummary, ScoreSummary};
use netwarden::sinks::history::{dir_disk_bytes, HistoryConfig};
use netwarden::sinks::store::Store;

const MIN: u64 = 60_000;

fn alert(n: u64, ts_ms: u64) -> Alert {
    Alert {
        id: format!("0194b1c2-{n:08x}-7000-8000-000000000000"),
        ts_ms,
        ts: String::new(),
        site: "branch-17".into(),
        device: "r1".into(),
        detector: "flow_ae".into(),
        model: ModelRef {
            name: "flow-ae".into(),
            version: "1.0.0".into(),
        },
        severity: if n.is_multiple_of(3) { "high" } else { "medium" }.into(),
        score: 0.05,
        threshold: 0.0174,
        subject: Subject::Flow(FlowSubject {
            exporter: "192.0.2.1:2055".into(),
            src_addr: format!("10.1.{}.{}", n % 250, n % 200),
            dst_addr: "10.2.0.2".into(),
            src_port: 44_000,
            dst_port: (n % 1024) as u16,
            protocol: 6,
            flow_first_ms: ts_ms,
            flow_last_ms: ts_ms,
        }),
        top_features: (0..3)
            .map(|i| Contribution {
                feature: format!("feature_{i}"),
                value: 1.0,
                share: 0.3,
            })
            .collect(),
        suppressed_since_last: n % 17,
        rule: None,
        summary: format!(
            "high 10.1.{}.{}:44000 -> 10.2.0.2:{}/tcp: reconstruction error 0.05 is 2.9x the threshold; most unusual: tcp_syn_without_ack=1, src_flows_window=300",
            n % 250,
            n % 200,
            n % 1024
        ),
        incident: None,
    }
}

fn main() -> anyhow::Result<()> {
    let (mut dir, mut cap_mb, mut seconds, mut bucket_min, mut age_days, mut speed) =
        (None, 64u64, 60u64, 60u64, 7u64, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--data-dir" => dir = Some(PathBuf::from(val()?)),
            "--cap-mb" => cap_mb = val()?.parse()?,
            "--seconds" => seconds = val()?.parse()?,
            "--bucket-min" => bucket_min = val()?.parse()?,
            "--max-age-days" => age_days = val()?.parse()?,
            "--speed" => speed = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let dir = dir.context("--data-dir is required")?;
    let cfg = HistoryConfig {
        max_age: Duration::from_secs(age_days * 86_400),
        max_disk_bytes: cap_mb << 20,
        bucket: Duration::from_secs(bucket_min * 60),
        ..HistoryConfig::default()
    };
    let store = Store::open_with(&dir, 8 << 20, 100_000, cfg)?;
    let db_dir = dir.clone(); // everything the store keeps: main database and bucket databases
    let start = Instant::now();
    let mut t = 1_800_000_000_000u64; // simulated wall clock
    let (mut minutes, mut alerts_n, mut records, mut max_disk) = (0u64, 0u64, 0u64, 0u64);
    let mut next_print = Duration::from_secs(1);
    while start.elapsed() < Duration::from_secs(seconds) {
        if speed > 0 {
            let due = Duration::from_secs_f64(minutes as f64 / speed as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        // Ten alerts, stored like the pipeline stores them, then acknowledged by the "broker".
        let batch: Vec<Alert> = (0..10).map(|i| alert(alerts_n + i, t + i * 1000)).collect();
        alerts_n += 10;
        let rows: Vec<(&Alert, String)> = batch
            .iter()
            .map(|a| (a, "netwarden/branch-17/r1/alerts/high".to_string()))
            .collect();
        store.append_alerts(&rows)?;
        for (seq, _) in store.outbox_from(0, 100)? {
            store.outbox_ack(seq)?;
        }
        let h = store.history();
        h.append_flow_summary(&FlowSummary {
            ts_ms: t + MIN - 1,
            window_ms: MIN,
            flows: 42_000,
            packets: 1_300_000,
            bytes: 900_000_000,
            anomalous: 12,
            hosts: 180,
            hosts_untracked: 0,
            top_sources: (0..20)
                .map(|i| HostSummary {
                    addr: format!("10.1.0.{i}"),
                    flows: 1000 + i,
                    packets: 30_000,
                    bytes: 20_000_000,
                    anomalous: 0,
                    max_error: 0.01,
                })
                .collect(),
        })?;
        h.append_score(&ScoreSummary {
            ts_ms: t + MIN - 1,
            detector: "flow_ae".into(),
            model: "flow-ae 1.0.0".into(),
            subject: "flows".into(),
            count: 42_000,
            anomalous: 12,
            mean_error: 0.002,
            max_error: 0.09,
            threshold: 0.0174,
        })?;
        for poll in 0..6u64 {
            let ts = t + poll * 10_000;
            for i in 0..50u32 {
                store.append_sample(&RateSample {
                    target: "core-sw".into(),
                    if_index: i + 1,
                    if_name: format!("GigabitEthernet0/{i}"),
                    ts_ms: ts,
                    step_ms: 10_000,
                    in_bps: Some(1e6 + f64::from(i)),
                    out_bps: Some(2e6),
                })?;
                h.append_score(&ScoreSummary {
                    ts_ms: ts,
                    detector: "series_ae".into(),
                    model: "series-ae 1.0.0".into(),
                    subject: format!("core-sw/GigabitEthernet0/{i}"),
                    count: 1,
                    anomalous: 0,
                    mean_error: 0.01,
                    max_error: 0.01,
                    threshold: 0.05,
                })?;
            }
        }
        records += 10 + 2 + 600;
        minutes += 1;
        t += MIN;
        if minutes.is_multiple_of(5) {
            h.enforce(t)?;
        }
        if start.elapsed() >= next_print {
            let disk = dir_disk_bytes(&db_dir);
            max_disk = max_disk.max(disk);
            let s = h.stats();
            println!(
                "{{\"elapsed_s\":{},\"simulated_hours\":{:.1},\"records\":{records},\"disk_bytes\":{disk},\"live_bytes\":{},\"live_budget_bytes\":{},\"buckets\":{},\"dropped_age\":{},\"dropped_size\":{}}}",
                start.elapsed().as_secs(),
                minutes as f64 / 60.0,
                s.live_bytes,
                s.live_budget_bytes,
                s.buckets,
                s.buckets_dropped_age,
                s.buckets_dropped_size
            );
            next_print += Duration::from_secs(1);
        }
    }
    store.flush()?;
    let disk = dir_disk_bytes(&db_dir);
    max_disk = max_disk.max(disk);
    let oldest = store
        .history()
        .buckets()
        .iter()
        .map(|(_, start, _)| *start)
        .min();
    println!(
        "{{\"summary\":true,\"seconds\":{},\"simulated_days\":{:.2},\"records\":{records},\"cap_bytes\":{},\"max_disk_bytes\":{max_disk},\"final_disk_bytes\":{disk},\"under_cap\":{},\"history_kept_hours\":{:.1}}}",
        start.elapsed().as_secs(),
        minutes as f64 / 1440.0,
        cap_mb << 20,
        max_disk <= cap_mb << 20,
        oldest.map_or(0.0, |o| (t - o) as f64 / 3_600_000.0)
    );
    Ok(())
}
