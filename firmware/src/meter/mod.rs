//! The packet meter: captured frames in, bidirectional flows out.
//!
//! [`Meter::observe`] parses one frame with [`crate::wire::packet_meta`] (smoltcp views;
//! Ethernet with up to two VLAN tags, Linux SLL/SLL2, BSD null, raw IP; IPv4, IPv6 with
//! extension headers; TCP, UDP, ICMP) and adds it to its flow in a fixed-capacity table of `N`
//! flows. Flows leave the table, and are handed to the caller's `emit`, when:
//!
//! - **idle**: no packet for `idle_timeout_ms` (checked against packet time);
//! - **active**: the flow has been open `active_timeout_ms`; later packets open a new flow,
//!   as NetFlow exporters do for long-lived flows;
//! - **evicted**: the table is full and a packet opens a new flow. The meter looks at
//!   [`EVICTION_CANDIDATES`] flows (a window that rotates over the table, so every flow is a
//!   candidate in turn), emits the one seen least recently and takes its place. Nothing is
//!   refused or dropped: every packet metered ends up in exactly one emitted flow, and a full
//!   table costs O(1) per new flow, not a scan. Evictions are counted in
//!   [`MeterStats::evicted`]; a steady count means the table is too small for the traffic;
//! - **flush**: [`Meter::flush`] at the end of a capture or on shutdown.
//!
//! There is no TCP-state close (FIN/RST do not end a flow), as with NFStream's defaults.
//!
//! Timeouts are checked for a packet's own flow on every packet, and for the whole table by
//! [`Meter::expire`], which `observe` also runs at most once per `sweep_interval_ms` of packet
//! time, so replaying a capture needs no separate clock. A live source calls `expire` from its
//! timer when traffic is quiet.
//!
//! The hot path does not allocate, panic on input or read a clock. Frames that are not IP or
//! are cut short are refused with a [`FrameError`] and counted in [`MeterStats`].

pub mod arp;
mod biflow;
mod key;

pub use biflow::{BiFlow, Direction, FlowEnd, NFSTREAM_COLUMNS, TCP_FLAG_NAMES};

use hash32::BuildHasherDefault;
use heapless::index_map::IndexMap;

use crate::wire::{packet_meta, FrameError, LinkType, PacketMeta};
use key::{FlowHasher, FlowKey};

/// Flows compared when a full table must make room for a new one.
pub const EVICTION_CANDIDATES: usize = 8;

/// Timeouts of the meter. A timeout of 0 disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterConfig {
    /// A flow with no packet for this long ends (NFStream's default: 120 s).
    pub idle_timeout_ms: u64,
    /// A flow open this long ends, and its next packet opens a new flow (NFStream's default:
    /// 1800 s).
    pub active_timeout_ms: u64,
    /// How often, in packet time, `observe` sweeps the whole table for timed-out flows.
    pub sweep_interval_ms: u64,
}

impl MeterConfig {
    pub const DEFAULT: MeterConfig = MeterConfig {
        idle_timeout_ms: 120_000,
        active_timeout_ms: 1_800_000,
        sweep_interval_ms: 1_000,
    };
}

impl Default for MeterConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Counters of everything the meter saw, refused and emitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeterStats {
    /// Frames given to `observe`, metered or not.
    pub frames: u64,
    /// Frames accounted to a flow, and their IP bytes.
    pub packets: u64,
    pub bytes: u64,
    /// Refused frames, by reason.
    pub not_ip: u64,
    pub truncated: u64,
    pub malformed: u64,
    /// Metered packets that were IP fragments (non-first ones are metered with ports 0).
    pub fragments: u64,
    pub flows_created: u64,
    pub expired_idle: u64,
    pub expired_active: u64,
    pub evicted: u64,
    pub flushed: u64,
}

impl MeterStats {
    /// Flows handed to `emit` so far.
    pub fn emitted(&self) -> u64 {
        self.expired_idle + self.expired_active + self.evicted + self.flushed
    }

    /// Frames refused with an error.
    pub fn refused(&self) -> u64 {
        self.not_ip + self.truncated + self.malformed
    }

    fn count_end(&mut self, end: FlowEnd) {
        match end {
            FlowEnd::Idle => self.expired_idle += 1,
            FlowEnd::Active => self.expired_active += 1,
            FlowEnd::Evicted => self.evicted += 1,
            FlowEnd::Flush => self.flushed += 1,
        }
    }
}

/// A flow in the table: its counters, oriented by `src_is_lo` against the key's endpoints.
#[derive(Debug, Clone, Copy)]
struct Entry {
    src_is_lo: bool,
    vlan_id: Option<u16>,
    first_ms: u64,
    last_ms: u64,
    src2dst: Direction,
    dst2src: Direction,
}

