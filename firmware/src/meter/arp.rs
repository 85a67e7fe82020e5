//! ARP on the capture path: the part of the packet meter that accounts the frames NetFlow
//! never sees.
//!
//! [`arp_frame`] reads an Ethernet/IPv4 ARP packet out of a captured frame (smoltcp's
//! `ArpPacket`/`ArpRepr`, after the same link layers as the IP meter: Ethernet with VLAN tags,
//! Linux SLL/SLL2) together with the link-layer source, which a forged ARP payload does not
//! change. [`ArpMeter::observe`] then
//!
//! - **classifies** it: request, reply, gratuitous (the sender announces its own address:
//!   sender IP = target IP) or probe (RFC 5227 duplicate-address detection: sender IP 0.0.0.0);
//! - marks a reply **unsolicited** when no request "who-has S tell T" for it was seen in the
//!   last `solicit_window_ms` (a small direct-mapped table of recent requests; a collision
//!   forgets the older request, which can only make a reply look unsolicited, never hide one);
//! - updates the sender's **IP-to-MAC binding** in a fixed-capacity table keyed by (VLAN, IP)
//!   and says whether the binding is new, the same, or changed (with the binding it replaced);
//!   a full table evicts the least recently asserted of a few candidates, counted;
//! - on a new or changed binding, counts the IPs the sender's MAC now claims (a scan of the
//!   table, only on those events).
//!
//! One `ArpMeter` belongs to one capture interface, so its bindings are that interface's. It
//! decides nothing: the [`ArpEvent`] says what happened, and the gateway's rules
//! (`gateway/src/pipeline/arp/`) decide what is an attack. Nothing here allocates, panics on
//! input or reads a clock.

use core::net::Ipv4Addr;

use hash32::BuildHasherDefault;
use heapless::index_map::IndexMap;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetProtocol};

use super::key::FlowHasher;
use crate::wire::{link_payload, FrameError, LinkType};

/// A 48-bit Ethernet address.
pub type Mac = [u8; 6];

/// Why a frame gave no ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    /// Not an ARP frame at all (IP, LLDP, a raw-IP link, ...).
    NotArp,
    /// An ARP frame cut short.
    Truncated,
    /// ARP for another hardware or protocol than Ethernet/IPv4, or an operation other than
    /// request and reply (RARP, InARP).
    Unsupported,
}

impl core::fmt::Display for ArpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ArpError::NotArp => "not an ARP frame",
            ArpError::Truncated => "truncated ARP packet",
            ArpError::Unsupported => "ARP other than Ethernet/IPv4 request or reply",
        })
    }
}

impl core::error::Error for ArpError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// One ARP packet as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    pub op: ArpOp,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
    /// The link layer's source and destination (Ethernet; SLL/SLL2 carry the source only).
    /// A forger writes any sender MAC into the payload, but its frames leave from its own NIC.
    pub link_src: Option<Mac>,
    pub link_dst: Option<Mac>,
    /// Outermost 802.1Q VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
}

/// Parses the ARP packet of a captured frame.
pub fn arp_frame(link: LinkType, frame: &[u8]) -> Result<ArpFrame, ArpError> {
    if !matches!(
        link,
        LinkType::Ethernet | LinkType::LinuxSll | LinkType::LinuxSll2
    ) {
        return Err(ArpError::NotArp);
    }
    let (ethertype, l3, vlan) = link_payload(link, frame).map_err(|e| match e {
        FrameError::Truncated => ArpError::Truncated,
        _ => ArpError::NotArp,
    })?;
    if ethertype != EthernetProtocol::Arp {
        return Err(ArpError::NotArp);
    }
    let packet = ArpPacket::new_checked(l3).map_err(|_| ArpError::Truncated)?;
    let Ok(ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_hardware_addr,
        target_protocol_addr,
    }) = ArpRepr::parse(&packet)
    else {
        return Err(ArpError::Unsupported);
    };
    let op = match operation {
        ArpOperation::Request => ArpOp::Request,
        ArpOperation::Reply => ArpOp::Reply,
        _ => return Err(ArpError::Unsupported),
    };
    let (link_src, link_dst) = link_addresses(link, frame);
    Ok(ArpFrame {
        op,
        sender_mac: source_hardware_addr.0,
        sender_ip: source_protocol_addr,
        target_mac: target_hardware_addr.0,
        target_ip: target_protocol_addr,
        link_src,
        link_dst,
        vlan,
    })
}

fn mac_at(frame: &[u8], at: usize) -> Option<Mac> {
    frame.get(at..at + 6)?.try_into().ok()
}

