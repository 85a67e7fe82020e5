//! The hot path for v9 and IPFIX data sets: a template, once netflow_parser has accepted it,
//! becomes a [`Plan`] (where each element the features use sits in a record, and how its bytes
//! read), and a datagram made only of data sets whose templates have plans is decoded straight
//! from its bytes into `FlowRecord`s: no `FieldValue`, no `Vec` per record, no allocation.
//!
//! Everything else stays on netflow_parser ([`super::decode`]): template and options sets,
//! options data, data whose template is unknown (pending-flow buffering), variable-length
//! fields, zero-length fields, and any datagram whose framing is not clean (a set running past
//! the end, trailing bytes, an IPFIX length that disagrees with the datagram). The hot path
//! never guesses: it either decodes the whole datagram exactly as netflow_parser would, or
//! declines and the caller hands the datagram to netflow_parser.
//!
//! How bytes read follows netflow_parser 1.0.6 (`FieldValue::from_field_type` and the
//! `as_u8`/`as_u16`/`as_u64` conversions), type by type, from the same element-type table
//! (`FieldDataType::from(V9Field)` / `FieldDataType::from(IPFixField)`); the differential test
//! (`gateway/tests/netflow_hot_path.rs`) and the `netflow_hot_path` fuzz target compare the two
//! record by record.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netflow_parser::protocol::ProtocolTypes;
use netflow_parser::variable_versions::field_types::TcpControlBits;
use netflow_parser::variable_versions::ipfix::lookup::IPFixField;
use netflow_parser::{FieldDataType, V9Field};

use super::normalise::{ie, Fields};

/// netflow_parser's default `max_records_per_flowset`: records past it in one set are ignored.
const MAX_RECORDS_PER_SET: usize = 1024;

/// Which template family a plan belongs to (v9 and IPFIX ids live in separate caches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V9,
    Ipfix,
}

/// How one element's bytes read, as netflow_parser would read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// `DataNumber` of 1, 2, 3, 4, 8 or 16 bytes.
    Unsigned,
    Signed,
    /// Any other width: raw bytes, which convert to nothing.
    Opaque,
    Ip4,
    Ip6,
    /// `DurationSeconds`/`DurationMillis` of 2, 4 or 8 bytes.
    Seconds,
    Millis,
    /// `DurationMicrosNTP`/`DurationNanosNTP` of 8 bytes.
    Ntp,
    Protocol,
    TcpBits1,
    TcpBits2,
}

/// One element of a record the features use.
#[derive(Debug, Clone, Copy)]
struct Step {
    offset: u16,
    len: u16,
    id: u16,
    read: Read,
}

/// A learnt template as field offsets.
#[derive(Debug, Clone)]
pub struct Plan {
    record_len: usize,
    steps: Vec<Step>,
}

/// Element ids the normaliser reads ([`Fields::set`]); everything else is stepped over.
fn used(id: u16) -> bool {
    matches!(
        id,
        ie::OCTETS
            | ie::PACKETS
            | ie::PROTOCOL
            | ie::TCP_FLAGS
            | ie::SRC_PORT
            | ie::SRC_V4
            | ie::DST_PORT
            | ie::DST_V4
            | ie::LAST_UPTIME
            | ie::FIRST_UPTIME
            | ie::SRC_V6
            | ie::DST_V6
            | ie::OCTETS_TOTAL
            | ie::PACKETS_TOTAL
            | ie::START_SECS..=ie::END_NS | ie::SYS_INIT_MS
    )
}

/// How netflow_parser reads `len` bytes of type `t`; `None` where the hot path does not follow
/// (it then leaves the template to netflow_parser).
fn read_of(t: FieldDataType, len: u16) -> Option<Read> {
    use FieldDataType as T;
    let number = |r| {
        if matches!(len, 1..=4 | 8 | 16) {
            r
        } else {
            Read::Opaque
        }
    };
    Some(match t {
        T::UnsignedDataNumber => number(Read::Unsigned),
        T::SignedDataNumber => number(Read::Signed),
        T::Ip4Addr if len == 4 => Read::Ip4,
        T::Ip6Addr if len == 16 => Read::Ip6,
        T::DurationSeconds if matches!(len, 2 | 4 | 8) => Read::Seconds,
        T::DurationMillis if matches!(len, 2 | 4 | 8) => Read::Millis,
        T::DurationMicrosNTP | T::DurationNanosNTP if len == 8 => Read::Ntp,
        T::ProtocolType if len == 1 => Read::Protocol,
        T::TcpControlBits if len == 1 => Read::TcpBits1,
        T::TcpControlBits if len == 2 => Read::TcpBits2,
        // Addresses, durations and typed fields of other widths, strings, MACs, floats,
        // unknown elements, application ids (of at least one byte, as every field here is):
        // raw bytes or values the normaliser ignores.
        _ => Read::Opaque,
    })
}

