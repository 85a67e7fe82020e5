//! Reads a lab directory's traffic into what the daemon's pipeline would have been handed, in
//! the order and at the (event) time it would have been handed it:
//!
//! - the NetFlow paths: every export datagram of `netflow-ipfix.pcap` / `netflow-v9.pcap`,
//!   decoded by [`NetflowDecoder`] (fresh template caches per file), arriving at the
//!   datagram's capture time;
//! - the capture path: every frame of `capture.pcap` through the gateway's packet meter
//!   ([`GatewayMeter`], the configured timeouts), each ended flow's records arriving at the
//!   time of the packet that ended it (so an idle flow arrives `idle_timeout` after its last
//!   packet, as it would live).
//!
//! Detectors then consume [`Arrival`]s; nothing here scores.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use netwarden_firmware::meter::arp::{ArpConfig, ArpEvent};
use netwarden_firmware::meter::{BiFlow, MeterStats};
use netwarden_firmware::wire::FrameError;
use netwarden_firmware::FlowRecord;

use crate::cli::progress::open_pcap_file;
use crate::records::{ExporterStats, FlowOrigin};
use crate::sources::netflow::export_pcap::{open_pcap, read_datagrams_from, PcapError};
use crate::sources::netflow::NetflowDecoder;
use crate::sources::packets::arp::{ArpTap, GatewayArpMeter};
use crate::sources::packets::{meter_stack_bytes, CaptureTimeouts, GatewayMeter};

/// One of the ways traffic reaches netwarden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum PathKind {
    /// softflowd's IPFIX export (`netflow-ipfix.pcap`).
    Ipfix,
    /// softflowd's NetFlow v9 export (`netflow-v9.pcap`).
    V9,
    /// Raw frames metered by netwarden's packet meter (`capture.pcap`).
    Capture,
}

impl PathKind {
    pub const ALL: [PathKind; 3] = [PathKind::Ipfix, PathKind::V9, PathKind::Capture];

    pub fn name(self) -> &'static str {
        match self {
            PathKind::Ipfix => "netflow-ipfix",
            PathKind::V9 => "netflow-v9",
            PathKind::Capture => "capture",
        }
    }

    pub fn file(self) -> &'static str {
        match self {
            PathKind::Ipfix => "netflow-ipfix.pcap",
            PathKind::V9 => "netflow-v9.pcap",
            PathKind::Capture => "capture.pcap",
        }
    }
}

/// Records that reached the pipeline together.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Event time at which the daemon would have received them (Unix ms).
    pub at_ms: u64,
    pub origin: FlowOrigin,
    pub records: Vec<FlowRecord>,
}

/// What reading one path's file gave, for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InputStats {
    /// pcap records in the file.
    pub frames: u64,
    /// Flow records handed to the detectors.
    pub records: u64,
    /// NetFlow: datagrams that failed to decode (any reason) and data sets whose template
    /// never came; capture: frames the meter refused as cut short or malformed.
    pub damaged: u64,
    /// One line for people.
    pub detail: String,
}