/// The link layer's source and destination addresses, where the link type carries them.
fn link_addresses(link: LinkType, frame: &[u8]) -> (Option<Mac>, Option<Mac>) {
    match link {
        LinkType::Ethernet => (mac_at(frame, 6), mac_at(frame, 0)),
        // SLL: packet type, ARPHRD, address length (2 bytes), address (8 bytes).
        LinkType::LinuxSll if frame.get(4..6) == Some(&[0, 6]) => (mac_at(frame, 6), None),
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
        LinkType::LinuxSll2 if frame.get(11) == Some(&6) => (mac_at(frame, 12), None),
        _ => (None, None),
    }
}

/// What kind of ARP packet it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpKind {
    /// "who-has T tell S".
    Request,
    /// "S is-at M".
    Reply,
    /// An announcement of the sender's own binding (sender IP = target IP), request or reply.
    Gratuitous,
    /// Duplicate-address detection (sender IP 0.0.0.0): binds nothing.
    Probe,
}

impl ArpKind {
    pub fn of(f: &ArpFrame) -> ArpKind {
        if f.sender_ip.is_unspecified() {
            ArpKind::Probe
        } else if f.sender_ip == f.target_ip {
            ArpKind::Gratuitous
        } else {
            match f.op {
                ArpOp::Request => ArpKind::Request,
                ArpOp::Reply => ArpKind::Reply,
            }
        }
    }
}

/// An IP-to-MAC binding: who last claimed the address, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub mac: Mac,
    /// First claim by this MAC (since it took the binding over).
    pub first_ms: u64,
    /// Latest claim by this MAC.
    pub last_ms: u64,
}

/// What a packet did to its sender's binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingChange {
    /// The packet binds nothing (a probe, a multicast or zero sender MAC).
    None,
    /// First claim of this IP seen (or since it was evicted).
    New,
    /// The same MAC claimed it again.
    Same,
    /// Another MAC claimed it: the binding flipped. `old` is the binding it replaced.
    Changed { old: Binding },
}

/// One ARP packet, accounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpEvent {
    pub ts_ms: u64,
    pub frame: ArpFrame,
    pub kind: ArpKind,
    /// A reply (gratuitous ones included) answering no request seen within the window.
    pub unsolicited: bool,
    pub binding: BindingChange,
    /// IPs bound to the sender's MAC (on its VLAN) after this packet; computed only for a new
    /// or changed binding, 0 otherwise.
    pub sender_claims: u16,
}

impl ArpEvent {
    /// The link-layer source differs from the MAC the payload claims: a frame forged on behalf
    /// of another host (arpspoof's re-ARP on exit, or a spoofer hiding its NIC).
    pub fn link_mismatch(&self) -> bool {
        self.frame
            .link_src
            .is_some_and(|m| m != self.frame.sender_mac)
    }

    /// Worth a detector's attention: anything but a solicited request/reply that confirms a
    /// binding already known. Sources forward only these, so ordinary ARP costs nothing
    /// downstream.
    pub fn notable(&self) -> bool {
        self.unsolicited
            || self.kind == ArpKind::Gratuitous
            || matches!(
                self.binding,
                BindingChange::New | BindingChange::Changed { .. }
            )
            || self.link_mismatch()
    }
}

/// Settings of the ARP meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// A reply is solicited when its request was seen at most this long before it.
    pub solicit_window_ms: u64,
    /// Bindings held at most (0 or more than the table's capacity: the capacity).
    pub max_bindings: usize,
}

impl ArpConfig {
    pub const DEFAULT: ArpConfig = ArpConfig {
        solicit_window_ms: 5_000,
        max_bindings: 0,
    };
}

impl Default for ArpConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Counters of the ARP meter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpStats {
    /// ARP packets accounted (requests + replies + gratuitous + probes).
    pub packets: u64,
    pub requests: u64,
    pub replies: u64,
    pub gratuitous: u64,
    pub probes: u64,
    /// Replies (gratuitous ones included) that answered no request seen.
    pub unsolicited_replies: u64,
    /// Packets whose link-layer source is not the sender MAC they carry.
    pub link_mismatch: u64,
    pub bindings_new: u64,
    pub bindings_changed: u64,
    /// Bindings pushed out of the full table.
    pub bindings_evicted: u64,
    /// ARP frames refused: cut short, or not Ethernet/IPv4 request/reply.
    pub truncated: u64,
    pub unsupported: u64,
}

/// Slots of the recent-requests table (a power of two).
pub const PENDING_SLOTS: usize = 256;

/// Bindings compared when a full table must make room.
const EVICTION_CANDIDATES: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// (VLAN, requester IP, asked IP), packed; 0 = empty.
    key: u128,
    ts_ms: u64,
}

