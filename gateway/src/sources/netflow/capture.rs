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
pub enum CaptureError {
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
pub struct CapturedDatagram {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ts_ms: u64,
    pub payload: Vec<u8>,
}

/// What a capture held besides the datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub frames: u64,
    pub skipped_not_udp: u64,
}

/// Reads every UDP datagram of a capture (optionally only those to `dst_port`).
pub fn read_datagrams(
    path: &Path,
    dst_port: Option<u16>,
) -> Result<(Vec<CapturedDatagram>, CaptureStats), CaptureError> {
    let file = std::fs::File::open(path).map_err(|error| CaptureError::Open {
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
) -> Result<(PcapReader<R>, LinkType), CaptureError> {
    let reader = PcapReader::new(reader).map_err(|e| CaptureError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let linktype = u32::from(reader.header().datalink);
    let link = LinkType::from_pcap(linktype).ok_or(CaptureError::LinkType {
        path: path.to_path_buf(),
        linktype,
    })?;
    Ok((reader, link))
}

/// As [`read_datagrams`], from any reader (`path` only names it in errors).
pub fn read_datagrams_from<R: std::io::Read>(
    reader: R,
    path: &Path,
    dst_port: Option<u16>,
) -> Result<(Vec<CapturedDatagram>, CaptureStats), CaptureError> {
    let (mut reader, link) = open_pcap(reader, path)?;
    let mut out = Vec::new();
    let mut stats = CaptureStats::default();
    while let Some(packet) = reader.next_packet() {
        stats.frames += 1;
        let packet = packet.map_err(|e| CaptureError::Record {
            path: path.to_path_buf(),
            record: stats.frames,
            message: e.to_string(),
        })?;
        match udp_datagram(link, &packet.data) {
            Ok(d) if dst_port.is_none_or(|p| d.dst.port() == p) => out.push(CapturedDatagram {
                src: d.src,
                dst: d.dst,
                ts_ms: packet.timestamp.as_millis() as u64,
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

    #[test]
    fn missing_file_names_the_path() {
        let err = read_datagrams(Path::new("/nonexistent/x.pcap"), None).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
    }
}
