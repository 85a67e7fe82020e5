//! Templates survive a restart (`sources/netflow/templates.rs`): real softflowd and pmacct
//! v9/IPFIX exports. A gateway sees each exporter's first datagram (its templates, options
//! templates and some data) and stops; a new gateway on the same data directory gets only
//! the data datagrams that followed (no template set among them), from new source ports:
//! every record decodes at once, no template miss. A third gateway whose `template_ttl` has
//! passed restores nothing (counted expired) and decodes none of the same data.
//!
//! Templates are kept per exporter *address* and domain: two exporting processes on one host
//! with the same source id / observation domain share the kept templates (the parser's own
//! per-port cache still keeps them apart while both run), so each fixture here is sent from
//! its own loopback address.

use std::net::UdpSocket;

use anyhow::Context;
use std::time::Duration;

use netwarden::sources::netflow::NetflowDecoder;
use netwarden_e2e::{capture_payloads, fixture, replay, tempdir, wait_for, Gateway};

const FIXTURES: [&str; 3] = [
    "netflow/softflowd-v9-scan-mixed.pcap",
    "netflow/softflowd-ipfix-scan-mixed.pcap",
    "netflow/pmacct-v9-scan-mixed.pcap",
];

/// Whether a v9/IPFIX datagram carries a template or options template set.
fn has_template_set(p: &[u8]) -> bool {
    let (first, template_ids) = match p {
        [0, 9, ..] => (20, 0..=1),
        [0, 10, ..] => (16, 2..=3),
        _ => return false,
    };
    let mut at = first;
    while let Some(h) = p.get(at..at + 4) {
        let id = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if template_ids.contains(&id) {
            return true;
        }
        if len < 4 {
            break;
        }
        at += len;
    }
    false
}

/// Per fixture: the first datagram (templates), the data-only datagrams up to the next
/// template-bearing one, and how many records those carry (decoded by a decoder that saw
/// the templates, the reference).
fn split(f: &str) -> anyhow::Result<(Vec<u8>, Vec<Vec<u8>>, u64)> {
    let payloads = capture_payloads(&fixture(f))?;
    anyhow::ensure!(has_template_set(&payloads[0]), "{f}: no template first");
    let data: Vec<Vec<u8>> = payloads[1..]
        .iter()
        .take_while(|p| !has_template_set(p))
        .cloned()
        .collect();
    let mut reference = NetflowDecoder::new(16);
    let from = "127.0.0.1:9".parse()?;
    let mut out = Vec::new();
    reference.decode(from, &payloads[0], &mut out);
    out.clear();
    for p in &data {
        reference.decode(from, p, &mut out);
    }
    Ok((payloads[0].clone(), data, out.len() as u64))
}

#[test]
fn templates_survive_a_restart_and_a_new_source_port_until_they_expire() -> anyhow::Result<()> {
    let fixtures: Vec<_> = FIXTURES
        .iter()
        .map(|f| split(f))
        .collect::<Result<_, _>>()?;
    let expected: u64 = fixtures.iter().map(|f| f.2).sum();
    assert!(expected > 1000, "{expected} data records to decode");
    let cfg_dir = tempdir::Dir::new("templates-config")?;
    let two_shards = cfg_dir.path().join("shards.toml");
    std::fs::write(&two_shards, "[netflow]\nshards = 2\n")?;
    let two_shards = two_shards.to_str().unwrap_or_default();

    // 1: the templates arrive, and are kept.
    let gw = Gateway::start(&["--config", two_shards])?;
    // Each exporter from its own address: templates are kept per address and domain, and the
    // softflowd and pmacct v9 exports share source id 0 and template ids.
    let address = |i: usize| format!("127.0.0.{}:0", i + 1);
    for (i, (first, _, _)) in fixtures.iter().enumerate() {
        UdpSocket::bind(address(i))?.send_to(first, gw.netflow)?;
    }
    wait_for(Duration::from_secs(10), "3 datagrams decoded", || {
        let s = gw.stats().ok()?;
        (s["metrics"]["netflow_datagrams_processed"].as_u64()? >= 3).then_some(())
    })?;
    let dir = gw.stop_keeping_dir();
    // So that the restart waits for the new daemon's stats.json, not this one's.
    std::fs::remove_file(dir.path().join("data/stats.json"))?;

    // 2: a restart, data only, from new ports: decoded at once.
    let gw = Gateway::start_in(dir, &["--config", two_shards])?;
    let restored = wait_for(Duration::from_secs(10), "templates restored", || {
        let s = gw.stats().ok()?;
        s["metrics"]["netflow_templates_restored"]
            .as_u64()
            .filter(|&n| n > 0)
    })
    .with_context(|| gw.log())?;
    // softflowd: its data templates and an options template each; pmacct v9: a data template.
    assert!(
        restored >= 5,
        "templates restored: {restored}\n{}",
        gw.log()
    );
    let mut senders = Vec::new();
    for (i, (_, data, _)) in fixtures.iter().enumerate() {
        let sock = UdpSocket::bind(address(i))?;
        replay(data, &sock, gw.netflow, 8, Duration::from_millis(2))?;
        senders.push(sock);
    }
    let stats = gw
        .wait_records(expected, Duration::from_secs(20))
        .with_context(|| format!("sent to {}\n{}", gw.netflow, gw.log()))?;
    for (sock, (_, data, records)) in senders.iter().zip(&fixtures) {
        let ex = &stats["exporters"][sock.local_addr()?.to_string()];
        assert_eq!(ex["records"].as_u64(), Some(*records), "{ex}");
        assert_eq!(ex["datagrams"].as_u64(), Some(data.len() as u64), "{ex}");
        assert_eq!(ex["template_misses"].as_u64(), Some(0), "{ex}");
    }
    assert_eq!(stats["netflow_totals"]["records"].as_u64(), Some(expected));
    assert!(stats["metrics"]["netflow_templates_read_through"].as_u64() >= Some(3));
    let dir = gw.stop_keeping_dir();
    // So that the restart waits for the new daemon's stats.json, not this one's.
    std::fs::remove_file(dir.path().join("data/stats.json"))?;

    // 3: past the time to live: nothing restored, the same data is not decoded.
    std::thread::sleep(Duration::from_millis(2500));
    let short = cfg_dir.path().join("short.toml");
    std::fs::write(&short, "[netflow]\nshards = 2\ntemplate_ttl = \"2s\"\n")?;
    let gw = Gateway::start_in(dir, &["--config", short.to_str().unwrap_or_default()])?;
    let sock = UdpSocket::bind(address(0))?;
    let data = &fixtures[0].1;
    replay(data, &sock, gw.netflow, 8, Duration::from_millis(2))?;
    let exporter = sock.local_addr()?.to_string();
    let stats = wait_for(
        Duration::from_secs(10),
        "the data datagrams counted",
        || {
            let s = gw.stats().ok()?;
            (s["exporters"][&exporter]["datagrams"].as_u64()? == data.len() as u64).then_some(s)
        },
    )?;
    let m = &stats["metrics"];
    assert_eq!(m["netflow_templates_restored"].as_u64(), Some(0), "{m}");
    assert!(
        m["netflow_templates_expired"].as_u64() >= Some(restored),
        "{m}"
    );
    let ex = &stats["exporters"][&exporter];
    assert_eq!(ex["records"].as_u64(), Some(0), "{ex}");
    assert!(ex["template_misses"].as_u64() > Some(0), "{ex}");
    Ok(())
}
