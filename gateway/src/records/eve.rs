//! Suricata EVE events as the EVE source hands them to the pipeline (`sources/eve/parse.rs`
//! makes them, `pipeline/eve/` filters, aggregates and forwards them; docs/eve.md).

use std::net::IpAddr;

use serde_json::{Map, Value};

/// The event types of the Suricata 6-8 user guide ("Eve JSON Output", "Eve JSON Format").
/// `stats` is included: it is parsed (and filtered like any other) but never forwarded.
pub const EVENT_TYPES: &[&str] = &[
    "alert",
    "anomaly",
    "arp",
    "bittorrent_dht",
    "dcerpc",
    "dhcp",
    "dnp3",
    "dns",
    "doh2",
    "drop",
    "email",
    "enip",
    "fileinfo",
    "flow",
    "frame",
    "ftp",
    "ftp_data",
    "http",
    "http2",
    "ike",
    "ikev2",
    "krb5",
    "ldap",
    "mdns",
    "modbus",
    "mqtt",
    "netflow",
    "nfs",
    "pgsql",
    "pop3",
    "quic",
    "rdp",
    "rfb",
    "sip",
    "smb",
    "smtp",
    "snmp",
    "ssh",
    "stats",
    "template",
    "tftp",
    "tls",
    "websocket",
];

/// One parsed record.
#[derive(Debug, Clone, PartialEq)]
pub struct EveEvent {
    /// Event time (the record's `timestamp`), Unix ms.
    pub ts_ms: u64,
    /// One of [`EVENT_TYPES`].
    pub event_type: &'static str,
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dest_ip: Option<IpAddr>,
    pub dest_port: Option<u16>,
    /// `TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, `SCTP`, ... as Suricata writes it.
    pub proto: Option<String>,
    pub flow_id: Option<u64>,
    pub community_id: Option<String>,
    pub detail: Detail,
    /// The whole record, for field filters.
    pub body: Map<String, Value>,
}

/// What netwarden reads in typed form.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Alert(AlertInfo),
    /// `flow` (both directions, `*_toserver`/`*_toclient`) or `netflow` (one direction).
    Flow(FlowInfo),
    Dns(DnsInfo),
    Dhcp(DhcpInfo),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertInfo {
    pub action: String,
    pub gid: u64,
    pub signature_id: u64,
    pub rev: u64,
    pub signature: String,
    pub category: String,
    /// 1 (highest) .. 4 (Suricata's classification priority).
    pub severity: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// OR of the TCP flags seen each way (hex strings `tcp_flags_ts`/`tcp_flags_tc`).
    pub tcp_flags_ts: u8,
    pub tcp_flags_tc: u8,
}

/// DNS in one shape, whatever the engine wrote: v1 (one record per answer, `type: answer`,
/// `rdata` inline), v2 (`version: 2`, `answers` array and `grouped`), v3 (Suricata 8:
/// `version: 3`, `type: request/response`, `queries` and `answers` arrays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsInfo {
    /// True for a response (`answer` in v1/v2, `response` in v3).
    pub response: bool,
    pub id: u64,
    pub rrname: String,
    pub rrtype: String,
    pub rcode: String,
    /// `(rrtype, rdata)` of each answer.
    pub answers: Vec<(String, String)>,
}

/// DHCP (`dhcp.type` request or reply; `dhcp.id` is the transaction id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpInfo {
    pub reply: bool,
    pub transaction_id: u64,
    pub dhcp_type: String,
    pub client_mac: String,
    pub hostname: String,
    pub client_ip: Option<IpAddr>,
    pub requested_ip: Option<IpAddr>,
    pub assigned_ip: Option<IpAddr>,
}

impl EveEvent {
    /// The value at a dotted path (`alert.signature_id`, `dns.rrname`, `src_ip`) as text, for
    /// filters. Numbers and booleans are their JSON text; objects and arrays are not matched.
    pub fn field(&self, path: &str) -> Option<String> {
        let mut parts = path.split('.');
        let mut v = self.body.get(parts.next()?)?;
        for p in parts {
            v = v.as_object()?.get(p)?;
        }
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// IANA protocol number of `proto`, when Suricata named one we know.
    pub fn protocol_number(&self) -> u8 {
        match self.proto.as_deref() {
            Some("TCP") => 6,
            Some("UDP") => 17,
            Some("ICMP") => 1,
            Some("IPv6-ICMP") => 58,
            Some("SCTP") => 132,
            Some("GRE") => 47,
            Some(p) => p.parse().unwrap_or(0),
            None => 0,
        }
    }
}
