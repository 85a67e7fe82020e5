//! Flow shards (`[netflow] shards`): sixteen exporters (v9 and IPFIX, softflowd and pmacct
//! captures, each from its own socket) into a two-shard gateway. The kernel's `SO_REUSEPORT`
//! hash must keep each exporter on one shard: a shard that saw an exporter's data without its
//! templates would count template misses and lose the records. Every record must arrive once:
//! per exporter and in total, decoded and scored, none lost, none counted twice.

use std::net::UdpSocket;
use std::time::Duration;

use netwarden_e2e::{capture_payloads, fixture, replay, wait_for, Gateway};

const FIXTURES: [(&str, u64); 4] = [
    ("netflow/softflowd-v9-scan-mixed.pcap", 2446),
    ("netflow/softflowd-ipfix-scan-mixed.pcap", 2446),
    ("netflow/pmacct-v9-scan-mixed.pcap", 2446),
    ("netflow/pmacct-ipfix-scan-mixed.pcap", 2446),
];

#[test]
fn exporters_stay_on_one_shard_and_every_record_counts_once() -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let config = dir.join("netwarden.toml");
    std::fs::write(&config, "[netflow]\nshards = 2\n")?;
    let gw = Gateway::start(&["--config", config.to_str().unwrap_or_default()])?;
    let mut expected = Vec::new();
    let mut total = 0;
    let mut sockets = Vec::new();
    for round in 0..4 {
        for (f, records) in FIXTURES {
            let payloads = capture_payloads(&fixture(f))?;
            let sock = UdpSocket::bind("127.0.0.1:0")?;
            replay(&payloads, &sock, gw.netflow, 8, Duration::from_millis(2))?;
            expected.push((
                format!("{f} #{round}"),
                sock.local_addr()?.to_string(),
                records,
            ));
            total += records;
            sockets.push(sock);
        }
    }
    let stats = gw.wait_records(total, Duration::from_secs(30))?;
    // Scored, too: nothing waiting in a shard's batch.
    let stats = wait_for(Duration::from_secs(10), "every record scored", || {
        let s = gw.stats().ok()?;
        (s["metrics"]["flows_scored"].as_u64()? >= total).then_some(s)
    })
    .unwrap_or(stats);
    for (name, exporter, records) in &expected {
        let ex = &stats["exporters"][exporter];
        assert_eq!(ex["records"].as_u64(), Some(*records), "{name}: {ex}");
        assert_eq!(ex["template_misses"].as_u64(), Some(0), "{name}: {ex}");
        assert_eq!(
            ex["decode_errors_malformed"].as_u64(),
            Some(0),
            "{name}: {ex}"
        );
    }
    assert_eq!(stats["netflow_totals"]["records"].as_u64(), Some(total));
    assert_eq!(
        stats["metrics"]["flows_scored"].as_u64(),
        Some(total),
        "{stats}"
    );
    let shards: Vec<u64> = stats["netflow_shard_datagrams"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(shards.len(), 2, "{stats}");
    // 16 source ports over 2 sockets: all on one is a 1 in 32,768 chance.
    assert!(
        shards.iter().all(|&n| n > 0),
        "both shards received: {shards:?}"
    );
    assert_eq!(
        shards.iter().sum::<u64>(),
        stats["metrics"]["netflow_datagrams_received"]
            .as_u64()
            .unwrap_or(0)
    );
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("netwarden-shards-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