impl Entry {
    #[inline]
    fn new(forward: bool, meta: &PacketMeta, ts_ms: u64) -> Entry {
        let mut src2dst = Direction::EMPTY;
        src2dst.add(meta, ts_ms);
        Entry {
            src_is_lo: forward,
            vlan_id: meta.vlan,
            first_ms: ts_ms,
            last_ms: ts_ms,
            src2dst,
            dst2src: Direction::EMPTY,
        }
    }

    #[inline]
    fn add(&mut self, forward: bool, meta: &PacketMeta, ts_ms: u64) {
        self.first_ms = self.first_ms.min(ts_ms);
        self.last_ms = self.last_ms.max(ts_ms);
        if forward == self.src_is_lo {
            self.src2dst.add(meta, ts_ms);
        } else {
            self.dst2src.add(meta, ts_ms);
        }
    }

    #[inline]
    fn timed_out(&self, config: &MeterConfig, now_ms: u64) -> Option<FlowEnd> {
        let past =
            |since: u64, timeout: u64| timeout != 0 && now_ms.saturating_sub(since) >= timeout;
        if past(self.last_ms, config.idle_timeout_ms) {
            Some(FlowEnd::Idle)
        } else if past(self.first_ms, config.active_timeout_ms) {
            Some(FlowEnd::Active)
        } else {
            None
        }
    }

    fn biflow(&self, key: &FlowKey, end: FlowEnd) -> BiFlow {
        let (lo, hi) = key.endpoints();
        let (src, dst) = if self.src_is_lo { (lo, hi) } else { (hi, lo) };
        BiFlow {
            src_addr: src.0,
            dst_addr: dst.0,
            src_port: src.1,
            dst_port: dst.1,
            protocol: key.protocol(),
            vlan_id: self.vlan_id,
            src2dst: self.src2dst,
            dst2src: self.dst2src,
            end,
        }
    }
}

type Table<const N: usize> = IndexMap<FlowKey, Entry, BuildHasherDefault<FlowHasher>, N>;

/// The flow meter, with a table of `N` slots (a power of two, at most 65,536: heapless's index
/// map keeps 16-bit positions) holding up to [`Self::MAX_FLOWS`] = 3/4 of `N` flows.
///
/// A `Meter<N>` holds its whole table inline: about `N * 240` bytes (see
/// `core::mem::size_of::<Meter<N>>()`), 3.9 MB for `N` = 16,384. Construct large ones where
/// that fits: `new` is a `const fn`, so a `static` works on a microcontroller; on a host, build
/// it on a thread whose stack is comfortably larger than the meter
/// (`std::thread::Builder::stack_size`) and keep it there, or `Box::new` it in an optimised
/// build only.
#[derive(Debug)]
pub struct Meter<const N: usize> {
    config: MeterConfig,
    table: Table<N>,
    stats: MeterStats,
    next_sweep_ms: u64,
    evict_cursor: usize,
}

impl<const N: usize> Meter<N> {
    const CAPACITY_OK: () = assert!(N <= 65_536, "Meter capacity is at most 65,536 flows");

    /// Flows held at most: 3/4 of `N` (all of `N` below 8). heapless's index map has exactly
    /// `N` slots, and looking up a flow that is not there (the first packet of every new flow)
    /// probes until it finds a hole: at 100% load that is a scan of the table. Keeping a quarter
    /// of the slots free bounds the probes. Measured with a flood of new flows into a full
    /// `Meter<16384>` (docs/performance.md): 20 us per frame at 100% load, about 0.4 us at 3/4.
    pub const MAX_FLOWS: usize = if N >= 8 { N - N / 4 } else { N };

