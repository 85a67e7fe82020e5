//! Capture files of export datagrams (classic pcap; link types Ethernet, Linux SLL/SLL2, raw IP,
//! BSD loopback), read with pcap-file and unwrapped with the firmware's smoltcp views.
//!
//! Frames that are not UDP (ARP, ICMP errors, other traffic in the capture) are skipped and
//! counted; a damaged file ends the read with an error that names the file and the record.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use netwarden_firmware::wire::{udp_datagram, LinkType};
use pcap_file::pcap::PcapReader;

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("cannot open {path}: {error}")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a pcap file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: link type {linktype} is not supported (Ethernet, Linux SLL/SLL2, raw IP, loopback are)")]
    LinkType { path: PathBuf, linktype: u32 },
    #[error("{path}: record {record} is damaged: {message}")]
    Record {
        path: PathBuf,
        record: u64,
        message: String,
    },
}

/// One export datagram from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDatagram {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ts_ms: u64,
    pub payload: Vec<u8>,
}

/// What a capture held besides the datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportPcapStats {
    pub frames: u64,
    pub skipped_not_udp: u64,
    /// Records cut short by the capture's snap length (`tcpdump -s N`): a part of an export
    /// datagram cannot be decoded, so the record is skipped.
    pub skipped_truncated: u64,
}

/// Reads every UDP datagram of a capture (optionally only those to `dst_port`).
pub fn read_datagrams(
    path: &Path,
    dst_port: Option<u16>,
) -> Result<(Vec<ExportDatagram>, ExportPcapStats), PcapError> {
    let file = std::fs::File::open(path).map_err(|error| PcapError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    read_datagrams_from(std::io::BufReader::new(file), path, dst_port)
}

/// Reads a pcap file's header and the frames' link type, which netwarden must understand
/// (`path` only names the file in errors). Shared by every pcap reader of the gateway.
pub fn open_pcap<R: std::io::Read>(
    reader: R,
    path: &Path,
) -> Result<(PcapReader<R>, LinkType), PcapError> {
    let reader = PcapReader::new(reader).map_err(|e| PcapError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let linktype = u32::from(reader.header().datalink);
    let link = LinkType::from_pcap(linktype).ok_or(PcapError::LinkType {
        path: path.to_path_buf(),
        linktype,
    })?;
    Ok((reader, link))
}

/// A pcap record's time stamp in epoch ms (`frac` is in ns for nanosecond captures, else µs).
pub fn packet_ts_ms(sec: u32, frac: u32, nanos: bool) -> u64 {
    let frac_ms = if nanos {
        frac / 1_000_000
    } else {
        frac / 1_000
    };
    u64::from(sec) * 1000 + u64::from(frac_ms)
}

/// As [`read_datagrams`], from any reader (`path` only names it in errors).
pub fn read_datagrams_from<R: std::io::Read>(
    reader: R,
    path: &Path,
    dst_port: Option<u16>,
) -> Result<(Vec<ExportDatagram>, ExportPcapStats), PcapError> {
    let (mut reader, link) = open_pcap(reader, path)?;
    // Raw records, checked here: pcap-file's checked packets end the read at the first record
    // cut by the snap length, where one skipped (and counted) datagram is the right answer.
    let nanos = reader.header().ts_resolution == pcap_file::TsResolution::NanoSecond;
    let mut out = Vec::new();
    let mut stats = ExportPcapStats::default();
    while let Some(packet) = reader.next_raw_packet() {
        stats.frames += 1;
        let packet = packet.map_err(|e| PcapError::Record {
            path: path.to_path_buf(),
            record: stats.frames,
            message: e.to_string(),
        })?;
        if packet.incl_len < packet.orig_len {
            stats.skipped_truncated += 1;
            continue;
        }
        match udp_datagram(link, &packet.data) {
            Ok(d) if dst_port.is_none_or(|p| d.dst.port() == p) => out.push(ExportDatagram {
                src: d.src,
                dst: d.dst,
                ts_ms: packet_ts_ms(packet.ts_sec, packet.ts_frac, nanos),
                payload: d.payload.to_vec(),
            }),
            _ => stats.skipped_not_udp += 1,
        }
    }
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_clear_error() {
        let err = read_datagrams_from(&b"not a pcap at all, really"[..], Path::new("x.pcap"), None)
            .expect_err("garbage");
        assert!(
            err.to_string().contains("x.pcap is not a pcap file"),
            "{err}"
        );
    }

    /// A classic little-endian microsecond pcap of raw-IP frames, `(ts_us, orig_len, frame)`
    /// per record; a frame shorter than its `orig_len` is a snap-length cut.
    fn pcap(records: &[(u64, u32, Vec<u8>)]) -> Vec<u8> {
        // Global header: magic, version 2.4, thiszone, sigfigs, snaplen 96, LINKTYPE_RAW.
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        for v in [0u32, 0, 96, 101] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for (ts_us, orig_len, frame) in records {
            let incl = u32::try_from(frame.len()).expect("small");
            for v in [
                u32::try_from(ts_us / 1_000_000).expect("fits"),
                u32::try_from(ts_us % 1_000_000).expect("fits"),
                incl,
                *orig_len,
            ] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(frame);
        }
        f
    }

    /// An IPv4/UDP packet from 10.0.0.1:4000 to 10.0.0.2:2055 (checksums zero).
    fn udp(payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(28 + payload.len()).expect("small");
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&4000u16.to_be_bytes());
        p.extend_from_slice(&2055u16.to_be_bytes());
        p.extend_from_slice(&(total - 20).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn snap_length_cuts_are_skipped_and_counted_not_fatal() {
        let whole = udp(&[7u8; 64]);
        let mut cut = udp(&[9u8; 400]);
        let orig = u32::try_from(cut.len()).expect("small");
        cut.truncate(96);
        let file = pcap(&[
            (1_000_000, orig, cut),
            (2_500_000, u32::try_from(whole.len()).expect("small"), whole),
        ]);
        let (datagrams, stats) =
            read_datagrams_from(&file[..], Path::new("cut.pcap"), None).expect("read");
        assert_eq!(
            stats,
            ExportPcapStats {
                frames: 2,
                skipped_not_udp: 0,
                skipped_truncated: 1
            }
        );
        assert_eq!(datagrams.len(), 1);
        assert_eq!(datagrams[0].payload, vec![7u8; 64]);
        assert_eq!(datagrams[0].ts_ms, 2_500);
        assert_eq!(datagrams[0].dst.port(), 2055);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_datagrams(Path::new("/nonexistent/x.pcap"), None).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
    }
}
