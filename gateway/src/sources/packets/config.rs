//! `[capture]` (and `run --capture`, `run --pcap`): packet capture sources, none by default.

use std::path::PathBuf;

use serde::Deserialize;

use super::CaptureTimeouts;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    /// Interface to capture packets on (needs root or CAP_NET_RAW).
    pub interface: Option<String>,
    /// A flow with no packet for this long ends (default 120).
    pub idle_timeout_secs: Option<u64>,
    /// A flow open this long ends; its next packet starts a new one (default 1800).
    pub active_timeout_secs: Option<u64>,
    /// Requested receive queue of the capture socket (default 8 MiB; capped by rmem_max).
    pub recv_buffer_bytes: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct CaptureConfig {
    /// Live capture on this interface (needs root or CAP_NET_RAW).
    pub interface: Option<String>,
    /// A pcap file of raw traffic replayed once at start (`run --pcap`).
    pub pcap: Option<PathBuf>,
    pub timeouts: CaptureTimeouts,
    /// Requested receive queue of the capture socket (the kernel caps it at rmem_max).
    pub recv_buffer_bytes: usize,
}

impl RawCapture {
    /// The checked section, with `pcap` from the command line; every problem goes to
    /// `problem`.
    pub fn validate(
        &self,
        pcap: Option<&PathBuf>,
        problem: &mut impl FnMut(&str, String),
    ) -> CaptureConfig {
        let defaults = CaptureTimeouts::default();
        let secs = |v: Option<u64>, default_ms: u64| v.map_or(default_ms, |s| s * 1000);
        let timeouts = CaptureTimeouts {
            idle_ms: secs(self.idle_timeout_secs, defaults.idle_ms),
            active_ms: secs(self.active_timeout_secs, defaults.active_ms),
        };
        if timeouts.idle_ms == 0 {
            problem(
                "capture.idle_timeout_secs",
                "must be at least 1".to_string(),
            );
        }
        if timeouts.active_ms == 0 {
            problem(
                "capture.active_timeout_secs",
                "must be at least 1".to_string(),
            );
        }
        if let Some(iface) = &self.interface {
            if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ', '\0']) {
                problem(
                    "capture.interface",
                    format!("{iface:?} is not a Linux interface name"),
                );
            }
        }
        if let Some(p) = pcap {
            if !p.is_file() {
                problem("--pcap", format!("{} is not a file", p.display()));
            }
        }
        CaptureConfig {
            interface: self.interface.clone(),
            pcap: pcap.cloned(),
            timeouts,
            recv_buffer_bytes: self.recv_buffer_bytes.unwrap_or(8 << 20),
        }
    }
}
