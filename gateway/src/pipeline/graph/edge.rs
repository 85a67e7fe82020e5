//! The `graph-v1` feature layout: what one new edge (a flow record) of the temporal graph looks
//! like to the edge scorer. Computed here once; `netwarden features --set graph-v1` writes the
//! same rows for training, and the model (models/, kind `graph_tgat`) reads them unchanged: there
//! is no scaling step, every value is already a log, a ratio or a 0/1 flag.
//!
//! One row is [`INPUT_WIDTH`] values:
//! - the edge's own [`EDGE_FEATURES`];
//! - for its source endpoint, then its destination endpoint (`IP:port`): the endpoint's
//!   [`ENDPOINT_FEATURES`], then its [`K`] most recent earlier interactions, newest first, each
//!   [`SLOT_FEATURES`] (the interaction's edge features, how long before this edge it began,
//!   which side the endpoint was on, whether its peer then has the IP of this edge's other
//!   endpoint, and a 1 that marks the slot as used). Unused slots are all zeros.

use netwarden_firmware::FlowRecord;

/// Recent interactions kept (and gathered) per endpoint.
pub const K: usize = 8;

/// Features of one edge, from its flow record alone.
pub const EDGE_FEATURES: [&str; 16] = [
    "ln_packets",
    "ln_bytes",
    "ln_duration_ms",
    "ln_mean_packet",
    "tcp",
    "udp",
    "icmp",
    "syn",
    "ack",
    "fin",
    "rst",
    "src_port_low",
    "dst_port_low",
    "src_port_frac",
    "dst_port_frac",
    "src_is_initiator",
];
pub const EDGE_WIDTH: usize = EDGE_FEATURES.len();

/// Per endpoint: how many interactions it has had while tracked, and for how long it has been.
pub const ENDPOINT_FEATURES: [&str; 2] = ["ln_interactions", "ln_age_s"];

/// Per recent interaction, after its [`EDGE_FEATURES`].
pub const SLOT_EXTRA: [&str; 4] = ["ln_dt_ms", "was_src", "peer_is_other", "valid"];
pub const SLOT_WIDTH: usize = EDGE_WIDTH + SLOT_EXTRA.len();
pub const ENDPOINT_WIDTH: usize = ENDPOINT_FEATURES.len() + K * SLOT_WIDTH;

/// Values per edge row given to the model.
pub const INPUT_WIDTH: usize = EDGE_WIDTH + 2 * ENDPOINT_WIDTH;

/// The schema name in bundles and `features --set`.
pub const SCHEMA: &str = "graph-v1";

/// An edge's own features.
pub type EdgeFeatures = [f32; EDGE_WIDTH];

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMP6: u8 = 58;

fn ln1p(x: f64) -> f32 {
    (x.max(0.0)).ln_1p() as f32
}

fn flag(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The edge features of `r`; `src_is_initiator` says whether its source opened the
/// connection ([`super::table::EndpointTable`] decides).
pub fn edge_features(r: &FlowRecord, src_is_initiator: bool) -> EdgeFeatures {
    let duration = r.last_ms.saturating_sub(r.first_ms);
    let mean = if r.packets > 0 {
        r.bytes as f64 / r.packets as f64
    } else {
        0.0
    };
    let tcp = r.protocol == TCP;
    let f = r.tcp_flags;
    let tcp_flag = |bit: u16| flag(tcp && f & bit != 0);
    [
        ln1p(r.packets as f64),
        ln1p(r.bytes as f64),
        ln1p(duration as f64),
        ln1p(mean),
        flag(tcp),
        flag(r.protocol == UDP),
        flag(r.protocol == ICMP || r.protocol == ICMP6),
        tcp_flag(0x02),
        tcp_flag(0x10),
        tcp_flag(0x01),
        tcp_flag(0x04),
        flag(r.src_port < 1024),
        flag(r.dst_port < 1024),
        f32::from(r.src_port) / 65535.0,
        f32::from(r.dst_port) / 65535.0,
        flag(src_is_initiator),
    ]
}

/// Whether the protocol has ports that say client and server (TCP, UDP).
pub fn has_ports(protocol: u8) -> bool {
    protocol == TCP || protocol == UDP
}

/// Whether an ICMP record is a reply (echo reply, or an error about the peer's packet):
/// then the destination opened the exchange. Ports carry `type * 256 + code` (softflowd).
pub fn icmp_is_reply(r: &FlowRecord) -> bool {
    let t = r.dst_port >> 8;
    (r.protocol == ICMP && matches!(t, 0 | 3 | 11)) || (r.protocol == ICMP6 && t == 129)
}

/// The column names of one row, in order (`e_*`, then `s_*` and `d_*` for the two endpoints,
/// slots numbered from 0 = newest).
pub fn column_names() -> Vec<String> {
    let mut out = Vec::with_capacity(INPUT_WIDTH);
    out.extend(EDGE_FEATURES.iter().map(|n| format!("e_{n}")));
    for side in ["s", "d"] {
        out.extend(ENDPOINT_FEATURES.iter().map(|n| format!("{side}_{n}")));
        for k in 0..K {
            out.extend(
                EDGE_FEATURES
                    .iter()
                    .chain(SLOT_EXTRA.iter())
                    .map(|n| format!("{side}{k}_{n}")),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_adds_up() {
        assert_eq!(column_names().len(), INPUT_WIDTH);
        assert_eq!(INPUT_WIDTH, 16 + 2 * (2 + 8 * 20));
        let mut names = column_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), INPUT_WIDTH, "column names are unique");
    }

    #[test]
    fn edge_features_of_a_syn_probe() {
        let mut r = FlowRecord::empty();
        r.protocol = TCP;
        r.packets = 1;
        r.bytes = 44;
        r.src_port = 40000;
        r.dst_port = 22;
        r.tcp_flags = 0x02;
        let e = edge_features(&r, true);
        assert!((e[0] - 2f32.ln()).abs() < 1e-6);
        assert!((e[3] - 45f32.ln()).abs() < 1e-6);
        assert_eq!(&e[4..11], &[1., 0., 0., 1., 0., 0., 0.]);
        assert_eq!(&e[11..13], &[0., 1.]);
        assert_eq!(e[15], 1.0);
    }
}