    /// An empty meter with the given timeouts. See the type's docs for where to put a large one.
    pub const fn new(config: MeterConfig) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        Meter {
            config,
            table: IndexMap::new(),
            stats: MeterStats {
                frames: 0,
                packets: 0,
                bytes: 0,
                not_ip: 0,
                truncated: 0,
                malformed: 0,
                fragments: 0,
                flows_created: 0,
                expired_idle: 0,
                expired_active: 0,
                evicted: 0,
                flushed: 0,
            },
            next_sweep_ms: 0,
            evict_cursor: 0,
        }
    }

    pub fn config(&self) -> MeterConfig {
        self.config
    }

    pub fn stats(&self) -> MeterStats {
        self.stats
    }

    /// Flows in the table now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Flows the table holds before it evicts ([`Self::MAX_FLOWS`]).
    pub const fn capacity(&self) -> usize {
        Self::MAX_FLOWS
    }

    /// Parses one captured frame (`ts_ms`: its capture time, Unix epoch ms) and accounts it to
    /// its flow. Flows that end meanwhile (timeouts at `ts_ms`, eviction) go to `emit`.
    /// Frames that are not IP or are cut short are refused and counted; never a panic.
    pub fn observe(
        &mut self,
        link: LinkType,
        ts_ms: u64,
        frame: &[u8],
        emit: &mut impl FnMut(&BiFlow),
    ) -> Result<(), FrameError> {
        self.stats.frames += 1;
        let meta = match packet_meta(link, frame) {
            Ok(meta) => meta,
            Err(e) => {
                match e {
                    FrameError::Truncated => self.stats.truncated += 1,
                    FrameError::Malformed => self.stats.malformed += 1,
                    FrameError::NotIp | FrameError::NotUdp | FrameError::Fragment => {
                        self.stats.not_ip += 1
                    }
                }
                return Err(e);
            }
        };
        self.observe_packet(&meta, ts_ms, emit);
        Ok(())
    }

    /// Accounts an already parsed packet (what `observe` does after parsing).
    pub fn observe_packet(
        &mut self,
        meta: &PacketMeta,
        ts_ms: u64,
        emit: &mut impl FnMut(&BiFlow),
    ) {
        if self.config.sweep_interval_ms != 0 && ts_ms >= self.next_sweep_ms {
            self.next_sweep_ms = ts_ms.saturating_add(self.config.sweep_interval_ms);
            self.expire(ts_ms, emit);
        }
        self.stats.packets += 1;
        self.stats.bytes += u64::from(meta.ip_len);
        self.stats.fragments += u64::from(meta.fragment);
        let (key, forward) = FlowKey::of(meta);
        if let Some(entry) = self.table.get_mut(&key) {
            match entry.timed_out(&self.config, ts_ms) {
                None => entry.add(forward, meta, ts_ms),
                Some(end) => {
                    emit(&entry.biflow(&key, end));
                    self.stats.count_end(end);
                    *entry = Entry::new(forward, meta, ts_ms);
                    self.stats.flows_created += 1;
                }
            }
            return;
        }
        if self.table.len() >= Self::MAX_FLOWS {
            self.evict_one(emit);
        }
        // Cannot fail: evict_one made room. Were it to, the packet would be lost, so say so
        // in a counter rather than panic.
        if self
            .table
            .insert(key, Entry::new(forward, meta, ts_ms))
            .is_ok()
        {
            self.stats.flows_created += 1;
        } else {
            self.stats.packets -= 1;
            self.stats.bytes -= u64::from(meta.ip_len);
            self.stats.malformed += 1;
        }
    }

    /// Emits the least recently seen of [`EVICTION_CANDIDATES`] flows from a rotating window.
    #[cold]
    fn evict_one(&mut self, emit: &mut impl FnMut(&BiFlow)) {
        let len = self.table.len();
        if len == 0 {
            return;
        }
        let mut oldest: Option<(usize, u64)> = None;
        for i in 0..EVICTION_CANDIDATES.min(len) {
            let index = (self.evict_cursor + i) % len;
            if let Some((_, e)) = self.table.get_index(index) {
                if oldest.is_none_or(|(_, last)| e.last_ms < last) {
                    oldest = Some((index, e.last_ms));
                }
            }
        }
        self.evict_cursor = (self.evict_cursor + EVICTION_CANDIDATES) % len;
        let Some(key) = oldest.and_then(|(i, _)| self.table.get_index(i).map(|(k, _)| *k)) else {
            return;
        };
        if let Some(entry) = self.table.remove(&key) {
            emit(&entry.biflow(&key, FlowEnd::Evicted));
            self.stats.evicted += 1;
        }
    }

    /// Emits every flow idle or active past its timeout at `now_ms` (a full scan of the table).
    pub fn expire(&mut self, now_ms: u64, emit: &mut impl FnMut(&BiFlow)) {
        let config = self.config;
        let stats = &mut self.stats;
        self.table
            .retain(|key, entry| match entry.timed_out(&config, now_ms) {
                None => true,
                Some(end) => {
                    emit(&entry.biflow(key, end));
                    stats.count_end(end);
                    false
                }
            });
    }

    /// Emits every flow still in the table and empties it (end of capture, shutdown).
    pub fn flush(&mut self, emit: &mut impl FnMut(&BiFlow)) {
        for (key, entry) in self.table.iter() {
            emit(&entry.biflow(key, FlowEnd::Flush));
        }
        self.stats.flushed += self.table.len() as u64;
        self.table.clear();
    }

    /// Visits the flows in the table without ending them (e.g. to print the table).
    pub fn for_each_open(&self, mut f: impl FnMut(&BiFlow)) {
        for (key, entry) in self.table.iter() {
            f(&entry.biflow(key, FlowEnd::Flush));
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