fn pending_key(vlan: u16, requester: Ipv4Addr, asked: Ipv4Addr) -> u128 {
    1 << 80
        | u128::from(vlan) << 64
        | u128::from(u32::from(requester)) << 32
        | u128::from(u32::from(asked))
}

fn binding_key(vlan: u16, ip: Ipv4Addr) -> u64 {
    u64::from(vlan) << 32 | u64::from(u32::from(ip))
}

fn slot_of(key: u128) -> usize {
    use core::hash::Hasher;
    let mut h = FlowHasher::default();
    h.write_u64(key as u64);
    h.write_u64((key >> 64) as u64);
    (h.finish() as usize) & (PENDING_SLOTS - 1)
}

type Bindings<const N: usize> = IndexMap<u64, Binding, BuildHasherDefault<FlowHasher>, N>;

/// The ARP side of the packet meter, with a binding table of `N` slots (a power of two, at
/// most 65,536) holding up to 3/4 of `N` bindings, like the flow table. Inline, about
/// `N * 40` bytes plus 6 KB of recent requests.
#[derive(Debug)]
pub struct ArpMeter<const N: usize> {
    config: ArpConfig,
    bindings: Bindings<N>,
    pending: [Pending; PENDING_SLOTS],
    stats: ArpStats,
    evict_cursor: usize,
}

impl<const N: usize> ArpMeter<N> {
    const CAPACITY_OK: () = assert!(N <= 65_536, "ArpMeter capacity is at most 65,536");

    /// Bindings held at most: 3/4 of `N` (all of `N` below 8), so lookups of absent keys stay
    /// short (see `Meter::MAX_FLOWS`).
    pub const MAX_BINDINGS: usize = if N >= 8 { N - N / 4 } else { N };

