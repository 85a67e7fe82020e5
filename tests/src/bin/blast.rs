//! `nw-blast`: replays the export datagrams of a capture at a fixed rate, for a bounded time,
//! to a loopback collector. Used by tests/bench/netflow_throughput.sh.
//!
//! Usage: nw-blast --pcap FILE --to 127.0.0.1:PORT --rate DATAGRAMS_PER_S --seconds S
//! Prints one JSON line: {"sent":N,"seconds":S,"rate":R,"records_per_datagram":X}.
//! The capture is looped; its first datagrams (templates for v9/IPFIX) go out first.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

fn main() -> anyhow::Result<()> {
    let mut pcap = None;
    let mut to: Option<SocketAddr> = None;
    let mut rate = 10_000u64;
    let mut seconds = 5.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--pcap" => pcap = Some(val()?),
            "--to" => to = Some(val()?.parse()?),
            "--rate" => rate = val()?.parse()?,
            "--seconds" => seconds = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let pcap = pcap.context("--pcap is required")?;
    let to = to.context("--to is required")?;
    if !to.ip().is_loopback() {
        bail!("nw-blast only sends to loopback addresses, not {to}");
    }
    if !(0.0..=600.0).contains(&seconds) || rate == 0 || rate > 10_000_000 {
        bail!("--seconds must be within 0..600 and --rate within 1..10M");
    }
    let payloads = netwarden_e2e::capture_payloads(std::path::Path::new(&pcap))?;
    if payloads.is_empty() {
        bail!("{pcap} holds no UDP datagrams");
    }
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
    let total = (rate as f64 * seconds) as u64;
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
        if start.elapsed().as_secs_f64() > seconds + 5.0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\":{sent},\"seconds\":{elapsed:.3},\"rate\":{:.0},\"datagrams_in_capture\":{}}}",
        sent as f64 / elapsed,
        payloads.len()
    );
    Ok(())
}