/// One path's input, ready to be replayed by every detector.
#[derive(Debug)]
pub struct PathInput {
    pub kind: PathKind,
    pub file: PathBuf,
    pub arrivals: Vec<Arrival>,
    pub stats: InputStats,
    /// The metered bidirectional flows (capture path, when asked for).
    pub biflows: Vec<BiFlow>,
    /// The notable ARP events of the capture path's ARP meter, in packet order (what the
    /// capture queues for the ARP rules; empty on the NetFlow paths, which carry no ARP).
    pub arp: Vec<ArpEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Capture(#[from] PcapError),
    #[error("cannot start the meter thread: {0}")]
    Thread(std::io::Error),
}

/// Reads `dir/<kind's file>`. `keep_biflows` keeps the metered flows (capture path only).
pub fn read_path(
    dir: &Path,
    kind: PathKind,
    timeouts: CaptureTimeouts,
    arp: ArpConfig,
    keep_biflows: bool,
) -> Result<PathInput, ReplayError> {
    let file = dir.join(kind.file());
    match kind {
        PathKind::Ipfix | PathKind::V9 => read_netflow(kind, file),
        PathKind::Capture => {
            // The meter's table lives inline; it needs a thread with a stack sized for it.
            std::thread::Builder::new()
                .name("eval-meter".into())
                .stack_size(meter_stack_bytes())
                .spawn(move || read_capture(file, timeouts, arp, keep_biflows))
                .map_err(ReplayError::Thread)?
                .join()
                .unwrap_or_else(|_| {
                    Err(ReplayError::Thread(std::io::Error::other(
                        "the meter thread panicked",
                    )))
                })
        }
    }
}

fn read_netflow(kind: PathKind, file: PathBuf) -> Result<PathInput, ReplayError> {
    let (reader, progress) = open_pcap_file(&file, kind.name())?;
    let (datagrams, capture) = read_datagrams_from(reader, &file, None)?;
    progress.finish();
    let mut decoder = NetflowDecoder::new(1024);
    let mut decoded = Vec::new();
    let mut arrivals = Vec::with_capacity(datagrams.len());
    for d in &datagrams {
        decoded.clear();
        decoder.decode(d.src, &d.payload, &mut decoded);
        if decoded.is_empty() {
            continue;
        }
        arrivals.push(Arrival {
            at_ms: d.ts_ms,
            origin: FlowOrigin::Exporter(d.src),
            records: decoded.iter().map(|(_, r)| *r).collect(),
        });
    }
    let t: ExporterStats = decoder.totals();
    let records = arrivals.iter().map(|a| a.records.len() as u64).sum();
    Ok(PathInput {
        kind,
        stats: InputStats {
            frames: capture.frames,
            records,
            damaged: t.decode_errors() + t.template_misses,
            detail: format!(
                "{} datagrams ({} frames skipped: {} not UDP, {} cut by the snap length), {} records, {} decode errors, {} template misses, {} missing by sequence",
                datagrams.len(),
                capture.skipped_not_udp + capture.skipped_truncated,
                capture.skipped_not_udp,
                capture.skipped_truncated,
                records,
                t.decode_errors(),
                t.template_misses,
                t.sequence_missing
            ),
        },
        file,
        arrivals,
        biflows: Vec::new(),
        arp: Vec::new(),
    })
}

/// Meters the capture as `sources::packets::pcap::replay` does, noting the packet time at which
/// each flow is emitted (that function does not expose it).
fn read_capture(
    file: PathBuf,
    timeouts: CaptureTimeouts,
    arp_config: ArpConfig,
    keep_biflows: bool,
) -> Result<PathInput, ReplayError> {
    let (reader, progress) = open_pcap_file(&file, PathKind::Capture.name())?;
    let (mut reader, link) = open_pcap(reader, &file)?;
    let nanos = reader.header().ts_resolution == pcap_file::TsResolution::NanoSecond;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let origin = FlowOrigin::Meter(Arc::from(format!("pcap:{name}")));
    let mut meter = GatewayMeter::new(timeouts.meter_config());
    let mut arp_meter = GatewayArpMeter::new(arp_config);
    let mut tap = ArpTap::default();
    let mut arp = Vec::new();
    let mut arrivals: Vec<Arrival> = Vec::new();
    let mut biflows = Vec::new();
    let mut now_ms = 0u64;
    let mut emit = |at_ms: u64, f: &BiFlow, arrivals: &mut Vec<Arrival>| {
        if keep_biflows {
            biflows.push(*f);
        }
        let (fwd, rev) = f.records();
        let arrival = match arrivals.last_mut() {
            Some(a) if a.at_ms == at_ms => a,
            _ => {
                arrivals.push(Arrival {
                    at_ms,
                    origin: origin.clone(),
                    records: Vec::new(),
                });
                arrivals.last_mut().expect("just pushed")
            }
        };
        arrival.records.push(fwd);
        arrival.records.extend(rev);
    };
    let mut record = 0u64;
    // A capture cut off mid-record (tcpdump killed) keeps what came before, as `run --pcap`
    // does; the report says where it stopped.
    let mut damage = None;
    while let Some(packet) = reader.next_raw_packet() {
        record += 1;
        let packet = match packet {
            Ok(p) => p,
            Err(e) => {
                damage = Some(format!(
                    "; record {record} is damaged ({e}), read stopped there"
                ));
                break;
            }
        };
        let ts_ms = crate::sources::netflow::export_pcap::packet_ts_ms(
            packet.ts_sec,
            packet.ts_frac,
            nanos,
        );
        now_ms = now_ms.max(ts_ms);
        // Refusals are counted by the meter; ARP goes to the ARP meter, as in the daemon.
        let r = meter.observe(link, ts_ms, &packet.data, &mut |f| {
            emit(now_ms, f, &mut arrivals)
        });
        if let Err(FrameError::NotIp) = r {
            tap.observe(&mut arp_meter, link, ts_ms, &packet.data);
            arp.append(&mut tap.take());
        }
    }
    meter.flush(&mut |f| emit(now_ms, f, &mut arrivals));
    progress.finish();
    let s: MeterStats = meter.stats();
    let a = arp_meter.stats();
    let records = arrivals.iter().map(|a| a.records.len() as u64).sum();
    Ok(PathInput {
        kind: PathKind::Capture,
        stats: InputStats {
            frames: s.frames,
            records,
            damaged: s.truncated + s.malformed + u64::from(damage.is_some()),
            detail: format!(
                "{} frames, {} metered ({} not IP, {} truncated, {} malformed), {} flows ({} idle, {} active timeout, {} evicted, {} at the end), {} records; ARP: {} packets ({} requests, {} replies, {} unsolicited, {} gratuitous), {} bindings new, {} changed, {} notable{}",
                s.frames,
                s.packets,
                s.not_ip,
                s.truncated,
                s.malformed,
                s.emitted(),
                s.expired_idle,
                s.expired_active,
                s.evicted,
                s.flushed,
                records,
                a.packets,
                a.requests,
                a.replies,
                a.unsolicited_replies,
                a.gratuitous,
                a.bindings_new,
                a.bindings_changed,
                arp.len(),
                damage.unwrap_or_default()
            ),
        },
        file,
        arrivals,
        biflows,
        arp,
    })
}
