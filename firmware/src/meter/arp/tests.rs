use super::*;

const WEB: Mac = [2, 0x77, 0, 0, 0, 0x0a];
const CL3: Mac = [2, 0x77, 0, 0, 0, 0x67];
const ATK: Mac = [2, 0x77, 0, 0, 0, 0x42];
const BCAST: Mac = [0xff; 6];
const ZERO: Mac = [0; 6];

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, last)
}

fn request(from: (Mac, Ipv4Addr), asked: Ipv4Addr) -> [u8; 42] {
    ethernet_arp(from.0, BCAST, ArpOp::Request, from, (ZERO, asked))
}

/// A reply "`claimed.1` is-at `claimed.0`" sent by `link_src` to `to`.
fn reply(link_src: Mac, claimed: (Mac, Ipv4Addr), to: (Mac, Ipv4Addr)) -> [u8; 42] {
    ethernet_arp(link_src, to.0, ArpOp::Reply, claimed, to)
}

#[test]
fn parses_what_it_builds_and_refuses_other_frames() {
    let f = reply(ATK, (ATK, ip(10)), (CL3, ip(103)));
    let a = arp_frame(LinkType::Ethernet, &f).expect("arp");
    assert_eq!(a.op, ArpOp::Reply);
    assert_eq!((a.sender_mac, a.sender_ip), (ATK, ip(10)));
    assert_eq!((a.target_mac, a.target_ip), (CL3, ip(103)));
    assert_eq!(
        (a.link_src, a.link_dst, a.vlan),
        (Some(ATK), Some(CL3), None)
    );
    // Cut anywhere inside the ARP packet: truncated, never a panic.
    for n in 14..42 {
        assert_eq!(
            arp_frame(LinkType::Ethernet, &f[..n]),
            Err(ArpError::Truncated),
            "{n}"
        );
    }
    // An IPv4 ethertype is not ARP; a raw-IP link never carries ARP.
    let mut ip_frame = f;
    ip_frame[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(
        arp_frame(LinkType::Ethernet, &ip_frame),
        Err(ArpError::NotArp)
    );
    assert_eq!(arp_frame(LinkType::Raw, &f), Err(ArpError::NotArp));
    // Hardware type other than Ethernet, and RARP's operation 3: unsupported.
    let mut other = f;
    other[15] = 6;
    assert_eq!(
        arp_frame(LinkType::Ethernet, &other),
        Err(ArpError::Unsupported)
    );
    let mut rarp = f;
    rarp[21] = 3;
    assert_eq!(
        arp_frame(LinkType::Ethernet, &rarp),
        Err(ArpError::Unsupported)
    );
}

#[test]
fn vlan_tag_and_sll_link_source() {
    let f = reply(ATK, (ATK, ip(10)), (CL3, ip(103)));
    let mut tagged = [0u8; 46];
    tagged[..12].copy_from_slice(&f[..12]);
    tagged[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged[16..].copy_from_slice(&f[12..]);
    let a = arp_frame(LinkType::Ethernet, &tagged).expect("tagged");
    assert_eq!(a.vlan, Some(7));
    assert_eq!(a.sender_ip, ip(10));
    // Linux cooked capture: the sender's link address is in the SLL header.
    let mut sll = [0u8; 44];
    sll[2..4].copy_from_slice(&[0, 1]);
    sll[4..6].copy_from_slice(&[0, 6]);
    sll[6..12].copy_from_slice(&ATK);
    sll[14..16].copy_from_slice(&[0x08, 0x06]);
    sll[16..].copy_from_slice(&f[14..]);
    let a = arp_frame(LinkType::LinuxSll, &sll).expect("sll");
    assert_eq!((a.link_src, a.link_dst), (Some(ATK), None));
}

#[test]
fn classifies_and_counts() {
    let mut m: ArpMeter<16> = ArpMeter::new(ArpConfig::DEFAULT);
    let e = m
        .observe(LinkType::Ethernet, 1000, &request((CL3, ip(103)), ip(10)))
        .expect("request");
    assert_eq!(e.kind, ArpKind::Request);
    assert_eq!(e.binding, BindingChange::New);
    assert!(e.notable(), "a new binding is notable");
    let e = m
        .observe(
            LinkType::Ethernet,
            1001,
            &reply(WEB, (WEB, ip(10)), (CL3, ip(103))),
        )
        .expect("reply");
    assert_eq!(e.kind, ArpKind::Reply);
    assert!(!e.unsolicited, "answers the request");
    // The same exchange again: nothing new, nothing notable.
    m.observe(LinkType::Ethernet, 30_000, &request((CL3, ip(103)), ip(10)))
        .expect("request");
    let e = m
        .observe(
            LinkType::Ethernet,
            30_002,
            &reply(WEB, (WEB, ip(10)), (CL3, ip(103))),
        )
        .expect("reply");
    assert_eq!(e.binding, BindingChange::Same);
    assert!(!e.notable());
    // A reply nobody asked for, and one that comes after the window.
    let e = m
        .observe(
            LinkType::Ethernet,
            40_000,
            &reply(WEB, (WEB, ip(10)), (ATK, ip(66))),
        )
        .expect("reply");
    assert!(e.unsolicited && e.notable());
    m.observe(LinkType::Ethernet, 50_000, &request((CL3, ip(103)), ip(10)))
        .expect("request");
    let e = m
        .observe(
            LinkType::Ethernet,
            56_000,
            &reply(WEB, (WEB, ip(10)), (CL3, ip(103))),
        )
        .expect("reply");
    assert!(e.unsolicited, "6 s after the request, past the 5 s window");
    // Gratuitous announcement and a DAD probe.
    let g = ethernet_arp(WEB, BCAST, ArpOp::Request, (WEB, ip(10)), (ZERO, ip(10)));
    let e = m.observe(LinkType::Ethernet, 60_000, &g).expect("garp");
    assert_eq!(e.kind, ArpKind::Gratuitous);
    assert!(e.notable());
    let p = ethernet_arp(
        ATK,
        BCAST,
        ArpOp::Request,
        (ATK, Ipv4Addr::UNSPECIFIED),
        (ZERO, ip(66)),
    );
    let e = m.observe(LinkType::Ethernet, 60_001, &p).expect("probe");
    assert_eq!((e.kind, e.binding), (ArpKind::Probe, BindingChange::None));
    // Garbage and cut frames are counted, IP frames are not ARP's business.
    assert!(m.observe(LinkType::Ethernet, 1, &[0u8; 20]).is_err());
    assert!(m.observe(LinkType::Ethernet, 1, &g[..30]).is_err());
    let s = m.stats();
    assert_eq!(
        (s.packets, s.requests, s.replies, s.gratuitous, s.probes),
        (9, 3, 4, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.unsolicited_replies, 2, "{s:?}");
    assert_eq!((s.truncated, s.unsupported), (1, 0), "{s:?}");
    assert_eq!((s.bindings_new, s.bindings_changed), (2, 0), "{s:?}");
}

#[test]
fn a_spoofed_reply_flips_the_binding_and_names_the_old_one() {
    let mut m: ArpMeter<16> = ArpMeter::new(ArpConfig::DEFAULT);
    m.observe(LinkType::Ethernet, 1000, &request((ATK, ip(66)), ip(103)))
        .expect("atk asks");
    m.observe(
        LinkType::Ethernet,
        1500,
        &reply(WEB, (WEB, ip(10)), (CL3, ip(103))),
    )
    .expect("web");
    // arpspoof: "10.77.0.10 is-at ATK" to cl3.
    let e = m
        .observe(
            LinkType::Ethernet,
            2000,
            &reply(ATK, (ATK, ip(10)), (CL3, ip(103))),
        )
        .expect("spoof");
    assert!(e.unsolicited);
    let BindingChange::Changed { old } = e.binding else {
        panic!("expected a flip, got {:?}", e.binding);
    };
    assert_eq!((old.mac, old.first_ms, old.last_ms), (WEB, 1500, 1500));
    assert_eq!(e.sender_claims, 2, "ATK now claims its own .66 and .10");
    assert_eq!(m.binding(None, ip(10)).map(|b| b.mac), Some(ATK));
    // arpspoof's exit: the true binding re-announced from the attacker's NIC.
    let e = m
        .observe(
            LinkType::Ethernet,
            9000,
            &reply(ATK, (WEB, ip(10)), (CL3, ip(103))),
        )
        .expect("re-arp");
    assert!(e.link_mismatch() && e.notable());
    assert!(matches!(e.binding, BindingChange::Changed { old } if old.mac == ATK));
    assert_eq!(m.stats().bindings_changed, 2);
    assert_eq!(m.stats().link_mismatch, 1);
}

#[test]
fn a_full_table_evicts_the_stalest_and_counts() {
    let mut m: ArpMeter<8> = ArpMeter::new(ArpConfig::DEFAULT);
    assert_eq!(m.capacity(), 6);
    for i in 0..20u8 {
        let mac = [2, 0, 0, 0, 0, i];
        m.observe(
            LinkType::Ethernet,
            u64::from(i) * 10,
            &request((mac, ip(i)), ip(200)),
        )
        .expect("request");
        assert!(m.len() <= 6);
    }
    let s = m.stats();
    assert_eq!(s.bindings_new, 20);
    assert_eq!(s.bindings_evicted, 14);
    assert!(m.binding(None, ip(19)).is_some(), "the newest stays");
    // A configured limit below the capacity is honoured.
    let mut m: ArpMeter<64> = ArpMeter::new(ArpConfig {
        max_bindings: 4,
        ..ArpConfig::DEFAULT
    });
    for i in 0..10u8 {
        m.observe(
            LinkType::Ethernet,
            u64::from(i),
            &request(([2, 0, 0, 0, 1, i], ip(i)), ip(200)),
        )
        .expect("request");
    }
    assert_eq!((m.len(), m.stats().bindings_evicted), (4, 6));
}

#[test]
fn one_mac_claiming_many_ips_is_counted() {
    let mut m: ArpMeter<64> = ArpMeter::new(ArpConfig::DEFAULT);
    let mut last = 0;
    for i in 1..=10u8 {
        let e = m
            .observe(
                LinkType::Ethernet,
                u64::from(i),
                &ethernet_arp(ATK, BCAST, ArpOp::Reply, (ATK, ip(i)), (BCAST, ip(i))),
            )
            .expect("claim");
        last = e.sender_claims;
    }
    assert_eq!(last, 10);
    assert_eq!(m.claims(0, ATK), 10);
    assert_eq!(m.claims(0, WEB), 0);
}
