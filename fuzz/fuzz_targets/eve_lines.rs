//! Suricata EVE lines from outside (a file or socket Suricata writes): the line parser
//! (`sources/eve/parse.rs`: JSON, common fields, typed alert/flow/DNS v1-v3/DHCP sections, the
//! timestamp parser) and what the EVE pipeline does with each event (`pipeline/eve/`: filters,
//! a DHCP window with its watermark, alert conversion, flow records).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netwarden::pipeline::eve::config::{EveRules, Filter, FilterAction, Net, WindowSpec};
use netwarden::pipeline::eve::{EveOutput, EveStage};
use netwarden::sources::eve::parse_line;
use netwarden::sources::eve::time::parse_eve_time;

fuzz_target!(|data: &[u8]| {
    let rules = EveRules {
        exclude_sources: vec![Net::parse("10.99.0.0/16").expect("net")],
        filters: vec![Filter {
            event_type: "dns".into(),
            action: FilterAction::Drop,
            field: "dns.rrname".into(),
            values: vec!["*.arpa".into()],
        }],
        windows: vec![WindowSpec {
            name: "dhcp".into(),
            event_type: "dhcp".into(),
            key: "dhcp.id".into(),
            window: Duration::from_secs(1800),
            watermark: Duration::from_secs(300),
            max: vec![
                "src_ip".into(),
                "dhcp.hostname".into(),
                "dhcp.requested_ip".into(),
            ],
            publish: false,
        }],
        ..EveRules::default()
    };
    let mut stage = EveStage::new(rules, "site", "device", "suricata:fuzz");
    let mut out = EveOutput::default();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(e) = parse_line(line, 4096) {
            stage.process(&e, 1_800_000_000_000, &mut out);
        }
        if let Ok(text) = std::str::from_utf8(line) {
            if text.len() <= 64 {
                let _ = parse_eve_time(text);
            }
        }
    }
    stage.flush(&mut out);
});
