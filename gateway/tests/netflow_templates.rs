//! The template book (sources/netflow/templates.rs) with netflow_parser on real exports: the
//! templates softflowd and pmacct announce are written through to it, and a decoder that never
//! saw them (another source port, another shard, a restarted gateway's restored book) decodes
//! the data sets that follow at once; the same decoder without the book buffers them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use netwarden::sources::netflow::export_pcap::read_datagrams;
use netwarden::sources::netflow::templates::TemplateBook;
use netwarden::sources::netflow::NetflowDecoder;

fn payloads(rel: &str) -> Vec<Vec<u8>> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/netflow"
    ));
    let (d, _) = read_datagrams(&root.join(rel), None).expect(rel);
    d.into_iter().map(|d| d.payload).collect()
}

fn now() -> u64 {
    1_000_000
}

#[test]
fn a_decoder_that_never_saw_the_templates_decodes_with_the_book() {
    for f in [
        "softflowd-v9-scan-mixed.pcap",
        "softflowd-ipfix-scan-mixed.pcap",
        "pmacct-v9-scan-mixed.pcap",
        "pmacct-ipfix-scan-mixed.pcap",
    ] {
        let p = payloads(f);
        let book = Arc::new(TemplateBook::new(3_600_000, 256, now));
        let first: SocketAddr = "10.0.0.1:4000".parse().expect("addr");
        let mut a = NetflowDecoder::with_template_book(16, book.clone());
        let mut out = Vec::new();
        a.decode(first, &p[0], &mut out);
        assert!(!book.is_empty(), "{f}: templates written through");
        // The same router from a new port, on a decoder of its own: data only.
        let next: SocketAddr = "10.0.0.1:4999".parse().expect("addr");
        let mut b = NetflowDecoder::with_template_book(16, book.clone());
        let mut plain = NetflowDecoder::new(16);
        let (mut with_book, mut without) = (Vec::new(), Vec::new());
        for d in &p[1..5] {
            a.decode(first, d, &mut out);
            b.decode(next, d, &mut with_book);
            plain.decode(next, d, &mut without);
        }
        assert!(!with_book.is_empty(), "{f}");
        let a_records: Vec<_> = out[out.len() - with_book.len()..]
            .iter()
            .map(|(_, r)| *r)
            .collect();
        let b_records: Vec<_> = with_book.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            a_records, b_records,
            "{f}: same records as the first decoder"
        );
        assert!(without.is_empty(), "{f}: without the book they wait");
        // Another router's address gets nothing.
        let other: SocketAddr = "10.0.0.2:4000".parse().expect("addr");
        let mut c = NetflowDecoder::with_template_book(16, book);
        let mut none = Vec::new();
        c.decode(other, &p[1], &mut none);
        assert!(none.is_empty(), "{f}");
    }
}
