//! `nw-alert-sender`: background export traffic at a fixed rate with attack records embedded at
//! known send times, for tests/bench/alert_latency.sh.
//!
//! Usage: nw-alert-sender --pcap FILE --to 127.0.0.1:PORT --rate DATAGRAMS_PER_S --seconds S
//!        --attacks N --out FILE
//!
//! The capture's datagrams are replayed in a loop at `--rate` (like nw-blast). `N` times, evenly
//! spread over the run, one more datagram goes out from the same socket: a NetFlow v9 datagram
//! of its own stream (source id 0x4e57_0001; the template travels in the same datagram, so no
//! earlier state is needed) with one flow record that the flow detector alerts on: a lone TCP
//! SYN without answer from a host never seen before (10.250.x.y, one per attack, so each opens
//! its own incident), timed "now" by the exporter's clock. Just before each is sent, its wall
//! clock time (Unix µs) goes to `--out` as a JSON line `{"attack":K,"src":"10.250.0.K",
//! "sent_unix_us":T}`. Prints one JSON summary line at the end. Loopback only, bounded by
//! `--seconds` (at most 120) and `--attacks` (at most 10,000).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

const SOURCE_ID: u32 = 0x4e57_0001;
const TEMPLATE_ID: u16 = 256;
/// (element id, length): src/dst IPv4, ports, protocol, TCP flags, packets, bytes, first, last.
const FIELDS: [(u16, u16); 10] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (2, 4),
    (1, 4),
    (22, 4),
    (21, 4),
];

fn main() -> anyhow::Result<()> {
    let mut pcap = None;
    let mut to: Option<SocketAddr> = None;
    let mut rate = 1_000u64;
    let mut seconds = 10.0f64;
    let mut attacks = 10u32;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--pcap" => pcap = Some(val()?),
            "--to" => to = Some(val()?.parse()?),
            "--rate" => rate = val()?.parse()?,
            "--seconds" => seconds = val()?.parse()?,
            "--attacks" => attacks = val()?.parse()?,
            "--out" => out = Some(val()?),
            other => bail!("unknown argument {other}"),
        }
    }
    let to = to.context("--to is required")?;
    if !to.ip().is_loopback() {
        bail!("nw-alert-sender only sends to loopback addresses, not {to}");
    }
    if !(0.5..=120.0).contains(&seconds) || rate == 0 || rate > 1_000_000 {
        bail!("--seconds must be within 0.5..120 and --rate within 1..1M");
    }
    if attacks == 0 || attacks > 10_000 {
        bail!("--attacks must be within 1..10000");
    }
    let payloads = netwarden_e2e::capture_payloads(std::path::Path::new(
        &pcap.context("--pcap is required")?,
    ))?;
    if payloads.is_empty() {
        bail!("nothing to send");
    }
    let mut log =
        std::io::BufWriter::new(std::fs::File::create(out.context("--out is required")?)?);
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
    let total = (rate as f64 * seconds) as u64;
    let attack_at: Vec<f64> = (0..attacks)
        .map(|k| (f64::from(k) + 0.5) * seconds / f64::from(attacks))
        .collect();
    let start = Instant::now();
    let (mut sent, mut next_attack, mut seq) = (0u64, 0usize, 0u32);
    while sent < total || next_attack < attack_at.len() {
        let t = start.elapsed().as_secs_f64();
        let due = ((t * rate as f64) as u64).min(total);
        while sent < due {
            let p = &payloads[(sent as usize) % payloads.len()];
            if sock.send_to(p, to).is_err() {
                break;
            }
            sent += 1;
        }
        while next_attack < attack_at.len() && attack_at[next_attack] <= t {
            let k = next_attack as u32;
            let src = Ipv4Addr::new(10, 250, (k >> 8) as u8, k as u8);
            let uptime = start.elapsed().as_millis() as u32 + 100_000;
            let d = attack_datagram(src, k, uptime, seq);
            seq = seq.wrapping_add(1);
            let sent_unix_us = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            sock.send_to(&d, to)?;
            writeln!(
                log,
                "{{\"attack\":{k},\"src\":\"{src}\",\"sent_unix_us\":{sent_unix_us}}}"
            )?;
            next_attack += 1;
        }
        if t > seconds * 2.0 + 5.0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    log.flush()?;
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\":{sent},\"attacks\":{next_attack},\"seconds\":{elapsed:.3},\"rate\":{:.0}}}",
        sent as f64 / elapsed
    );
    Ok(())
}

/// A v9 datagram: the template set, then one data record from `src`.
fn attack_datagram(src: Ipv4Addr, k: u32, uptime: u32, seq: u32) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let mut d = Vec::with_capacity(128);
    d.extend_from_slice(&9u16.to_be_bytes());
    d.extend_from_slice(&2u16.to_be_bytes()); // template + data record
    d.extend_from_slice(&uptime.to_be_bytes());
    d.extend_from_slice(&now.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&SOURCE_ID.to_be_bytes());
    // Template flowset.
    let tlen = 4 + 4 + 4 * FIELDS.len() as u16;
    d.extend_from_slice(&0u16.to_be_bytes());
    d.extend_from_slice(&tlen.to_be_bytes());
    d.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
    d.extend_from_slice(&(FIELDS.len() as u16).to_be_bytes());
    for (id, len) in FIELDS {
        d.extend_from_slice(&id.to_be_bytes());
        d.extend_from_slice(&len.to_be_bytes());
    }
    // Data flowset: one record, padded to 4 bytes.
    let rec_len: u16 = FIELDS.iter().map(|f| f.1).sum();
    let padded = (4 + rec_len).div_ceil(4) * 4;
    d.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
    d.extend_from_slice(&padded.to_be_bytes());
    d.extend_from_slice(&src.octets());
    d.extend_from_slice(&Ipv4Addr::new(10, 251, 0, 1).octets());
    d.extend_from_slice(&(40_000u16.wrapping_add(k as u16)).to_be_bytes());
    d.extend_from_slice(&445u16.to_be_bytes());
    d.push(6); // TCP
    d.push(0x02); // SYN only
    d.extend_from_slice(&1u32.to_be_bytes());
    d.extend_from_slice(&44u32.to_be_bytes());
    d.extend_from_slice(&(uptime - 5).to_be_bytes());
    d.extend_from_slice(&(uptime - 5).to_be_bytes());
    d.resize(d.len() + usize::from(padded - 4 - rec_len), 0);
    d
}