impl Plan {
    /// A plan for a data template of `(element id, length, enterprise)` fields, or `None` when
    /// some field is variable-length, zero-length or read in a way the hot path does not follow.
    pub fn new(family: Family, fields: impl Iterator<Item = (u16, u16, bool)>) -> Option<Plan> {
        let mut offset = 0usize;
        let mut steps = Vec::new();
        for (id, len, enterprise) in fields {
            if len == 0 || len == u16::MAX {
                return None;
            }
            let t = match (family, enterprise) {
                (Family::V9, _) => FieldDataType::from(V9Field::from(id)),
                (Family::Ipfix, false) => FieldDataType::from(IPFixField::new(id, None)),
                // Enterprise elements: never used, and only their length matters.
                (Family::Ipfix, true) => FieldDataType::Unknown,
            };
            let read = read_of(t, len)?;
            // The normaliser maps IANA elements (and all v9 ones) by number.
            if !enterprise && used(id) {
                steps.push(Step {
                    offset: u16::try_from(offset).ok()?,
                    len,
                    id,
                    read,
                });
            }
            offset += usize::from(len);
        }
        (offset > 0 && offset <= usize::from(u16::MAX)).then_some(Plan {
            record_len: offset,
            steps,
        })
    }

    /// Records a data set body of `body_len` bytes holds, as netflow_parser counts them.
    pub fn records_in(&self, body_len: usize) -> usize {
        (body_len / self.record_len).min(MAX_RECORDS_PER_SET)
    }

    /// Fills `f` from one record (`rec` is exactly `record_len` bytes or longer).
    pub(super) fn fill(&self, rec: &[u8], f: &mut Fields) {
        for s in &self.steps {
            let at = usize::from(s.offset);
            let Some(b) = rec.get(at..at + usize::from(s.len)) else {
                continue;
            };
            f.set(s.id, &value(s.read, b));
        }
    }

    /// The bytes of `n` records starting at `body`.
    pub fn record<'a>(&self, body: &'a [u8], i: usize) -> &'a [u8] {
        let at = i * self.record_len;
        body.get(at..at + self.record_len).unwrap_or_default()
    }
}

/// A value as the normaliser sees it (what `FieldValue`'s conversions would give).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A number (signed numbers as they are; conversions narrow with `try_from`).
    Num(i128),
    /// A duration already in ms (`as_u64`), or `None` where it overflowed.
    Ms(Option<u64>),
    Ip(IpAddr),
    Protocol(u8),
    TcpBits(u16),
    /// Converts to nothing.
    Opaque,
}

impl Value {
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Value::Num(n) => u64::try_from(n).ok(),
            Value::Ms(ms) => ms,
            _ => None,
        }
    }
    pub fn as_u16(self) -> Option<u16> {
        match self {
            Value::Num(n) => u16::try_from(n).ok(),
            _ => None,
        }
    }
    pub fn as_u8(self) -> Option<u8> {
        match self {
            Value::Num(n) => u8::try_from(n).ok(),
            Value::Protocol(p) => Some(p),
            _ => None,
        }
    }
}

fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, &x| acc << 8 | u128::from(x))
}

