//! `nw-blast`: replays the export datagrams of a capture at a fixed rate, for a bounded time,
//! to a loopback collector. Used by tests/bench/netflow_throughput.sh.
//!
//! Usage: nw-blast (--pcap FILE | --v5-flows N) --to 127.0.0.1:PORT --rate DATAGRAMS_PER_S --seconds S
//! Prints one JSON line: {"sent":N,"loops":L,"seconds":S,"rate":R,"datagrams_per_loop":D}.
//! The capture is sent in whole loops (so a collector should decode exactly L times the
//! capture's records); its first datagrams (templates for v9/IPFIX) go out first.
//! `--v5-flows N` sends N distinct synthetic v5 flows (30 per datagram, 25 flows per source
//! host) instead, to load a collector with many distinct flows and hosts.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

fn main() -> anyhow::Result<()> {
    let mut pcap = None;
    let mut v5_flows: Option<u32> = None;
    let mut to: Option<SocketAddr> = None;
    let mut rate = 10_000u64;
    let mut seconds = 5.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--pcap" => pcap = Some(val()?),
            "--v5-flows" => v5_flows = Some(val()?.parse()?),
            "--to" => to = Some(val()?.parse()?),
            "--rate" => rate = val()?.parse()?,
            "--seconds" => seconds = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let to = to.context("--to is required")?;
    if !to.ip().is_loopback() {
        bail!("nw-blast only sends to loopback addresses, not {to}");
    }
    if !(0.0..=600.0).contains(&seconds) || rate == 0 || rate > 10_000_000 {
        bail!("--seconds must be within 0..600 and --rate within 1..10M");
    }
    let payloads = match (pcap, v5_flows) {
        (Some(p), None) => netwarden_e2e::capture_payloads(std::path::Path::new(&p))?,
        (None, Some(n)) => synthetic_v5(n),
        _ => bail!("give one of --pcap or --v5-flows"),
    };
    if payloads.is_empty() {
        bail!("nothing to send");
    }
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
    let per_loop = payloads.len() as u64;
    let loops = ((rate as f64 * seconds) as u64).div_ceil(per_loop).max(1);
    let total = loops * per_loop;
    let start = Instant::now();
    let mut sent = 0u64;
    // Pace in slices of 1 ms: send what is due, then sleep.
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let p = &payloads[(sent as usize) % payloads.len()];
            if sock.send_to(p, to).is_ok() {
                sent += 1;
            } else {
                break;
            }
        }
        if start.elapsed().as_secs_f64() > seconds * 2.0 + 5.0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\":{sent},\"loops\":{},\"seconds\":{elapsed:.3},\"rate\":{:.0},\"datagrams_per_loop\":{per_loop}}}",
        sent / per_loop,
        sent as f64 / elapsed,
    );
    Ok(())
}

/// `n` distinct v5 flows, 30 per datagram; source host = flow / 25, so n/25 hosts.
fn synthetic_v5(n: u32) -> Vec<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let up: u32 = 100_000_000;
    let mut out = Vec::new();
    let mut i = 0u32;
    while i < n {
        let count = (n - i).min(30) as u16;
        let mut d = Vec::with_capacity(24 + 48 * 30);
        d.extend_from_slice(&5u16.to_be_bytes());
        d.extend_from_slice(&count.to_be_bytes());
        d.extend_from_slice(&up.to_be_bytes());
        d.extend_from_slice(&now.to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&i.to_be_bytes());
        d.extend_from_slice(&[0; 4]);
        for _ in 0..count {
            let host = i / 25;
            d.extend_from_slice(&[10, (host >> 16) as u8, (host >> 8) as u8, host as u8]);
            d.extend_from_slice(&[192, 168, (i >> 8) as u8, i as u8]);
            d.extend_from_slice(&[0; 8]);
            d.extend_from_slice(&(1 + i % 20).to_be_bytes());
            d.extend_from_slice(&(64 + 100 * (i % 20)).to_be_bytes());
            d.extend_from_slice(&(up - 5_000).to_be_bytes());
            d.extend_from_slice(&(up - 100).to_be_bytes());
            d.extend_from_slice(&(1024 + (i % 50_000) as u16).to_be_bytes());
            d.extend_from_slice(&[0, 80 + (i % 3) as u8]);
            d.extend_from_slice(&[0, 0x1b, 6, 0]);
            d.extend_from_slice(&[0; 8]);
            i += 1;
        }
        out.push(d);
    }
    out
}
