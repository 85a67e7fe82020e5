//! netwarden's firmware core on a Cortex-M4F: meters a handful of built-in frames (a TCP
//! fetch, DNS over IPv6 on VLAN 42, a ping and its reply, plus an ARP frame and a truncated
//! frame that must be refused and counted) with `netwarden_firmware::meter::Meter`, then prints
//! the flow table and the meter's counters over semihosting. The frames it refuses as not IP
//! go to the ARP meter, with a spoofed reply that flips a binding; then it exits.
//!
//! Run: `cargo run --release` (QEMU `mps2-an386`, see .cargo/config.toml), or
//! cross/firmware-image/run-qemu.sh, which also checks the printed table.
#![no_std]
#![no_main]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use netwarden_firmware::meter::arp::{ethernet_arp, ArpConfig, ArpMeter, ArpOp, BindingChange};
use netwarden_firmware::meter::{BiFlow, Meter, MeterConfig};
use netwarden_firmware::synth::{write_frame, SynthLink, SynthPacket};
use netwarden_firmware::wire::LinkType;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

const T0_MS: u64 = 1_700_000_000_000;

fn packet(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: u8,
    flags: u8,
    len: u16,
) -> SynthPacket {
    SynthPacket {
        src,
        dst,
        protocol: proto,
        src_port: sport,
        dst_port: dport,
        tcp_flags: flags,
        payload_len: len,
        vlan: None,
    }
}

/// `addr:port`, IPv6 addresses in brackets.
struct Endpoint(IpAddr, u16);

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

fn print_flow(f: &BiFlow) {
    hprintln!(
        "flow proto={} {} > {} vlan={} s2d={}p/{}B d2s={}p/{}B dur={}ms flags={:#04x}/{:#04x}",
        f.protocol,
        Endpoint(f.src_addr, f.src_port),
        Endpoint(f.dst_addr, f.dst_port),
        f.vlan_id.unwrap_or(0),
        f.src2dst.packets,
        f.src2dst.bytes,
        f.dst2src.packets,
        f.dst2src.bytes,
        f.bidirectional_duration_ms(),
        f.src2dst.tcp_flags,
        f.dst2src.tcp_flags
    );
}

#[entry]
fn main() -> ! {
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let a6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let dns6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 53));
    let (syn, ack, psh, fin) = (0x02, 0x10, 0x08, 0x01);
    let mut dns_q = packet(a6, 5353, dns6, 53, 17, 0, 30);
    dns_q.vlan = Some(42);
    let mut dns_r = packet(dns6, 53, a6, 5353, 17, 0, 90);
    dns_r.vlan = Some(42);
    let frames: [(u64, SynthPacket); 11] = [
        (0, packet(client, 40000, server, 80, 6, syn, 0)),
        (2, packet(server, 80, client, 40000, 6, syn | ack, 0)),
        (3, packet(client, 40000, server, 80, 6, ack, 0)),
        (4, packet(client, 40000, server, 80, 6, psh | ack, 100)),
        (9, packet(server, 80, client, 40000, 6, psh | ack, 1000)),
        (12, packet(client, 40000, server, 80, 6, fin | ack, 0)),
        (13, packet(server, 80, client, 40000, 6, fin | ack, 0)),
        (20, dns_q),
        (31, dns_r),
        (40, packet(client, 0, server, 8 << 8, 1, 0, 56)),
        (41, packet(server, 0, client, 0, 1, 0, 56)),
    ];

    let mut meter: Meter<16> = Meter::new(MeterConfig::DEFAULT);
    let mut buf = [0u8; 1600];
    let mut ended = 0u32;
    for (ms, p) in &frames {
        let Some(n) = write_frame(SynthLink::Ethernet, p, &mut buf) else {
            continue;
        };
        let _ = meter.observe(LinkType::Ethernet, T0_MS + ms, &buf[..n], &mut |_| {
            ended += 1
        });
    }
    // An ARP request (not IP) and a frame cut inside its IPv4 header: refused and counted.
    let mut arp = [0u8; 42];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let arp_result = meter.observe(LinkType::Ethernet, T0_MS + 50, &arp, &mut |_| ended += 1);
    let n = write_frame(SynthLink::Ethernet, &frames[0].1, &mut buf).unwrap_or(0);
    let cut = meter.observe(
        LinkType::Ethernet,
        T0_MS + 51,
        &buf[..n.min(24)],
        &mut |_| ended += 1,
    );
    hprintln!("refused: arp={:?} cut={:?}", arp_result.err(), cut.err());

    hprintln!(
        "flow table: {} of {} flows open",
        meter.len(),
        meter.capacity()
    );
    meter.for_each_open(print_flow);
    let s = meter.stats();
    hprintln!(
        "stats: frames={} packets={} bytes={} not_ip={} truncated={} flows={} ended={}",
        s.frames,
        s.packets,
        s.bytes,
        s.not_ip,
        s.truncated,
        s.flows_created,
        ended
    );
    hprintln!(
        "meter: {} bytes of RAM for {} flows",
        core::mem::size_of::<Meter<16>>(),
        meter.capacity()
    );

    // ARP: a request and its answer, then "10.0.0.2 is-at <spoofer>", which nobody asked for.
    let (client, server, spoofer) = (
        ([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1)),
        ([2, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2)),
        ([2, 0, 0, 0, 0, 0x66], Ipv4Addr::new(10, 0, 0, 102)),
    );
    let arp_frames = [
        ethernet_arp(
            client.0,
            [0xff; 6],
            ArpOp::Request,
            client,
            ([0; 6], server.1),
        ),
        ethernet_arp(server.0, client.0, ArpOp::Reply, server, client),
        ethernet_arp(
            spoofer.0,
            client.0,
            ArpOp::Reply,
            (spoofer.0, server.1),
            client,
        ),
    ];
    let mut arp: ArpMeter<16> = ArpMeter::new(ArpConfig::DEFAULT);
    let mut flipped_from = None;
    for (i, frame) in arp_frames.iter().enumerate() {
        let ts = T0_MS + 60 + i as u64 * 3_000; // the spoof comes 6 s after the request
        if meter
            .observe(LinkType::Ethernet, ts, frame, &mut |_| ended += 1)
            .is_err()
        {
            if let Ok(e) = arp.observe(LinkType::Ethernet, ts, frame) {
                if let BindingChange::Changed { old } = e.binding {
                    flipped_from = Some((
                        e.frame.sender_ip,
                        old.mac[5],
                        e.frame.sender_mac[5],
                        e.unsolicited,
                    ));
                }
            }
        }
    }
    let a = arp.stats();
    hprintln!(
        "arp: packets={} requests={} replies={} unsolicited={} bindings={} changed={} flip={:?}",
        a.packets,
        a.requests,
        a.replies,
        a.unsolicited_replies,
        arp.len(),
        a.bindings_changed,
        flipped_from
    );
    hprintln!(
        "arp meter: {} bytes of RAM for {} bindings",
        core::mem::size_of::<ArpMeter<16>>(),
        arp.capacity()
    );
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
