//! The hot path (template plans decoding data sets straight from the bytes) against
//! netflow_parser alone: the same datagrams to both, every record and every exporter counter
//! compared. Over every NetFlow capture in tests/data (softflowd and pmacct exports, the lab's
//! v9/IPFIX exports) and over generated templates with odd element widths, padding and broken
//! framing.

use std::net::SocketAddr;
use std::path::Path;

use netwarden::sources::netflow::differential::Differential;
use netwarden::sources::netflow::export_pcap::read_datagrams;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn captures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("tests/data/netflow"))
        .expect("tests/data/netflow")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    for f in ["netflow-v9.pcap", "netflow-ipfix.pcap"] {
        v.push(root().join("tests/data/lab/small").join(f));
    }
    v.sort();
    v
}

#[test]
fn every_capture_decodes_the_same_on_both_paths() {
    let mut checked = 0;
    for path in captures() {
        let (datagrams, _) = read_datagrams(&path, None).expect("capture");
        let mut d = Differential::new(64);
        // Twice: the second pass finds every template learnt, as a long-running collector does.
        for pass in 0..2 {
            for (i, dg) in datagrams.iter().enumerate() {
                if let Err(e) = d.feed(dg.src, &dg.payload) {
                    panic!("{}: pass {pass}, datagram {i}: {e}", path.display());
                }
            }
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(d.records > 0, "{name}: no records");
        if !name.contains("-v5-") {
            assert!(
                d.hot_path_datagrams() * 2 > datagrams.len() as u64,
                "{name}: the hot path took only {} of {} datagrams",
                d.hot_path_datagrams(),
                2 * datagrams.len()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 12, "10 fixtures + 2 lab exports");
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Elements the normaliser reads, with usual and unusual widths, and some it steps over.
const ELEMENTS: &[(u16, &[u16])] = &[
    (8, &[4, 4, 4, 3, 16]),
    (12, &[4, 4, 4, 5]),
    (27, &[16, 16, 4]),
    (28, &[16, 16, 8]),
    (7, &[2, 2, 1, 4]),
    (11, &[2, 2, 4, 3]),
    (4, &[1, 1, 2]),
    (6, &[1, 2, 4]),
    (1, &[4, 8, 1, 2, 3, 5, 16]),
    (2, &[4, 8, 2, 16]),
    (85, &[8, 4]),
    (86, &[8, 4]),
    (21, &[4, 8, 2]),
    (22, &[4, 8, 3]),
    (150, &[4, 8, 3]),
    (151, &[4, 2]),
    (152, &[8, 4]),
    (153, &[8, 6]),
    (154, &[8, 4]),
    (155, &[8]),
    (156, &[8]),
    (157, &[8, 2]),
    (160, &[8, 4]),
    (10, &[2, 4]),
    (61, &[1]),
    (56, &[6]),
    (82, &[7]),
    (95, &[4]),
];

struct Template {
    id: u16,
    /// (element id, length, enterprise number)
    fields: Vec<(u16, u16, Option<u32>)>,
    record_len: usize,
}

fn template(rng: &mut Rng, id: u16, ipfix: bool) -> Template {
    let mut fields = Vec::new();
    for &(e, widths) in ELEMENTS {
        if rng.below(3) > 0 {
            fields.push((e, rng.pick(widths), None));
        }
    }
    if ipfix && rng.below(3) == 0 {
        fields.push((1 + rng.below(300) as u16, rng.pick(&[2u16, 4]), Some(9)));
    }
    // Shuffle.
    for i in (1..fields.len()).rev() {
        let j = rng.below(i + 1);
        fields.swap(i, j);
    }
    let record_len = fields.iter().map(|f| usize::from(f.1)).sum();
    Template {
        id,
        fields,
        record_len,
    }
}

fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = id.to_be_bytes().to_vec();
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

fn template_set(t: &Template, ipfix: bool) -> Vec<u8> {
    let mut b = t.id.to_be_bytes().to_vec();
    b.extend_from_slice(&(t.fields.len() as u16).to_be_bytes());
    for &(e, len, ent) in &t.fields {
        let e = if ent.is_some() { e | 0x8000 } else { e };
        b.extend_from_slice(&e.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
        if let Some(n) = ent {
            b.extend_from_slice(&n.to_be_bytes());
        }
    }
    set(if ipfix { 2 } else { 0 }, &b)
}

fn message(ipfix: bool, seq: u32, domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut m = Vec::new();
    if ipfix {
        m.extend_from_slice(&10u16.to_be_bytes());
        m.extend_from_slice(&((body.len() + 16) as u16).to_be_bytes());
        m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&domain.to_be_bytes());
    } else {
        m.extend_from_slice(&9u16.to_be_bytes());
        m.extend_from_slice(&(sets.len() as u16).to_be_bytes());
        m.extend_from_slice(&3_600_000u32.to_be_bytes());
        m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&domain.to_be_bytes());
    }
    m.extend_from_slice(&body);
    m
}

#[test]
fn generated_templates_with_odd_widths_and_framing_decode_the_same() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut d = Differential::new(16);
    let mut hot_expected = 0;
    for case in 0..300u32 {
        let ipfix = case % 2 == 0;
        let from = SocketAddr::from(([192, 0, 2, (case % 5) as u8], 2055));
        let domain = case % 3;
        let templates: Vec<Template> = (0..1 + rng.below(2))
            .map(|i| template(&mut rng, 256 + i as u16 + (case % 4) as u16, ipfix))
            .collect();
        let mut seq = rng.next() as u32;
        let tsets: Vec<Vec<u8>> = templates.iter().map(|t| template_set(t, ipfix)).collect();
        d.feed(from, &message(ipfix, seq, domain, &tsets))
            .unwrap_or_else(|e| panic!("case {case} templates: {e}"));
        for k in 0..6 {
            let mut sets = Vec::new();
            for t in &templates {
                if t.record_len == 0 {
                    continue;
                }
                let n = 1 + rng.below(4);
                let mut body = rng.bytes(n * t.record_len);
                if k == 2 {
                    let pad = rng.below(t.record_len.min(4) + 1);
                    body.extend(rng.bytes(pad)); // padding
                }
                sets.push(set(t.id, &body));
            }
            let mut m = message(ipfix, seq, domain, &sets);
            match k {
                4 => {
                    let n = 1 + rng.below(3);
                    m.extend(rng.bytes(n)) // trailing bytes
                }
                5 if ipfix => m[3] = m[3].wrapping_add(4), // length disagrees
                _ => {}
            }
            seq = seq.wrapping_add(if ipfix { 3 } else { 1 });
            d.feed(from, &m)
                .unwrap_or_else(|e| panic!("case {case} data {k}: {e}"));
            hot_expected += 1;
        }
        if rng.below(4) == 0 {
            // The same id now names an options template: data of it must not be planned.
            let t = &templates[0];
            let mut b = t.id.to_be_bytes().to_vec();
            if ipfix {
                b.extend_from_slice(&[0, 2, 0, 1, 0, 10, 0, 4, 0, 2, 0, 4]);
                d.feed(from, &message(ipfix, seq, domain, &[set(3, &b)]))
                    .unwrap_or_else(|e| panic!("case {case} options: {e}"));
            } else {
                b.extend_from_slice(&[0, 4, 0, 4, 0, 1, 0, 4, 0, 10, 0, 4]);
                d.feed(from, &message(ipfix, seq, domain, &[set(1, &b)]))
                    .unwrap_or_else(|e| panic!("case {case} options: {e}"));
            }
            let body = rng.bytes(8);
            d.feed(from, &message(ipfix, seq, domain, &[set(t.id, &body)]))
                .unwrap_or_else(|e| panic!("case {case} options data: {e}"));
        }
    }
    assert!(d.records > 1000, "{} records compared", d.records);
    assert!(
        d.hot_path_datagrams() * 2 > hot_expected,
        "hot path took {} of {hot_expected} data datagrams",
        d.hot_path_datagrams()
    );
}
