//! Capture files of raw traffic (classic pcap; Ethernet with VLAN tags, Linux SLL/SLL2, raw IP,
//! BSD loopback) metered with the file's own timestamps, so a replay meters exactly what a live
//! capture of the same traffic did. Not to be confused with captures of NetFlow export
//! datagrams (`--netflow-pcap`, [`crate::sources::netflow::export_pcap`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use netwarden_firmware::meter::arp::ArpConfig;
use netwarden_firmware::meter::{BiFlow, MeterStats};
use netwarden_firmware::wire::{FrameError, LinkType};

use super::arp::{ArpTap, GatewayArpMeter};
use super::{
    meter_stack_bytes, CaptureTimeouts, GatewayMeter, RecordBatch, RecordQueue, StatsPublisher,
};
use crate::metrics::Metrics;
use crate::records::FlowInput;
use crate::records::FlowOrigin;
use crate::sources::netflow::export_pcap::{open_pcap, packet_ts_ms, PcapError};

/// Frames between two progress callbacks.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Meters every frame of the capture at `path`, then flushes the meter. Frames the meter
/// refuses (not IP, truncated) are counted in its stats; a damaged file ends the replay with an
/// error naming the record, after the flows metered so far were flushed.
pub fn replay(
    path: &Path,
    meter: &mut GatewayMeter,
    emit: &mut impl FnMut(&BiFlow),
    progress: &mut impl FnMut(&MeterStats),
) -> Result<MeterStats, PcapError> {
    replay_with_other(path, meter, emit, &mut |_, _, _| {}, progress)
}

/// As [`replay`], and hands every frame the meter refused as not IP (ARP, LLDP, ...) with its
/// time to `other`.
pub fn replay_with_other(
    path: &Path,
    meter: &mut GatewayMeter,
    emit: &mut impl FnMut(&BiFlow),
    other: &mut impl FnMut(LinkType, u64, &[u8]),
    progress: &mut impl FnMut(&MeterStats),
) -> Result<MeterStats, PcapError> {
    let file = std::fs::File::open(path).map_err(|error| PcapError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    replay_from(
        std::io::BufReader::with_capacity(1 << 20, file),
        path,
        meter,
        emit,
        other,
        progress,
    )
}

/// As [`replay_with_other`], from any reader (`path` only names it in errors).
pub fn replay_from<R: Read>(
    reader: R,
    path: &Path,
    meter: &mut GatewayMeter,
    emit: &mut impl FnMut(&BiFlow),
    other: &mut impl FnMut(LinkType, u64, &[u8]),
    progress: &mut impl FnMut(&MeterStats),
) -> Result<MeterStats, PcapError> {
    let (mut reader, link) = open_pcap(reader, path)?;
    // Raw records: pcap-file's checked packets refuse every record of a snap-length capture
    // (`orig_len > snap_len`), which is exactly what `tcpdump -s 128` writes.
    let nanos = reader.header().ts_resolution == pcap_file::TsResolution::NanoSecond;
    let mut record = 0u64;
    let mut result = Ok(());
    while let Some(packet) = reader.next_raw_packet() {
        record += 1;
        let packet = match packet {
            Ok(p) => p,
            Err(e) => {
                result = Err(PcapError::Record {
                    path: path.to_path_buf(),
                    record,
                    message: e.to_string(),
                });
                break;
            }
        };
        let ts_ms = packet_ts_ms(packet.ts_sec, packet.ts_frac, nanos);
        // Refusals are counted by the meter.
        if let Err(FrameError::NotIp) = meter.observe(link, ts_ms, &packet.data, emit) {
            other(link, ts_ms, &packet.data);
        }
        if record.is_multiple_of(PROGRESS_EVERY) {
            progress(&meter.stats());
        }
    }
    meter.flush(emit);
    progress(&meter.stats());
    result.map(|()| meter.stats())
}

/// `netwarden run --pcap FILE`: replays the file on its own thread into the pipeline queue.
/// The thread ends after the file (the daemon keeps running its other sources).
pub fn spawn(
    path: PathBuf,
    timeouts: CaptureTimeouts,
    arp_config: ArpConfig,
    queue: SyncSender<FlowInput>,
    metrics: Arc<Metrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let origin = FlowOrigin::Meter(format!("pcap:{name}").into());
    std::thread::Builder::new()
        .name("pcap-replay".into())
        .stack_size(meter_stack_bytes())
        .spawn(move || {
            let mut meter = GatewayMeter::new(timeouts.meter_config());
            let mut batch = RecordBatch::with_capacity(2 * super::RECORDS_PER_BATCH);
            let mut publisher = StatsPublisher::default();
            let mut arp = GatewayArpMeter::new(arp_config);
            let mut tap = ArpTap::default();
            // Both callbacks queue: the flows' and the ARP events' batches share the queue.
            let out = std::cell::RefCell::new(RecordQueue::new(queue, origin, metrics.clone()));
            let result = replay_with_other(
                &path,
                &mut meter,
                &mut |f| {
                    batch.push(f);
                    if batch.is_full() {
                        out.borrow_mut().send(&mut batch);
                    }
                },
                &mut |link, ts, frame| {
                    tap.observe(&mut arp, link, ts, frame);
                    if tap.is_full() {
                        out.borrow_mut().send_arp(&mut tap);
                    }
                },
                &mut |s| publisher.publish(*s, &metrics),
            );
            let mut out = out.into_inner();
            out.send(&mut batch);
            out.send_arp(&mut tap);
            tap.publish(arp.stats(), &metrics);
            let s = meter.stats();
            match result {
                Ok(_) => tracing::info!(file = %path.display(), frames = s.frames,
                    flows = s.emitted(), not_ip = s.not_ip, truncated = s.truncated,
                    arp = arp.stats().packets, "Pcap replay finished"),
                Err(e) => tracing::error!(error = %e, frames = s.frames, flows = s.emitted(),
                    "Pcap replay stopped; flows metered before the damage were kept"),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(meter_stack_bytes())
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("join")
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = on_big_stack(|| {
            let mut meter = GatewayMeter::new(CaptureTimeouts::default().meter_config());
            replay_from(
                &b"definitely not a capture file"[..],
                Path::new("x.pcap"),
                &mut meter,
                &mut |_| {},
                &mut |_, _, _| {},
                &mut |_| {},
            )
            .expect_err("garbage")
            .to_string()
        });
        assert!(err.contains("x.pcap is not a pcap file"), "{err}");
    }

    #[test]
    fn fixture_traffic_is_metered_and_every_packet_lands_in_one_record() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/pcap/scan-mixed.pcap");
        let (stats, packets, records) = on_big_stack(move || {
            let mut meter = GatewayMeter::new(CaptureTimeouts::default().meter_config());
            let mut batch = RecordBatch::default();
            let stats = replay(&path, &mut meter, &mut |f| batch.push(f), &mut |_| {})
                .expect("fixture replays");
            let packets: u64 = batch.records.iter().map(|r| r.packets).sum();
            (stats, packets, batch.records.len())
        });
        assert!(stats.frames > 1000, "{stats:?}");
        assert_eq!(stats.packets + stats.refused(), stats.frames, "{stats:?}");
        assert_eq!(
            packets, stats.packets,
            "every metered packet in exactly one record"
        );
        assert_eq!(stats.emitted(), stats.flows_created, "{stats:?}");
        // The nmap scan alone is about a thousand flows.
        assert!(records > 1000, "{records} records");
    }
}
