//! One EVE line -> one [`EveEvent`], or the reason it was skipped. Never panics (fuzzed by
//! `fuzz/fuzz_targets/eve_lines.rs`).
//!
//! Every record shares a common part (`timestamp`, `event_type`, the 5-tuple, `flow_id`,
//! `community_id`); the type-specific object sits under a key named after the type. We parse
//! the common part into fields, keep the whole object for filters ([`EveEvent::body`]), and
//! read into typed form only what netwarden acts on: alerts, flow/netflow records, DNS
//! (normalised over the three answer formats) and DHCP.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::time::parse_eve_time;
pub use crate::records::eve::{
    AlertInfo, Detail, DhcpInfo, DnsInfo, EveEvent, FlowInfo, EVENT_TYPES,
};

/// Longest line accepted by default; Suricata's own stats records are ~10 KB, an HTTP record
/// with extended headers rarely over 32 KB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024;

/// Why a line was skipped. Each reason has its own counter (`eve_skipped_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("line longer than the limit")]
    Oversize,
    #[error("not JSON")]
    NotJson,
    #[error("JSON but not an object")]
    NotObject,
    #[error("no timestamp or event_type")]
    MissingField,
    #[error("timestamp not RFC 3339")]
    BadTimestamp,
    #[error("unknown event_type")]
    UnknownType,
    #[error("a field has the wrong type")]
    BadField,
}

/// Parses one line (without its newline; a trailing `\r` is ignored).
pub fn parse_line(line: &[u8], max_len: usize) -> Result<EveEvent, SkipReason> {
    if line.len() > max_len {
        return Err(SkipReason::Oversize);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let value: Value = serde_json::from_slice(line).map_err(|_| SkipReason::NotJson)?;
    let Value::Object(body) = value else {
        return Err(SkipReason::NotObject);
    };
    let ts = str_field(&body, "timestamp").ok_or(SkipReason::MissingField)?;
    let event_type = str_field(&body, "event_type").ok_or(SkipReason::MissingField)?;
    let ts_ms = parse_eve_time(ts).ok_or(SkipReason::BadTimestamp)?;
    let event_type = EVENT_TYPES
        .iter()
        .copied()
        .find(|t| *t == event_type)
        .ok_or(SkipReason::UnknownType)?;
    let detail = match event_type {
        "alert" => Detail::Alert(alert(&body)?),
        "flow" | "netflow" => Detail::Flow(flow(&body, event_type)?),
        "dns" => Detail::Dns(dns(&body)?),
        "dhcp" => Detail::Dhcp(dhcp(&body)?),
        _ => {
            // The type's own section, when there is one, must at least be an object or array.
            match body.get(event_type) {
                None | Some(Value::Object(_)) | Some(Value::Array(_)) => Detail::Other,
                Some(_) => return Err(SkipReason::BadField),
            }
        }
    };
    Ok(EveEvent {
        ts_ms,
        event_type,
        src_ip: ip_field(&body, "src_ip")?,
        src_port: port_field(&body, "src_port")?,
        dest_ip: ip_field(&body, "dest_ip")?,
        dest_port: port_field(&body, "dest_port")?,
        proto: str_field(&body, "proto").map(str::to_string),
        flow_id: body.get("flow_id").and_then(Value::as_u64),
        community_id: str_field(&body, "community_id").map(str::to_string),
        detail,
        body,
    })
}

fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn string(m: &Map<String, Value>, key: &str) -> String {
    str_field(m, key).unwrap_or_default().to_string()
}

fn u64_field(m: &Map<String, Value>, key: &str) -> u64 {
    m.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn ip_field(m: &Map<String, Value>, key: &str) -> Result<Option<IpAddr>, SkipReason> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| SkipReason::BadField),
        Some(_) => Err(SkipReason::BadField),
    }
}

fn opt_ip(m: &Map<String, Value>, key: &str) -> Option<IpAddr> {
    str_field(m, key).and_then(|s| s.parse().ok())
}

fn port_field(m: &Map<String, Value>, key: &str) -> Result<Option<u16>, SkipReason> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .map(Some)
            .ok_or(SkipReason::BadField),
    }
}

fn section<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, SkipReason> {
    m.get(key)
        .and_then(Value::as_object)
        .ok_or(SkipReason::BadField)
}

fn alert(body: &Map<String, Value>) -> Result<AlertInfo, SkipReason> {
    let a = section(body, "alert")?;
    let severity = u64_field(a, "severity").clamp(1, 4) as u8;
    Ok(AlertInfo {
        action: string(a, "action"),
        gid: u64_field(a, "gid"),
        signature_id: u64_field(a, "signature_id"),
        rev: u64_field(a, "rev"),
        signature: string(a, "signature"),
        category: string(a, "category"),
        severity,
    })
}

