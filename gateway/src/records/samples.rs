//! Feature rows kept for central training (issue 18): the reservoir's rows, their bytes in sled
//! and their CSV. A row is one scored flow record: its event time, optionally its identity
//! (addresses, ports, protocol; left out unless `[samples] identity = true`), the `flow-v1`
//! features and the score.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Features per row (`flow-v1`).
pub const WIDTH: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Identity {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRow {
    pub ts_ms: u64,
    pub identity: Option<Identity>,
    pub features: [f32; WIDTH],
    pub score: f32,
}

fn put_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// Rows as bytes: per row a tag (0: no identity, 1: identity), ts (u64 LE), the identity
/// (two tagged addresses, ports, protocol), the features and the score (f32 LE).
pub fn encode(rows: &[SampleRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * (9 + 4 * (WIDTH + 1)));
    for r in rows {
        out.push(u8::from(r.identity.is_some()));
        out.extend_from_slice(&r.ts_ms.to_le_bytes());
        if let Some(id) = &r.identity {
            put_ip(&mut out, &id.src);
            put_ip(&mut out, &id.dst);
            out.extend_from_slice(&id.src_port.to_le_bytes());
            out.extend_from_slice(&id.dst_port.to_le_bytes());
            out.push(id.protocol);
        }
        for v in r.features.iter().chain(std::iter::once(&r.score)) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn ip(&mut self) -> Option<IpAddr> {
        match self.take::<1>()?[0] {
            4 => Some(IpAddr::from(self.take::<4>()?)),
            6 => Some(IpAddr::from(self.take::<16>()?)),
            _ => None,
        }
    }

    fn row(&mut self) -> Option<SampleRow> {
        let tag = self.take::<1>()?[0];
        let ts_ms = u64::from_le_bytes(self.take()?);
        let identity = match tag {
            0 => None,
            1 => Some(Identity {
                src: self.ip()?,
                dst: self.ip()?,
                src_port: u16::from_le_bytes(self.take()?),
                dst_port: u16::from_le_bytes(self.take()?),
                protocol: self.take::<1>()?[0],
            }),
            _ => return None,
        };
        let mut features = [0f32; WIDTH];
        for f in &mut features {
            *f = f32::from_le_bytes(self.take()?);
        }
        let score = f32::from_le_bytes(self.take()?);
        Some(SampleRow {
            ts_ms,
            identity,
            features,
            score,
        })
    }
}

/// Reads [`encode`]'s bytes; `Err(rows read)` when they end in the middle of a row or hold
/// a bad tag (damaged storage: the rows before it are still good).
pub fn decode(bytes: &[u8]) -> Result<Vec<SampleRow>, Vec<SampleRow>> {
    let mut r = Reader(bytes);
    let mut rows = Vec::new();
    while !r.0.is_empty() {
        match r.row() {
            Some(row) => rows.push(row),
            None => return Err(rows),
        }
    }
    Ok(rows)
}

/// The CSV header: `ts_ms`, the identity columns when `identity`, the feature names, `score`.
pub fn csv_header(feature_names: &[&str], identity: bool) -> String {
    let mut h = String::from("ts_ms");
    if identity {
        h.push_str(",src_addr,dst_addr,src_port,dst_port,protocol");
    }
    for n in feature_names {
        h.push(',');
        h.push_str(n);
    }
    h.push_str(",score\n");
    h
}

/// One CSV line (identity columns empty for a row without identity, when `identity`).
pub fn csv_line(out: &mut String, r: &SampleRow, identity: bool) {
    let _ = write!(out, "{}", r.ts_ms);
    if identity {
        match &r.identity {
            Some(i) => {
                let _ = write!(
                    out,
                    ",{},{},{},{},{}",
                    i.src, i.dst, i.src_port, i.dst_port, i.protocol
                );
            }
            None => out.push_str(",,,,,"),
        }
    }
    for v in &r.features {
        let _ = write!(out, ",{v}");
    }
    let _ = writeln!(out, ",{}", r.score);
}

/// What [`csv`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsvStats {
    pub buckets: usize,
    pub rows: usize,
    /// Buckets whose bytes were damaged (their good rows are still written).
    pub damaged: usize,
}

/// The stored buckets as one CSV (`flow-v1` column names; identity columns when any row has
/// them), oldest first.
pub fn csv(buckets: &[(u64, Vec<u8>)]) -> (String, CsvStats) {
    let mut stats = CsvStats::default();
    let mut all = Vec::new();
    for (_, bytes) in buckets {
        stats.buckets += 1;
        match decode(bytes) {
            Ok(rows) => all.extend(rows),
            Err(rows) => {
                stats.damaged += 1;
                all.extend(rows);
            }
        }
    }
    all.sort_by_key(|r| r.ts_ms);
    stats.rows = all.len();
    let identity = all.iter().any(|r| r.identity.is_some());
    let mut out = csv_header(&netwarden_firmware::features::FLOW_FEATURES, identity);
    for r in &all {
        csv_line(&mut out, r, identity);
    }
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: u64, identity: bool) -> SampleRow {
        SampleRow {
            ts_ms: ts,
            identity: identity.then(|| Identity {
                src: "10.0.0.1".parse().expect("ip"),
                dst: "fe80::2".parse().expect("ip"),
                src_port: 40_000,
                dst_port: 443,
                protocol: 6,
            }),
            features: [1.0, 2.0, 3.0, 4.0, 0.0, 5.0, 6.5, 7.0],
            score: 0.25,
        }
    }

    #[test]
    fn rows_round_trip_and_damage_keeps_what_came_before() {
        let rows = [row(1, false), row(2, true), row(3, false)];
        let bytes = encode(&rows);
        assert_eq!(decode(&bytes), Ok(rows.to_vec()));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Err(rows[..2].to_vec()));
        let mut bad = bytes.clone();
        bad[0] = 7;
        assert_eq!(decode(&bad), Err(vec![]));
    }

    #[test]
    fn csv_has_identity_columns_only_when_asked() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        assert_eq!(csv_header(&names, false), "ts_ms,a,b,c,d,e,f,g,h,score\n");
        let mut s = String::new();
        csv_line(&mut s, &row(5, true), true);
        assert_eq!(s, "5,10.0.0.1,fe80::2,40000,443,6,1,2,3,4,0,5,6.5,7,0.25\n");
        s.clear();
        csv_line(&mut s, &row(5, false), true);
        assert_eq!(s, "5,,,,,,1,2,3,4,0,5,6.5,7,0.25\n");
    }
}
