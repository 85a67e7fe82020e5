//! The table key: a direction-free 5-tuple, and a fast hasher for it.

use core::hash::{Hash, Hasher};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::PacketMeta;

/// Both endpoints of a flow in a canonical order (`lo` <= `hi`), so that the two directions of
/// a conversation find the same entry. Addresses are kept as two u64 words each: hashing and
/// comparing them is a handful of integer operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowKey {
    lo: [u64; 2],
    hi: [u64; 2],
    lo_port: u16,
    hi_port: u16,
    protocol: u8,
    v6: bool,
}

fn words(addr: IpAddr) -> [u64; 2] {
    match addr {
        IpAddr::V4(a) => [0, u64::from(u32::from(a))],
        IpAddr::V6(a) => {
            let v = u128::from(a);
            [(v >> 64) as u64, v as u64]
        }
    }
}

impl FlowKey {
    /// The key of a packet's flow, and whether the packet goes from `lo` to `hi`.
    #[inline]
    pub(crate) fn of(meta: &PacketMeta) -> (FlowKey, bool) {
        let s = (words(meta.src_addr), meta.src_port);
        let d = (words(meta.dst_addr), meta.dst_port);
        let forward = s <= d;
        let (lo, hi) = if forward { (s, d) } else { (d, s) };
        let key = FlowKey {
            lo: lo.0,
            hi: hi.0,
            lo_port: lo.1,
            hi_port: hi.1,
            protocol: meta.protocol,
            v6: meta.src_addr.is_ipv6(),
        };
        (key, forward)
    }

    fn addr(&self, w: [u64; 2]) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(u128::from(w[0]) << 64 | u128::from(w[1])))
        } else {
            IpAddr::V4(Ipv4Addr::from(w[1] as u32))
        }
    }

    /// `(addr, port)` of the lower endpoint, then of the higher.
    pub(crate) fn endpoints(&self) -> ((IpAddr, u16), (IpAddr, u16)) {
        (
            (self.addr(self.lo), self.lo_port),
            (self.addr(self.hi), self.hi_port),
        )
    }

    pub(crate) fn protocol(&self) -> u8 {
        self.protocol
    }
}

impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.lo[0]);
        state.write_u64(self.lo[1]);
        state.write_u64(self.hi[0]);
        state.write_u64(self.hi[1]);
        state.write_u64(
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.protocol) << 32
                | u64::from(self.v6) << 40,
        );
    }
}

/// A word-at-a-time multiplicative hasher (FxHash's step) with a final avalanche, since the
/// table keeps only the low 16 bits of the hash. Not DoS-resistant: an attacker who can choose
/// many colliding 5-tuples lengthens probe sequences, bounded by the table size.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlowHasher(u64);

impl FlowHasher {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.add(x);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}