fn flow(body: &Map<String, Value>, key: &str) -> Result<FlowInfo, SkipReason> {
    let f = section(body, key)?;
    let time = |k: &str| str_field(f, k).and_then(parse_eve_time).unwrap_or(0);
    let tcp = body.get("tcp").and_then(Value::as_object);
    let flags = |k: &str| {
        tcp.and_then(|t| str_field(t, k))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    let (start_ms, end_ms) = (time("start"), time("end"));
    if key == "netflow" {
        // One direction per record: what a NetFlow exporter would send.
        return Ok(FlowInfo {
            pkts_toserver: u64_field(f, "pkts"),
            pkts_toclient: 0,
            bytes_toserver: u64_field(f, "bytes"),
            bytes_toclient: 0,
            start_ms,
            end_ms: end_ms.max(start_ms),
            tcp_flags_ts: flags("tcp_flags"),
            tcp_flags_tc: 0,
        });
    }
    Ok(FlowInfo {
        pkts_toserver: u64_field(f, "pkts_toserver"),
        pkts_toclient: u64_field(f, "pkts_toclient"),
        bytes_toserver: u64_field(f, "bytes_toserver"),
        bytes_toclient: u64_field(f, "bytes_toclient"),
        start_ms,
        end_ms: end_ms.max(start_ms),
        tcp_flags_ts: flags("tcp_flags_ts"),
        tcp_flags_tc: flags("tcp_flags_tc"),
    })
}

fn dns(body: &Map<String, Value>) -> Result<DnsInfo, SkipReason> {
    let d = section(body, "dns")?;
    let kind = str_field(d, "type").unwrap_or_default();
    let response = matches!(kind, "answer" | "response" | "authority");
    // v3 puts the question in `queries`; v1/v2 inline.
    let query = d
        .get("queries")
        .and_then(Value::as_array)
        .and_then(|q| q.first())
        .and_then(Value::as_object)
        .unwrap_or(d);
    let mut answers = Vec::new();
    match d.get("answers") {
        Some(Value::Array(list)) => {
            for a in list.iter().filter_map(Value::as_object) {
                answers.push((string(a, "rrtype"), rdata(a)));
            }
        }
        Some(_) => return Err(SkipReason::BadField),
        // v1: one record per answer, its data inline.
        None if response && d.contains_key("rdata") => {
            answers.push((string(d, "rrtype"), rdata(d)));
        }
        None => {}
    }
    Ok(DnsInfo {
        response,
        id: u64_field(d, "id"),
        rrname: string(query, "rrname"),
        rrtype: string(query, "rrtype"),
        rcode: string(d, "rcode"),
        answers,
    })
}

fn rdata(a: &Map<String, Value>) -> String {
    match a.get("rdata") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn dhcp(body: &Map<String, Value>) -> Result<DhcpInfo, SkipReason> {
    let d = section(body, "dhcp")?;
    Ok(DhcpInfo {
        reply: str_field(d, "type") == Some("reply"),
        transaction_id: d
            .get("id")
            .and_then(Value::as_u64)
            .ok_or(SkipReason::BadField)?,
        dhcp_type: string(d, "dhcp_type"),
        client_mac: string(d, "client_mac"),
        hostname: string(d, "hostname"),
        client_ip: opt_ip(d, "client_ip"),
        requested_ip: opt_ip(d, "requested_ip"),
        assigned_ip: opt_ip(d, "assigned_ip"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = DEFAULT_MAX_LINE_BYTES;

    fn sample(name: &str) -> String {
        let p = format!("{}/../tests/data/eve/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(p).expect("sample")
    }

    fn parse_all(name: &str) -> (Vec<EveEvent>, Vec<SkipReason>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for line in sample(name).lines() {
            match parse_line(line.as_bytes(), MAX) {
                Ok(e) => ok.push(e),
                Err(r) => bad.push(r),
            }
        }
        (ok, bad)
    }

    #[test]
    fn suricata_6_records_parse_and_the_torn_writes_are_skipped() {
        let (ok, bad) = parse_all("suricata-6.0.10.json");
        assert_eq!(bad, vec![SkipReason::NotJson, SkipReason::NotJson]);
        assert_eq!(ok.len(), 9);
        let http = ok.iter().find(|e| e.event_type == "http").expect("http");
        assert_eq!(
            http.field("http.hostname").as_deref(),
            Some("browserspy.dk")
        );
        assert_eq!(http.field("http.status").as_deref(), Some("401"));
        let answer = ok
            .iter()
            .find_map(|e| match &e.detail {
                Detail::Dns(d) if d.response => Some(d.clone()),
                _ => None,
            })
            .expect("dns answer");
        assert_eq!(answer.rrname, "apache.org");
        assert_eq!(answer.answers, vec![("A".into(), "151.101.2.132".into())]);
        // 2021-09-12T21:52:02.8675+0800
        let dns = ok.iter().find(|e| e.event_type == "dns").expect("dns");
        assert_eq!(dns.ts_ms, 1_631_454_722_867);
    }

    #[test]
    fn suricata_7_alerts_flows_and_unknown_types() {
        let (ok, bad) = parse_all("suricata-7.0.0-beta1.json");
        // The fork's `diameter` records are not a Suricata event type.
        assert_eq!(bad, vec![SkipReason::UnknownType; 2]);
        let alerts: Vec<_> = ok
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::Alert(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(alerts.len(), 25);
        assert_eq!(alerts[0].signature, "SURICATA Diameter empty message");
        assert_eq!(alerts[0].severity, 3);
        let flows = ok
            .iter()
            .filter(|e| matches!(e.detail, Detail::Flow(_)))
            .count();
        assert_eq!(flows, 25);
        assert!(ok.iter().any(|e| e.proto.as_deref() == Some("SCTP")));
        assert_eq!(ok.iter().filter(|e| e.event_type == "anomaly").count(), 4);
    }

    #[test]
    fn suricata_8_dns_v3_and_alerts() {
        let (ok, bad) = parse_all("suricata-8.0.7.json");
        assert!(bad.is_empty());
        let dns: Vec<_> = ok
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::Dns(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(dns.len(), 3);
        assert!(!dns[0].response);
        assert_eq!(dns[0].rrname, "ssl.gstatic.com");
        assert_eq!(dns[1].rcode, "NXDOMAIN");
        assert_eq!(dns[2].answers.len(), 7);
        assert_eq!(
            dns[2].answers[0],
            ("CNAME".into(), "clients.l.google.com".into())
        );
        let flow = ok
            .iter()
            .find_map(|e| match &e.detail {
                Detail::Flow(f) => Some(f.clone()),
                _ => None,
            })
            .expect("flow");
        assert_eq!(flow.bytes_toserver, 461);
        assert_eq!(flow.tcp_flags_ts, 0x1b);
        assert!(flow.end_ms >= flow.start_ms);
    }

    #[test]
    fn dns_v1_answer_record() {
        let line = br#"{"timestamp":"2016-08-22T06:58:20.853189","event_type":"dns","src_ip":"152.68.146.11","src_port":53,"dest_ip":"141.146.40.227","dest_port":48965,"proto":"UDP","dns":{"type":"answer","id":19014,"rrname":"example.com","rrtype":"A","ttl":10800,"rdata":"93.184.216.34"}}"#;
        let e = parse_line(line, MAX).expect("v1");
        let Detail::Dns(d) = e.detail else {
            panic!("not dns")
        };
        assert!(d.response);
        assert_eq!(d.answers, vec![("A".into(), "93.184.216.34".into())]);
    }

    #[test]
    fn ssh_tls_and_handmade_types() {
        let (ok, bad) = parse_all("suricata-6-ssh-tls.json");
        assert!(bad.is_empty());
        let tls = ok.iter().find(|e| e.event_type == "tls").expect("tls");
        assert_eq!(tls.field("tls.sni").as_deref(), Some("cv.mathming.ltd"));
        let (ok, bad) = parse_all("handmade.json");
        assert!(bad.is_empty());
        for t in ["dhcp", "smtp", "netflow", "anomaly", "alert", "ssh", "tls"] {
            assert!(ok.iter().any(|e| e.event_type == t), "{t}");
        }
        let dhcp = ok
            .iter()
            .find_map(|e| match &e.detail {
                Detail::Dhcp(d) if !d.reply => Some(d.clone()),
                _ => None,
            })
            .expect("dhcp");
        assert_eq!(dhcp.transaction_id, 0x5a1c01);
        assert_eq!(dhcp.hostname, "ws-accounts-01");
        assert_eq!(
            dhcp.requested_ip,
            Some("192.168.10.50".parse().expect("address"))
        );
        let alert = ok.iter().find(|e| e.event_type == "alert").expect("alert");
        assert_eq!(
            alert.community_id.as_deref(),
            Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
    }

    #[test]
    fn every_skip_reason() {
        let (ok, bad) = parse_all("malformed.json");
        assert_eq!(ok.len(), 1);
        assert_eq!(
            bad,
            vec![
                SkipReason::NotJson,
                SkipReason::NotJson,
                SkipReason::UnknownType,
                SkipReason::NotObject,
                SkipReason::MissingField,
            ]
        );
        let long = format!(r#"{{"x":"{}"}}"#, "a".repeat(100));
        assert_eq!(parse_line(long.as_bytes(), 64), Err(SkipReason::Oversize));
        let bad_ts = br#"{"timestamp":"yesterday","event_type":"flow","flow":{}}"#;
        assert_eq!(parse_line(bad_ts, MAX), Err(SkipReason::BadTimestamp));
        let bad_ip = br#"{"timestamp":"2026-01-01T00:00:00Z","event_type":"flow","src_ip":"999.1.1.1","flow":{}}"#;
        assert_eq!(parse_line(bad_ip, MAX), Err(SkipReason::BadField));
        let no_section = br#"{"timestamp":"2026-01-01T00:00:00Z","event_type":"alert"}"#;
        assert_eq!(parse_line(no_section, MAX), Err(SkipReason::BadField));
    }
}
