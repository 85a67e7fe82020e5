//! `nw-gen-pcap`: writes a synthetic, deterministic capture for the packet meter's benchmarks
//! and tests (the firmware's `synth::Traffic`: TCP with handshakes and FINs, UDP, ICMP echo,
//! IPv6, 802.1Q VLANs).
//!
//! Usage: nw-gen-pcap --out FILE [--frames N] [--flows M] [--seed S] [--gap-us US] [--start-s T]
//! Defaults: 1,000,000 frames, 10,000 flows, seed 1, one frame every 10 us (100k frames/s of
//! capture time), starting at 1,700,000,000 s. Bounded: at most 50 M frames.
//! Prints one JSON line: {"out":FILE,"frames":N,"flows":M,"bytes":B,"seconds":S} where
//! `seconds` is the capture's span.

use std::fs::File;
use std::io::BufWriter;
use std::time::Duration;

use anyhow::{bail, Context};
use netwarden_firmware::synth::{write_frame, SynthLink, Traffic};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

fn main() -> anyhow::Result<()> {
    let mut out = None;
    let mut t = Traffic {
        frames: 1_000_000,
        flows: 10_000,
        seed: 1,
        start_us: 1_700_000_000_000_000,
        gap_us: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--out" => out = Some(val()?),
            "--frames" => t.frames = val()?.parse()?,
            "--flows" => t.flows = val()?.parse()?,
            "--seed" => t.seed = val()?.parse()?,
            "--gap-us" => t.gap_us = val()?.parse()?,
            "--start-s" => t.start_us = val()?.parse::<u64>()? * 1_000_000,
            other => bail!("unknown argument {other}"),
        }
    }
    let out = out.context("--out FILE is required")?;
    if t.frames == 0 || t.frames > 50_000_000 || t.flows == 0 {
        bail!("--frames must be within 1..50M and --flows at least 1");
    }
    let file = File::create(&out).with_context(|| format!("creating {out}"))?;
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(BufWriter::new(file), header)?;
    let mut buf = [0u8; 2048];
    let mut bytes = 0u64;
    for k in 0..t.frames {
        let (ts_us, p) = t.packet(k);
        let n = write_frame(SynthLink::Ethernet, &p, &mut buf).context("frame too large")?;
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(ts_us),
            n as u32,
            &buf[..n],
        ))?;
        bytes += n as u64;
    }
    drop(w.into_writer().into_inner()?);
    println!(
        "{{\"out\":\"{out}\",\"frames\":{},\"flows\":{},\"bytes\":{bytes},\"seconds\":{}}}",
        t.frames,
        t.flows,
        (t.frames.saturating_sub(1) * t.gap_us) as f64 / 1e6
    );
    Ok(())
}
