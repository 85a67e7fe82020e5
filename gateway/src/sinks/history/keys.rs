//! Names and keys: what kind of history a bucket holds, the main database's tree names of
//! bucketed trees, and the time-ordered record key.

/// What kind of history a bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Alerts,
    Flows,
    Scores,
    Series,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Alerts, Kind::Flows, Kind::Scores, Kind::Series];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Alerts => "alerts",
            Kind::Flows => "flows",
            Kind::Scores => "scores",
            Kind::Series => "series",
        }
    }

    pub(super) fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

pub(super) fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Alerts => 0,
        Kind::Flows => 1,
        Kind::Scores => 2,
        Kind::Series => 3,
    }
}

pub(super) fn tree_name(kind: Kind, start_ms: u64) -> String {
    format!("h/{}/{start_ms:013}", kind.name())
}

pub(super) fn parse_tree_name(name: &[u8]) -> Option<(Kind, u64)> {
    let s = std::str::from_utf8(name).ok()?;
    let rest = s.strip_prefix("h/")?;
    let (kind, start) = rest.split_once('/')?;
    Some((Kind::from_name(kind)?, start.parse().ok()?))
}

/// `ts_ms (u64 BE) ++ seq (u64 BE)`.
pub fn time_key(ts_ms: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ts_ms.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}