    pub const fn new(config: ArpConfig) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        ArpMeter {
            config,
            bindings: IndexMap::new(),
            pending: [Pending { key: 0, ts_ms: 0 }; PENDING_SLOTS],
            stats: ArpStats {
                packets: 0,
                requests: 0,
                replies: 0,
                gratuitous: 0,
                probes: 0,
                unsolicited_replies: 0,
                link_mismatch: 0,
                bindings_new: 0,
                bindings_changed: 0,
                bindings_evicted: 0,
                truncated: 0,
                unsupported: 0,
            },
            evict_cursor: 0,
        }
    }

    pub fn stats(&self) -> ArpStats {
        self.stats
    }

    /// Bindings held before the table evicts.
    pub fn capacity(&self) -> usize {
        match self.config.max_bindings {
            0 => Self::MAX_BINDINGS,
            n => n.min(Self::MAX_BINDINGS),
        }
    }

    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The binding of `ip` on `vlan` (`None`: untagged).
    pub fn binding(&self, vlan: Option<u16>, ip: Ipv4Addr) -> Option<Binding> {
        self.bindings
            .get(&binding_key(vlan.unwrap_or(0), ip))
            .copied()
    }

    /// Visits every binding: (VLAN, IP, binding).
    pub fn for_each_binding(&self, mut f: impl FnMut(u16, Ipv4Addr, &Binding)) {
        for (k, b) in self.bindings.iter() {
            f((k >> 32) as u16, Ipv4Addr::from(*k as u32), b);
        }
    }

    /// IPs bound to `mac` on `vlan` (a scan of the table).
    pub fn claims(&self, vlan: u16, mac: Mac) -> usize {
        self.bindings
            .iter()
            .filter(|(k, b)| (*k >> 32) as u16 == vlan && b.mac == mac)
            .count()
    }

    /// Parses and accounts one captured frame. `Err(NotArp)` is not counted (the frame is
    /// someone else's); cut or unsupported ARP frames are.
    pub fn observe(
        &mut self,
        link: LinkType,
        ts_ms: u64,
        frame: &[u8],
    ) -> Result<ArpEvent, ArpError> {
        match arp_frame(link, frame) {
            Ok(f) => Ok(self.observe_frame(&f, ts_ms)),
            Err(e) => {
                match e {
                    ArpError::NotArp => {}
                    ArpError::Truncated => self.stats.truncated += 1,
                    ArpError::Unsupported => self.stats.unsupported += 1,
                }
                Err(e)
            }
        }
    }

    /// Accounts an already parsed ARP packet.
    pub fn observe_frame(&mut self, f: &ArpFrame, ts_ms: u64) -> ArpEvent {
        let s = &mut self.stats;
        s.packets += 1;
        let kind = ArpKind::of(f);
        match kind {
            ArpKind::Request => s.requests += 1,
            ArpKind::Reply => s.replies += 1,
            ArpKind::Gratuitous => s.gratuitous += 1,
            ArpKind::Probe => s.probes += 1,
        }
        let vlan = f.vlan.unwrap_or(0);
        let mut unsolicited = false;
        match f.op {
            ArpOp::Request => {
                let key = pending_key(vlan, f.sender_ip, f.target_ip);
                self.pending[slot_of(key)] = Pending { key, ts_ms };
            }
            ArpOp::Reply => {
                let key = pending_key(vlan, f.target_ip, f.sender_ip);
                let p = self.pending[slot_of(key)];
                let answered = p.key == key
                    && ts_ms.saturating_sub(p.ts_ms) <= self.config.solicit_window_ms
                    && p.ts_ms <= ts_ms.saturating_add(self.config.solicit_window_ms);
                unsolicited = !answered;
                s.unsolicited_replies += u64::from(unsolicited);
            }
        }
        if f.link_src.is_some_and(|m| m != f.sender_mac) {
            s.link_mismatch += 1;
        }
        let binds = kind != ArpKind::Probe
            && f.sender_mac[0] & 1 == 0
            && f.sender_mac != [0; 6]
            && !f.sender_ip.is_broadcast();
        let binding = if binds {
            self.bind(vlan, f.sender_ip, f.sender_mac, ts_ms)
        } else {
            BindingChange::None
        };
        let sender_claims = match binding {
            BindingChange::New | BindingChange::Changed { .. } => {
                self.claims(vlan, f.sender_mac).min(usize::from(u16::MAX)) as u16
            }
            _ => 0,
        };
        ArpEvent {
            ts_ms,
            frame: *f,
            kind,
            unsolicited,
            binding,
            sender_claims,
        }
    }

    fn bind(&mut self, vlan: u16, ip: Ipv4Addr, mac: Mac, ts_ms: u64) -> BindingChange {
        let key = binding_key(vlan, ip);
        if let Some(b) = self.bindings.get_mut(&key) {
            if b.mac == mac {
                b.last_ms = b.last_ms.max(ts_ms);
                return BindingChange::Same;
            }
            let old = *b;
            *b = Binding {
                mac,
                first_ms: ts_ms,
                last_ms: ts_ms,
            };
            self.stats.bindings_changed += 1;
            return BindingChange::Changed { old };
        }
        if self.bindings.len() >= self.capacity() {
            self.evict_one();
        }
        let fresh = Binding {
            mac,
            first_ms: ts_ms,
            last_ms: ts_ms,
        };
        if self.bindings.insert(key, fresh).is_ok() {
            self.stats.bindings_new += 1;
            BindingChange::New
        } else {
            // Cannot happen (evict_one made room); counted rather than a panic.
            self.stats.bindings_evicted += 1;
            BindingChange::None
        }
    }

    /// Removes the least recently asserted of a few bindings from a rotating window.
    #[cold]
    fn evict_one(&mut self) {
        let len = self.bindings.len();
        if len == 0 {
            return;
        }
        let mut oldest: Option<(usize, u64)> = None;
        for i in 0..EVICTION_CANDIDATES.min(len) {
            let index = (self.evict_cursor + i) % len;
            if let Some((_, b)) = self.bindings.get_index(index) {
                if oldest.is_none_or(|(_, last)| b.last_ms < last) {
                    oldest = Some((index, b.last_ms));
                }
            }
        }
        self.evict_cursor = (self.evict_cursor + EVICTION_CANDIDATES) % len;
        let key = oldest.and_then(|(i, _)| self.bindings.get_index(i).map(|(k, _)| *k));
        if let Some(key) = key {
            if self.bindings.remove(&key).is_some() {
                self.stats.bindings_evicted += 1;
            }
        }
    }
}

/// An Ethernet frame carrying the given ARP packet (42 bytes, unpadded), for tests, fuzz seeds
/// and synthetic traffic.
pub fn ethernet_arp(
    link_src: Mac,
    link_dst: Mac,
    op: ArpOp,
    sender: (Mac, Ipv4Addr),
    target: (Mac, Ipv4Addr),
) -> [u8; 42] {
    use smoltcp::wire::{EthernetAddress, EthernetFrame};
    let mut buf = [0u8; 42];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_dst_addr(EthernetAddress(link_dst));
    eth.set_src_addr(EthernetAddress(link_src));
    eth.set_ethertype(EthernetProtocol::Arp);
    let repr = ArpRepr::EthernetIpv4 {
        operation: match op {
            ArpOp::Request => ArpOperation::Request,
            ArpOp::Reply => ArpOperation::Reply,
        },
        source_hardware_addr: EthernetAddress(sender.0),
        source_protocol_addr: sender.1,
        target_hardware_addr: EthernetAddress(target.0),
        target_protocol_addr: target.1,
    };
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[14..]));
    buf
}

#[cfg(test)]
mod tests;
