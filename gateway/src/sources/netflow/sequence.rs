//! Sequence-gap accounting per export stream.
//!
//! What the header's sequence number counts differs by version: v5 and IPFIX count flow
//! records, v9 counts datagrams. The caller passes how far this datagram advances the stream
//! ([`Advance`]), or `None` when it cannot know (IPFIX data that waited for its template): the
//! next datagram then sets a new baseline instead of being judged.
//!
//! Exporters also disagree on *when* they count. RFC 7011 says the number counts records sent
//! before this message, options records included (pmacct does this); softflowd 1.1.0 counts up
//! to and including this message and leaves options records out. Rather than report a false gap
//! on every datagram, each stream's convention is learnt from its first in-order pair and then
//! held; until one is learnt, the RFC's is assumed for counting gaps.

use std::collections::HashMap;
use std::hash::Hash;

/// How far a datagram advances its stream's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// All records (v5: flows; v9: 1 datagram; IPFIX: data records, options included).
    pub all: u32,
    /// Without options records (equal to `all` outside IPFIX).
    pub without_options: u32,
}

impl Advance {
    pub fn same(n: u32) -> Advance {
        Advance {
            all: n,
            without_options: n,
        }
    }
}

/// What one datagram's sequence number says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// First datagram of the stream, or the first after an unknown advance.
    Baseline,
    InOrder,
    /// `missing` records (v5, IPFIX) or datagrams (v9) never arrived.
    Gap {
        missing: u32,
    },
    /// Behind what was expected: a duplicate, reordering, or an exporter restart.
    Behind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    /// Records sent before this message (RFC 7011, NetFlow v5/v9).
    Before { options: bool },
    /// Records sent up to and including this message.
    After { options: bool },
}

const CONVENTIONS: [Convention; 4] = [
    Convention::Before { options: true },
    Convention::Before { options: false },
    Convention::After { options: true },
    Convention::After { options: false },
];

