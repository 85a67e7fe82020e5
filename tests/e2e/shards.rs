//! Flow shards (`[netflow] shards`): sixteen exporters (v9 and IPFIX, softflowd and pmacct
//! captures, each from its own socket) into a two-shard gateway. The kernel's `SO_REUSEPORT`
//! hash must keep each exporter on one shard: a shard that saw an exporter's data without its
//! templates would count template misses and lose the records. Every record must arrive once:
//! per exporter and in total, decoded and scored, none lost, none counted twice. With the
//! learning period on, the shards must feed one site-wide learner: it counts every record's
//! score once, whatever shard decoded it.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use netwarden_e2e::{capture_payloads, fixture, free_tcp_port, replay, wait_for, Gateway};

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
    // Learning for a span no test outlasts: every score goes to the learner.
    std::fs::write(
        &config,
        "[netflow]\nshards = 2\n\n[learning]\nperiod = \"3650d\"\n",
    )?;
    let http = free_tcp_port()?;
    let http_listen = format!("127.0.0.1:{http}");
    let gw = Gateway::start(&[
        "--config",
        config.to_str().unwrap_or_default(),
        "--http-listen",
        &http_listen,
    ])?;
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
    // One learner for the site, and it saw each record's score exactly once.
    let learning = wait_for(Duration::from_secs(10), "the learner to count", || {
        let h = get_json(http, "/health").ok()?;
        let l = h["learning"].as_array()?.clone();
        l.iter()
            .any(|d| d["scored"].as_u64() == Some(total))
            .then_some(l)
    })?;
    let flow: Vec<_> = learning
        .iter()
        .filter(|d| d["detector"].as_str() == Some("flow_ae"))
        .collect();
    assert_eq!(flow.len(), 1, "{learning:?}");
    assert_eq!(flow[0]["scored"].as_u64(), Some(total), "{learning:?}");
    assert_eq!(flow[0]["phase"].as_str(), Some("learning"), "{learning:?}");
    Ok(())
}

fn get_json(port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("netwarden-shards-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
