//! Feature rows kept for central training (issue 18): the reservoir's rows, their bytes in sled
//! and their CSV. A row is one scored flow record: its event time, the feature set it carries
//! (the active flow model's: `flow-v1` or `flow-v2`), optionally its identity (addresses, ports,
//! protocol; left out unless `[samples] identity = true`), the features and the score.
//!
//! A CSV carries one schema unless asked for all ([`SchemaPick`]): by default the active
//! model's, so a site model is trained on the rows its gateway's model reads, never on a mix.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::FlowSet;

/// Features a row holds at most (`flow-v2`).
pub const MAX_WIDTH: usize = FlowSet::V2.width();

/// The row tag's base in [`encode`]'s bytes (plus 1 with identity).
fn tag(set: FlowSet) -> u8 {
    match set {
        FlowSet::V1 => 0,
        FlowSet::V2 => 2,
    }
}

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
    pub schema: FlowSet,
    pub identity: Option<Identity>,
    /// The first `schema.width()` are the row's features; the rest are 0.
    pub features: [f32; MAX_WIDTH],
    pub score: f32,
}

impl SampleRow {
    /// The row's features (its schema's width).
    pub fn values(&self) -> &[f32] {
        &self.features[..self.schema.width()]
    }
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

/// Rows as bytes: per row a tag (`flow-v1` 0: no identity, 1: identity; `flow-v2` 2 and 3),
/// ts (u64 LE), the identity (two tagged addresses, ports, protocol), the schema's features and
/// the score (f32 LE). Rows stored before `flow-v2` rows existed read as `flow-v1`.
pub fn encode(rows: &[SampleRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| 9 + 4 * (r.schema.width() + 1)).sum());
    for r in rows {
        out.push(tag(r.schema) + u8::from(r.identity.is_some()));
        out.extend_from_slice(&r.ts_ms.to_le_bytes());
        if let Some(id) = &r.identity {
            put_ip(&mut out, &id.src);
            put_ip(&mut out, &id.dst);
            out.extend_from_slice(&id.src_port.to_le_bytes());
            out.extend_from_slice(&id.dst_port.to_le_bytes());
            out.push(id.protocol);
        }
        for v in r.values().iter().chain(std::iter::once(&r.score)) {
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
        let schema = match tag {
            0 | 1 => FlowSet::V1,
            2 | 3 => FlowSet::V2,
            _ => return None,
        };
        let ts_ms = u64::from_le_bytes(self.take()?);
        let identity = match tag % 2 {
            0 => None,
            _ => Some(Identity {
                src: self.ip()?,
                dst: self.ip()?,
                src_port: u16::from_le_bytes(self.take()?),
                dst_port: u16::from_le_bytes(self.take()?),
                protocol: self.take::<1>()?[0],
            }),
        };
        let mut features = [0f32; MAX_WIDTH];
        for f in &mut features[..schema.width()] {
            *f = f32::from_le_bytes(self.take()?);
        }
        let score = f32::from_le_bytes(self.take()?);
        Some(SampleRow {
            ts_ms,
            schema,
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

/// The CSV header: `ts_ms`, `schema`, the identity columns when `identity`, the feature names,
/// `score`.
pub fn csv_header(feature_names: &[&str], identity: bool) -> String {
    let mut h = String::from("ts_ms,schema");
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

/// One CSV line of `width` feature columns (identity columns empty for a row without identity,
/// when `identity`; feature columns beyond the row's schema empty).
pub fn csv_line(out: &mut String, r: &SampleRow, identity: bool, width: usize) {
    let _ = write!(out, "{},{}", r.ts_ms, r.schema);
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
    let values = r.values();
    for i in 0..width {
        match values.get(i) {
            Some(v) => {
                let _ = write!(out, ",{v}");
            }
            None => out.push(','),
        }
    }
    let _ = writeln!(out, ",{}", r.score);
}

/// Which rows a CSV carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPick {
    /// The active flow model's schema (`active`), else the newest stored row's.
    Active(Option<FlowSet>),
    /// Only this schema's rows.
    Only(FlowSet),
    /// Every row; with both schemas the columns are `flow-v2`'s and `flow-v1` rows leave the
    /// last ones empty (a trainer refuses such a mix: it is for inspection).
    All,
}

impl SchemaPick {
    /// `flow-v1`, `flow-v2` or `all` (a query value, a request field, a CLI flag); `active`
    /// (or nothing) is the active model's, known only where the rows are read
    /// (`SchemaPick::Active(None)`, resolved by the store).
    pub fn parse(s: &str) -> Result<SchemaPick, String> {
        match s {
            "all" => Ok(SchemaPick::All),
            "" | "active" => Ok(SchemaPick::Active(None)),
            other => FlowSet::from_schema(other)
                .map(SchemaPick::Only)
                .ok_or_else(|| {
                    format!("schema {other:?} is not one of flow-v1, flow-v2, all, active")
                }),
        }
    }
}

/// What [`csv`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsvStats {
    pub buckets: usize,
    pub rows: usize,
    /// Buckets whose bytes were damaged (their good rows are still written).
    pub damaged: usize,
    /// The schema of the rows written (`None`: all, or nothing stored).
    pub schema: Option<FlowSet>,
    /// Stored rows of another schema, left out.
    pub other_rows: usize,
}

/// The stored buckets as one CSV (identity columns when any row has them), oldest first,
/// with the rows `pick` asks for.
pub fn csv(buckets: &[(u64, Vec<u8>)], pick: SchemaPick) -> (String, CsvStats) {
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
    let only = match pick {
        SchemaPick::Only(s) => Some(s),
        SchemaPick::Active(Some(s)) => Some(s),
        // Buckets are stored oldest first; the newest row's schema is what the gateway
        // records now.
        SchemaPick::Active(None) => all.last().map(|r| r.schema),
        SchemaPick::All => None,
    };
    if let Some(s) = only {
        let before = all.len();
        all.retain(|r| r.schema == s);
        stats.other_rows = before - all.len();
    }
    stats.schema = only.or_else(|| {
        let first = all.first()?.schema;
        all.iter().all(|r| r.schema == first).then_some(first)
    });
    stats.rows = all.len();
    let identity = all.iter().any(|r| r.identity.is_some());
    let widest = stats
        .schema
        .unwrap_or_else(|| all.iter().map(|r| r.schema).max().unwrap_or(FlowSet::V1));
    let mut out = csv_header(widest.names(), identity);
    for r in &all {
        csv_line(&mut out, r, identity, widest.width());
    }
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: u64, identity: bool) -> SampleRow {
        let mut features = [0.0; MAX_WIDTH];
        features[..8].copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 0.0, 5.0, 6.5, 7.0]);
        SampleRow {
            ts_ms: ts,
            schema: FlowSet::V1,
            identity: identity.then(|| Identity {
                src: "10.0.0.1".parse().expect("ip"),
                dst: "fe80::2".parse().expect("ip"),
                src_port: 40_000,
                dst_port: 443,
                protocol: 6,
            }),
            features,
            score: 0.25,
        }
    }

    fn v2_row(ts: u64) -> SampleRow {
        let mut features = [0.0; MAX_WIDTH];
        for (i, f) in features.iter_mut().enumerate() {
            *f = i as f32 + 0.5;
        }
        SampleRow {
            ts_ms: ts,
            schema: FlowSet::V2,
            identity: None,
            features,
            score: 0.5,
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
        // flow-v2 rows keep their 17 values and their schema, beside flow-v1 ones.
        let mixed = [row(1, true), v2_row(2), row(3, false)];
        let bytes = encode(&mixed);
        assert_eq!(bytes[0], 1);
        assert_eq!(decode(&bytes), Ok(mixed.to_vec()));
        assert_eq!(decode(&bytes).expect("rows")[1].values().len(), 17);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_csv_carries_the_active_schema_unless_all_are_asked_for() {
        let old = encode(&[row(1, false), row(2, false)]);
        let new = encode(&[v2_row(3)]);
        let buckets = vec![(0, old), (0, new)];
        let (text, stats) = csv(&buckets, SchemaPick::Active(None));
        assert_eq!((stats.rows, stats.other_rows), (1, 2));
        assert_eq!(stats.schema, Some(FlowSet::V2));
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert!(header.starts_with("ts_ms,schema,bidirectional_packets,"));
        assert!(header.ends_with(",svc_novel,score"), "{header}");
        assert_eq!(lines.next().expect("row").split(',').count(), 2 + 17 + 1);
        assert!(text
            .lines()
            .nth(1)
            .expect("row")
            .starts_with("3,flow-v2,0.5,"));
        // The daemon says flow-v1 is active: the older rows.
        let (text, stats) = csv(&buckets, SchemaPick::Active(Some(FlowSet::V1)));
        assert_eq!((stats.rows, stats.other_rows), (2, 1));
        assert_eq!(
            text.lines().next().expect("h").split(',').count(),
            2 + 8 + 1
        );
        // All: flow-v2 columns, flow-v1 rows leave the last nine empty.
        let (text, stats) = csv(&buckets, SchemaPick::All);
        assert_eq!((stats.rows, stats.schema), (3, None));
        let first = text.lines().nth(1).expect("row");
        assert_eq!(first, "1,flow-v1,1,2,3,4,0,5,6.5,7,,,,,,,,,,0.25");
        assert_eq!(csv(&[], SchemaPick::Active(None)).1.rows, 0);
    }

    #[test]
    fn csv_has_identity_columns_only_when_asked() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        assert_eq!(
            csv_header(&names, false),
            "ts_ms,schema,a,b,c,d,e,f,g,h,score\n"
        );
        let mut s = String::new();
        csv_line(&mut s, &row(5, true), true, 8);
        assert_eq!(
            s,
            "5,flow-v1,10.0.0.1,fe80::2,40000,443,6,1,2,3,4,0,5,6.5,7,0.25\n"
        );
        s.clear();
        csv_line(&mut s, &row(5, false), true, 8);
        assert_eq!(s, "5,flow-v1,,,,,,1,2,3,4,0,5,6.5,7,0.25\n");
    }
}