fn value(read: Read, b: &[u8]) -> Value {
    match read {
        Read::Unsigned => match b.len() {
            16 => Value::Num(i128::try_from(be(b)).unwrap_or(i128::MAX)),
            _ => Value::Num(be(b) as i128),
        },
        Read::Signed => {
            let bits = 8 * b.len() as u32;
            let raw = be(b);
            // Sign-extend from the field's width.
            let n = if bits == 128 {
                raw as i128
            } else {
                ((raw << (128 - bits)) as i128) >> (128 - bits)
            };
            Value::Num(n)
        }
        Read::Opaque => Value::Opaque,
        Read::Ip4 => Value::Ip(IpAddr::V4(Ipv4Addr::from(be(b) as u32))),
        Read::Ip6 => Value::Ip(IpAddr::V6(Ipv6Addr::from(be(b)))),
        Read::Seconds => Value::Ms((be(b) as u64).checked_mul(1000)),
        Read::Millis => Value::Ms(Some(be(b) as u64)),
        Read::Ntp => {
            let (secs, frac) = (be(&b[..4]) as u64, be(&b[4..]) as u64);
            let ms = (frac.saturating_mul(1000)) >> 32;
            Value::Ms(secs.checked_mul(1000).and_then(|s| s.checked_add(ms)))
        }
        Read::Protocol => Value::Protocol(u8::from(ProtocolTypes::from(b[0]))),
        Read::TcpBits1 => Value::TcpBits(u16::from(TcpControlBits::from(u16::from(b[0])))),
        Read::TcpBits2 => Value::TcpBits(u16::from(TcpControlBits::from(be(b) as u16))),
    }
}

/// Plans per exporter stream and template id, bounded: past `max` plans it forgets them all
/// (the next template datagram of each stream teaches them again, through netflow_parser).
#[derive(Debug)]
pub struct Plans<K> {
    plans: HashMap<(K, Family, u16), Plan>,
    max: usize,
}

impl<K: std::hash::Hash + Eq + Copy> Plans<K> {
    pub fn new(max: usize) -> Self {
        Plans {
            plans: HashMap::new(),
            max: max.max(1),
        }
    }

    pub fn get(&self, key: K, family: Family, id: u16) -> Option<&Plan> {
        self.plans.get(&(key, family, id))
    }

    /// What netflow_parser learnt: a data template (with its plan, or `None` when the hot path
    /// cannot follow it), or an options template or withdrawal (`None`), replacing the id.
    pub fn learn(&mut self, key: K, family: Family, id: u16, plan: Option<Plan>) {
        match plan {
            Some(p) => {
                if self.plans.len() >= self.max && !self.plans.contains_key(&(key, family, id)) {
                    self.plans.clear();
                }
                self.plans.insert((key, family, id), p);
            }
            None => {
                self.plans.remove(&(key, family, id));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Every plan, for persisting (`K`, family, template id).
    pub fn keys(&self) -> impl Iterator<Item = &(K, Family, u16)> {
        self.plans.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_like_netflow_parser() {
        assert_eq!(value(Read::Signed, &[0xff]), Value::Num(-1));
        assert_eq!(value(Read::Signed, &[0x7f, 0xff]), Value::Num(32767));
        assert_eq!(value(Read::Unsigned, &[1, 0, 0]), Value::Num(65536));
        assert_eq!(value(Read::Seconds, &[0, 0, 0, 2]), Value::Ms(Some(2000)));
        assert_eq!(
            value(Read::Ntp, &[0, 0, 0, 1, 0x80, 0, 0, 0]),
            Value::Ms(Some(1500))
        );
        assert_eq!(value(Read::TcpBits2, &[0xfe, 0x12]), Value::TcpBits(0x012));
        assert_eq!(Value::Num(-1).as_u64(), None);
        assert_eq!(Value::Num(300).as_u8(), None);
    }

    #[test]
    fn plans_decline_what_they_cannot_follow() {
        let ok = Plan::new(
            Family::V9,
            [(8, 4, false), (12, 4, false), (1, 4, false)].into_iter(),
        )
        .expect("plan");
        assert_eq!((ok.record_len, ok.steps.len()), (12, 3));
        assert!(Plan::new(
            Family::Ipfix,
            [(8, 4, false), (82, 65535, false)].into_iter()
        )
        .is_none());
        assert!(Plan::new(Family::V9, [(8, 0, false)].into_iter()).is_none());
        // Unused and enterprise elements are only stepped over.
        let p = Plan::new(
            Family::Ipfix,
            [(10, 4, false), (8, 4, true), (12, 4, false)].into_iter(),
        )
        .expect("plan");
        assert_eq!((p.record_len, p.steps.len(), p.steps[0].offset), (12, 1, 8));
    }
}