impl Convention {
    fn expected(self, prev_seq: u32, prev: Advance, cur: Advance) -> u32 {
        let pick = |a: Advance, options: bool| if options { a.all } else { a.without_options };
        match self {
            Convention::Before { options } => prev_seq.wrapping_add(pick(prev, options)),
            Convention::After { options } => prev_seq.wrapping_add(pick(cur, options)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    /// The last datagram's sequence number and advance, when known.
    prev: Option<(u32, Advance)>,
    /// Bit i set: `CONVENTIONS[i]` still fits everything seen in order so far.
    plausible: u8,
}

const ALL: u8 = (1 << CONVENTIONS.len()) - 1;

/// Tracks up to `max_streams` streams.
#[derive(Debug)]
pub struct SequenceTracker<K> {
    streams: HashMap<K, Stream>,
    max_streams: usize,
}

/// A jump forward larger than this is taken as a restart, not as millions of lost records.
const MAX_PLAUSIBLE_GAP: u32 = 1 << 24;

impl<K: Hash + Eq + Clone> SequenceTracker<K> {
    pub fn new(max_streams: usize) -> Self {
        SequenceTracker {
            streams: HashMap::new(),
            max_streams: max_streams.max(1),
        }
    }

    pub fn observe(&mut self, key: &K, seq: u32, advance: Option<Advance>) -> SeqOutcome {
        if !self.streams.contains_key(key) && self.streams.len() >= self.max_streams {
            // Forget everything rather than grow: costs one baseline per stream, counts nothing.
            self.streams.clear();
        }
        let stream = self.streams.entry(key.clone()).or_insert(Stream {
            prev: None,
            plausible: ALL,
        });
        let outcome = match (stream.prev, advance) {
            (None, _) => SeqOutcome::Baseline,
            (Some((prev_seq, prev)), cur) => {
                // Without this datagram's advance only the "before" conventions can be checked.
                let cur = cur.unwrap_or(Advance::same(0));
                let fits = CONVENTIONS
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| {
                        stream.plausible & (1 << i) != 0 && c.expected(prev_seq, prev, cur) == seq
                    })
                    .fold(0u8, |m, (i, _)| m | (1 << i));
                if fits != 0 {
                    // Narrow down to what fits this pair too; ambiguity resolves itself as
                    // soon as a message carries options records.
                    stream.plausible = fits;
                    SeqOutcome::InOrder
                } else {
                    let first = (0..CONVENTIONS.len())
                        .find(|i| stream.plausible & (1 << i) != 0)
                        .unwrap_or(0);
                    let ahead = seq.wrapping_sub(CONVENTIONS[first].expected(prev_seq, prev, cur));
                    if ahead < MAX_PLAUSIBLE_GAP {
                        SeqOutcome::Gap { missing: ahead }
                    } else {
                        SeqOutcome::Behind
                    }
                }
            }
        };
        stream.prev = advance.map(|a| (seq, a));
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(n: u32) -> Option<Advance> {
        Some(Advance::same(n))
    }

    #[test]
    fn in_order_gap_and_wrap() {
        let mut t = SequenceTracker::new(4);
        assert_eq!(t.observe(&1, u32::MAX - 10, same(10)), SeqOutcome::Baseline);
        assert_eq!(t.observe(&1, u32::MAX, same(5)), SeqOutcome::InOrder);
        // Wraps: u32::MAX + 5 == 4.
        assert_eq!(t.observe(&1, 4, same(3)), SeqOutcome::InOrder);
        assert_eq!(t.observe(&1, 17, same(1)), SeqOutcome::Gap { missing: 10 });
        assert_eq!(t.observe(&1, 5, same(1)), SeqOutcome::Behind);
    }

    #[test]
    fn unknown_advance_rebaselines_and_streams_are_separate() {
        let mut t = SequenceTracker::new(4);
        t.observe(&"a", 100, None);
        assert_eq!(t.observe(&"a", 250, same(1)), SeqOutcome::Baseline);
        assert_eq!(t.observe(&"b", 1, same(1)), SeqOutcome::Baseline);
        assert_eq!(t.observe(&"a", 251, same(1)), SeqOutcome::InOrder);
    }

    /// softflowd 1.1.0 IPFIX, as captured in tests/data: the sequence number already includes
    /// this message's data records and leaves options records out.
    #[test]
    fn softflowd_counting_after_without_options_is_learnt_and_gaps_still_show() {
        let mut t = SequenceTracker::new(4);
        let msg = |all, without_options| {
            Some(Advance {
                all,
                without_options,
            })
        };
        assert_eq!(t.observe(&0, 24, msg(25, 24)), SeqOutcome::Baseline);
        assert_eq!(t.observe(&0, 56, msg(32, 32)), SeqOutcome::InOrder);
        assert_eq!(t.observe(&0, 88, msg(32, 32)), SeqOutcome::InOrder);
        // A lost 32-record message.
        assert_eq!(
            t.observe(&0, 152, msg(32, 32)),
            SeqOutcome::Gap { missing: 32 }
        );
        assert_eq!(t.observe(&0, 177, msg(26, 25)), SeqOutcome::InOrder);
    }

    #[test]
    fn rfc_counting_with_options() {
        let mut t = SequenceTracker::new(4);
        let msg = |all, without_options| {
            Some(Advance {
                all,
                without_options,
            })
        };
        t.observe(&0, 0, msg(2, 1));
        assert_eq!(t.observe(&0, 2, msg(8, 8)), SeqOutcome::InOrder);
        assert_eq!(t.observe(&0, 10, msg(8, 8)), SeqOutcome::InOrder);
        assert_eq!(t.observe(&0, 26, msg(8, 8)), SeqOutcome::Gap { missing: 8 });
    }

    #[test]
    fn bounded_streams() {
        let mut t = SequenceTracker::new(2);
        for k in 0..100u32 {
            t.observe(&k, 0, same(1));
        }
        assert!(t.streams.len() <= 2);
    }
}
