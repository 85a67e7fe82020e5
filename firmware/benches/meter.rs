//! Packet meter throughput on one core, and proof that metering allocates nothing.
//!
//! Reads a pcap (`NW_METER_PCAP`, or writes one first: `NW_METER_FRAMES` frames, default
//! 1,000,000, over `NW_METER_FLOWS` flows, default 10,000, with the same generator as
//! `nw-gen-pcap`) into memory, then meters every frame with `Meter<16384>`
//! (`observe` + its periodic sweeps + the final `flush`), `NW_METER_RUNS` times (default 5).
//! Prints frames/s per run, the best and the median, and the allocations counted while metering
//! (a counting global allocator; the bench fails unless it is 0). Pin it to one core:
//!
//! ```sh
//! taskset -c 0 cargo bench -p netwarden-firmware --bench meter
//! ```
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netwarden_firmware::meter::{Meter, MeterConfig};
use netwarden_firmware::synth::{write_frame, SynthLink, Traffic};
use netwarden_firmware::wire::LinkType;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FLOWS: usize = 16_384;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// All frames of a capture in one buffer: (capture time ms, offset, length) per frame.
struct Capture {
    link: LinkType,
    bytes: Vec<u8>,
    frames: Vec<(u64, usize, usize)>,
}

fn write_pcap(path: &std::path::Path, t: &Traffic) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("create pcap"));
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    let mut buf = [0u8; 2048];
    for k in 0..t.frames {
        let (ts_us, p) = t.packet(k);
        let n = write_frame(SynthLink::Ethernet, &p, &mut buf).expect("fits");
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(ts_us),
            n as u32,
            &buf[..n],
        ))
        .expect("write pcap");
    }
}

/// Frames cut to their first `snaplen` bytes, as a capture with that snap length holds them
/// (the meter counts bytes from the IP header, so the flows are identical).
fn snapped(c: &Capture, snaplen: usize) -> Capture {
    let mut out = Capture {
        link: c.link,
        bytes: Vec::with_capacity(c.frames.len() * snaplen),
        frames: Vec::with_capacity(c.frames.len()),
    };
    for &(ts, off, len) in &c.frames {
        let len = len.min(snaplen);
        out.frames.push((ts, out.bytes.len(), len));
        out.bytes.extend_from_slice(&c.bytes[off..off + len]);
    }
    out
}

fn read_pcap(path: &std::path::Path) -> Capture {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open pcap"));
    let mut r = PcapReader::new(file).expect("pcap header");
    let link = LinkType::from_pcap(u32::from(r.header().datalink)).expect("supported link type");
    let mut c = Capture {
        link,
        bytes: Vec::new(),
        frames: Vec::new(),
    };
    while let Some(p) = r.next_packet() {
        let p = p.expect("pcap packet");
        c.frames
            .push((p.timestamp.as_millis() as u64, c.bytes.len(), p.data.len()));
        c.bytes.extend_from_slice(&p.data);
    }
    c
}

#[derive(Debug, Default, Clone, Copy)]
struct Run {
    seconds: f64,
    emitted: u64,
    packets: u64,
    evicted: u64,
    refused: u64,
}

fn meter_once(meter: &mut Meter<FLOWS>, c: &Capture) -> Run {
    let mut emitted = 0u64;
    let mut packets = 0u64;
    let mut emit = |f: &netwarden_firmware::BiFlow| {
        emitted += 1;
        packets += f.bidirectional_packets();
    };
    let before = meter.stats();
    let start = Instant::now();
    for &(ts, off, len) in &c.frames {
        let _ = meter.observe(c.link, ts, &c.bytes[off..off + len], &mut emit);
    }
    meter.flush(&mut emit);
    let seconds = start.elapsed().as_secs_f64();
    let after = meter.stats();
    Run {
        seconds,
        emitted,
        packets,
        evicted: after.evicted - before.evicted,
        refused: after.refused() - before.refused(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runs = env_u64("NW_METER_RUNS", 5).max(1);
    let path = match std::env::var("NW_METER_PCAP") {
        Ok(p) => std::path::PathBuf::from(p),
        Err(_) => {
            let t = Traffic {
                frames: env_u64("NW_METER_FRAMES", 1_000_000),
                flows: env_u64("NW_METER_FLOWS", 10_000) as u32,
                seed: 1,
                start_us: 1_700_000_000_000_000,
                gap_us: 10,
            };
            let p =
                std::env::temp_dir().join(format!("nw-meter-bench-{}-{}.pcap", t.frames, t.flows));
            if !p.exists() {
                write_pcap(&p, &t);
            }
            p
        }
    };
    let capture = read_pcap(&path);
    let frames = capture.frames.len() as u64;
    let bytes: u64 = capture.frames.iter().map(|f| f.2 as u64).sum();
    println!(
        "packet meter (firmware core alone): {} frames, {:.1} MB, from {}",
        frames,
        bytes as f64 / 1e6,
        path.display()
    );
    println!(
        "Meter<{FLOWS}>: {:.1} MB, default timeouts (idle 120 s, active 1800 s), sweep every 1 s",
        std::mem::size_of::<Meter<FLOWS>>() as f64 / 1e6
    );

    // Whole frames as captured, and the same frames cut to a 128-byte snap length (what a flow
    // meter captures: softflowd's default snap length is smaller still). Whole frames spread the
    // headers over the whole capture, so each frame costs a cache miss the meter cannot avoid.
    let snap = snapped(&capture, 128);
    for (label, capture) in [("whole frames", capture), ("snaplen 128", snap)] {
        let results = measure(capture, runs);
        report(label, frames, &results);
    }
}

fn measure(capture: Capture, runs: u64) -> Vec<(Run, u64)> {
    // The meter lives on a thread with a stack large enough for it (see `Meter::new`).
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let mut meter: Meter<FLOWS> = Meter::new(MeterConfig::DEFAULT);
            // Warm-up pass (page faults on the table, caches); not counted.
            meter_once(&mut meter, &capture);
            let mut results = Vec::new();
            for _ in 0..runs {
                meter = Meter::new(MeterConfig::DEFAULT);
                ALLOCATIONS.store(0, Ordering::SeqCst);
                COUNTING.store(true, Ordering::SeqCst);
                let run = meter_once(&mut meter, &capture);
                COUNTING.store(false, Ordering::SeqCst);
                results.push((run, ALLOCATIONS.load(Ordering::SeqCst)));
            }
            results
        })
        .expect("spawn")
        .join()
        .expect("bench thread")
}

fn report(label: &str, frames: u64, results: &[(Run, u64)]) {
    println!("-- {label}");
    let runs = results.len();
    let mut rates = Vec::new();
    for (i, (run, allocs)) in results.iter().enumerate() {
        let rate = frames as f64 / run.seconds;
        rates.push(rate);
        println!(
            "run {}: {:.3} s, {:.2} M frames/s, {:.0} ns/frame, {} flows emitted ({} evicted), \
             {} packets in them, {} refused, allocations while metering: {}",
            i + 1,
            run.seconds,
            rate / 1e6,
            run.seconds * 1e9 / frames as f64,
            run.emitted,
            run.evicted,
            run.packets,
            run.refused,
            allocs
        );
        assert_eq!(run.packets + run.refused, frames, "every frame accounted");
        assert_eq!(*allocs, 0, "metering allocated");
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{label}: best {:.2} M frames/s, median {:.2} M frames/s, 0 allocations in {} x {} frames",
        rates[rates.len() - 1] / 1e6,
        rates[rates.len() / 2] / 1e6,
        runs,
        frames
    );
}
