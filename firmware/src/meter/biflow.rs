//! One metered bidirectional flow, its NFStream-named columns, and its NetFlow view.

use core::net::IpAddr;

use crate::flow::FlowRecord;
use crate::wire::PacketMeta;

/// TCP flags in bit order (FIN = bit 0 ... CWR = bit 7), as counted in
/// [`Direction::flag_packets`].
pub const TCP_FLAG_NAMES: [&str; 8] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// No packet for `idle_timeout_ms`.
    Idle,
    /// Open for `active_timeout_ms`; later packets start a new flow, as in NetFlow.
    Active,
    /// Made room for a new flow in a full table (see [`super::Meter`]).
    Evicted,
    /// [`super::Meter::flush`] (end of capture, shutdown).
    Flush,
}

impl FlowEnd {
    /// NFStream's `expiration_id`: 0 idle, 1 active, 2 custom (here: evicted), -1 end of
    /// capture.
    pub fn expiration_id(self) -> i8 {
        match self {
            FlowEnd::Idle => 0,
            FlowEnd::Active => 1,
            FlowEnd::Evicted => 2,
            FlowEnd::Flush => -1,
        }
    }
}

/// Counters of one direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction {
    pub packets: u64,
    /// IP bytes (see [`PacketMeta::ip_len`]).
    pub bytes: u64,
    /// 0 when `packets` is 0.
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Smallest and largest IP packet; 0 when `packets` is 0.
    pub min_ps: u32,
    pub max_ps: u32,
    /// OR of the TCP flags seen (NetFlow's `tcp_flags`).
    pub tcp_flags: u8,
    /// Packets carrying each flag, in [`TCP_FLAG_NAMES`] order (NFStream's `*_syn_packets`...).
    pub flag_packets: [u32; 8],
}

impl Direction {
    pub const EMPTY: Direction = Direction {
        packets: 0,
        bytes: 0,
        first_seen_ms: 0,
        last_seen_ms: 0,
        min_ps: 0,
        max_ps: 0,
        tcp_flags: 0,
        flag_packets: [0; 8],
    };

    #[inline]
    pub(crate) fn add(&mut self, meta: &PacketMeta, ts_ms: u64) {
        if self.packets == 0 {
            self.first_seen_ms = ts_ms;
            self.last_seen_ms = ts_ms;
            self.min_ps = meta.ip_len;
            self.max_ps = meta.ip_len;
        } else {
            // Capture timestamps can step back a little (several queues, clock steps).
            self.first_seen_ms = self.first_seen_ms.min(ts_ms);
            self.last_seen_ms = self.last_seen_ms.max(ts_ms);
            self.min_ps = self.min_ps.min(meta.ip_len);
            self.max_ps = self.max_ps.max(meta.ip_len);
        }
        self.packets += 1;
        self.bytes += u64::from(meta.ip_len);
        self.tcp_flags |= meta.tcp_flags;
        if meta.tcp_flags != 0 {
            for (i, n) in self.flag_packets.iter_mut().enumerate() {
                *n = n.saturating_add(u32::from(meta.tcp_flags >> i & 1));
            }
        }
    }

    pub fn duration_ms(&self) -> u64 {
        self.last_seen_ms.saturating_sub(self.first_seen_ms)
    }

    pub fn mean_ps(&self) -> f64 {
        if self.packets == 0 {
            0.0
        } else {
            self.bytes as f64 / self.packets as f64
        }
    }
}

/// One bidirectional flow. Its 5-tuple is oriented by its first packet: `src` is the endpoint
/// that sent it, so a TCP flow's `src` is the client when its SYN was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BiFlow {
    pub src_addr: IpAddr,
    pub dst_addr: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    /// Outermost 802.1Q tag of the first packet.
    pub vlan_id: Option<u16>,
    pub src2dst: Direction,
    pub dst2src: Direction,
    pub end: FlowEnd,
}

/// Numeric columns of [`BiFlow::nfstream_values`], named as NFStream names them (NFStream's
/// `src_ip`/`dst_ip` are the flow's addresses, left to the caller to format).
pub const NFSTREAM_COLUMNS: [&str; 54] = [
    "ip_version",
    "vlan_id",
    "protocol",
    "src_port",
    "dst_port",
    "bidirectional_first_seen_ms",
    "bidirectional_last_seen_ms",
    "bidirectional_duration_ms",
    "bidirectional_packets",
    "bidirectional_bytes",
    "src2dst_first_seen_ms",
    "src2dst_last_seen_ms",
    "src2dst_duration_ms",
    "src2dst_packets",
    "src2dst_bytes",
    "dst2src_first_seen_ms",
    "dst2src_last_seen_ms",
    "dst2src_duration_ms",
    "dst2src_packets",
    "dst2src_bytes",
    "bidirectional_min_ps",
    "bidirectional_mean_ps",
    "bidirectional_max_ps",
    "src2dst_min_ps",
    "src2dst_mean_ps",
    "src2dst_max_ps",
    "dst2src_min_ps",
    "dst2src_mean_ps",
    "dst2src_max_ps",
    "bidirectional_fin_packets",
    "bidirectional_syn_packets",
    "bidirectional_rst_packets",
    "bidirectional_psh_packets",
    "bidirectional_ack_packets",
    "bidirectional_urg_packets",
    "bidirectional_ece_packets",
    "bidirectional_cwr_packets",
    "src2dst_fin_packets",
    "src2dst_syn_packets",
    "src2dst_rst_packets",
    "src2dst_psh_packets",
    "src2dst_ack_packets",
    "src2dst_urg_packets",
    "src2dst_ece_packets",
    "src2dst_cwr_packets",
    "dst2src_fin_packets",
    "dst2src_syn_packets",
    "dst2src_rst_packets",
    "dst2src_psh_packets",
    "dst2src_ack_packets",
    "dst2src_urg_packets",
    "dst2src_ece_packets",
    "dst2src_cwr_packets",
    "expiration_id",
];

impl BiFlow {
    pub fn ip_version(&self) -> u8 {
        match self.src_addr {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 6,
        }
    }

    pub fn bidirectional_packets(&self) -> u64 {
        self.src2dst.packets + self.dst2src.packets
    }

    pub fn bidirectional_bytes(&self) -> u64 {
        self.src2dst.bytes + self.dst2src.bytes
    }

    /// The first packet of a flow is always src2dst, so this is src2dst's first packet unless
    /// capture timestamps went backwards.
    pub fn bidirectional_first_seen_ms(&self) -> u64 {
        if self.dst2src.packets == 0 {
            self.src2dst.first_seen_ms
        } else {
            self.src2dst.first_seen_ms.min(self.dst2src.first_seen_ms)
        }
    }

    pub fn bidirectional_last_seen_ms(&self) -> u64 {
        self.src2dst.last_seen_ms.max(self.dst2src.last_seen_ms)
    }

    pub fn bidirectional_duration_ms(&self) -> u64 {
        self.bidirectional_last_seen_ms()
            .saturating_sub(self.bidirectional_first_seen_ms())
    }

    /// Packets carrying TCP flag `bit` (0 = FIN ... 7 = CWR) in both directions.
    pub fn bidirectional_flag_packets(&self, bit: usize) -> u64 {
        let n = |d: &Direction| d.flag_packets.get(bit).copied().map_or(0, u64::from);
        n(&self.src2dst) + n(&self.dst2src)
    }

    /// The flow as the unidirectional records a NetFlow exporter sends for it: src2dst always,
    /// dst2src when that direction saw packets. The gateway computes `flow-v1` features from
    /// these exactly as it does from NetFlow, so metered and exported traffic look the same to
    /// the detectors.
    pub fn records(&self) -> (FlowRecord, Option<FlowRecord>) {
        let record = |src, dst, sport, dport, d: &Direction| FlowRecord {
            src_addr: src,
            dst_addr: dst,
            src_port: sport,
            dst_port: dport,
            protocol: self.protocol,
            packets: d.packets,
            bytes: d.bytes,
            first_ms: d.first_seen_ms,
            last_ms: d.last_seen_ms,
            tcp_flags: u16::from(d.tcp_flags),
        };
        let fwd = record(
            self.src_addr,
            self.dst_addr,
            self.src_port,
            self.dst_port,
            &self.src2dst,
        );
        let rev = (self.dst2src.packets > 0).then(|| {
            record(
                self.dst_addr,
                self.src_addr,
                self.dst_port,
                self.src_port,
                &self.dst2src,
            )
        });
        (fwd, rev)
    }

    /// Values of [`NFSTREAM_COLUMNS`], in order (`vlan_id` 0 when untagged).
    pub fn nfstream_values(&self) -> [f64; NFSTREAM_COLUMNS.len()] {
        let (s, d) = (&self.src2dst, &self.dst2src);
        let both_min = match (s.packets, d.packets) {
            (_, 0) => s.min_ps,
            (0, _) => d.min_ps,
            _ => s.min_ps.min(d.min_ps),
        };
        let bi_mean = if self.bidirectional_packets() == 0 {
            0.0
        } else {
            self.bidirectional_bytes() as f64 / self.bidirectional_packets() as f64
        };
        let mut v = [0.0; NFSTREAM_COLUMNS.len()];
        let head = [
            f64::from(self.ip_version()),
            f64::from(self.vlan_id.unwrap_or(0)),
            f64::from(self.protocol),
            f64::from(self.src_port),
            f64::from(self.dst_port),
            self.bidirectional_first_seen_ms() as f64,
            self.bidirectional_last_seen_ms() as f64,
            self.bidirectional_duration_ms() as f64,
            self.bidirectional_packets() as f64,
            self.bidirectional_bytes() as f64,
            s.first_seen_ms as f64,
            s.last_seen_ms as f64,
            s.duration_ms() as f64,
            s.packets as f64,
            s.bytes as f64,
            d.first_seen_ms as f64,
            d.last_seen_ms as f64,
            d.duration_ms() as f64,
            d.packets as f64,
            d.bytes as f64,
            f64::from(both_min),
            bi_mean,
            f64::from(s.max_ps.max(d.max_ps)),
            f64::from(s.min_ps),
            s.mean_ps(),
            f64::from(s.max_ps),
            f64::from(d.min_ps),
            d.mean_ps(),
            f64::from(d.max_ps),
        ];
        v[..head.len()].copy_from_slice(&head);
        for bit in 0..8 {
            let i = head.len() + bit;
            v[i] = self.bidirectional_flag_packets(bit) as f64;
            v[i + 8] = f64::from(s.flag_packets[bit]);
            v[i + 16] = f64::from(d.flag_packets[bit]);
        }
        v[NFSTREAM_COLUMNS.len() - 1] = f64::from(self.end.expiration_id());
        v
    }
}
