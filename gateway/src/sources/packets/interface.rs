//! Live capture on an interface with pnet (`AF_PACKET`), into the packet meter.
//!
//! The receive loop runs on its own OS thread (pnet's receiver blocks) with a read timeout, so
//! it notices shutdown within [`READ_TIMEOUT`] and expires idle flows even when the interface
//! is quiet. Frames are timestamped with the wall clock as they are read. On shutdown every flow
//! still open is flushed into the pipeline before the thread ends.
//!
//! Kernel drops (the socket's receive queue overflowing) are not counted: pnet keeps its socket
//! private, so `PACKET_STATISTICS` cannot be read. See docs/operations.md for how to watch them.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden_firmware::meter::arp::ArpConfig;
use netwarden_firmware::wire::{FrameError, LinkType};
use pnet_datalink::{Channel, DataLinkReceiver, NetworkInterface};

use super::arp::{ArpTap, GatewayArpMeter};
use super::{
    meter_stack_bytes, CaptureTimeouts, GatewayMeter, RecordBatch, RecordQueue, StatsPublisher,
};
use crate::metrics::Metrics;
use crate::records::{FlowInput, FlowOrigin};
use crate::shutdown::Shutdown;

/// How long one read waits for a frame before the loop checks for shutdown and timeouts.
pub const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// How often open flows are checked for timeouts, queued records sent and counters published.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "capturing packets on {iface} needs root or the CAP_NET_RAW capability, and this process \
         has neither. Grant it to the binary (`setcap cap_net_raw+ep /usr/bin/netwarden`), run \
         the systemd unit with its capture drop-in (AmbientCapabilities=CAP_NET_RAW; see \
         docs/install.md), or run as root"
    )]
    NoPermission { iface: String },
    #[error("no interface named {iface:?} (interfaces here: {available})")]
    NoInterface { iface: String, available: String },
    #[error("cannot capture on {iface}: {error}")]
    Open {
        iface: String,
        error: std::io::Error,
    },
    #[error("cannot capture on {iface}: pnet offers no Ethernet-level channel for it")]
    Unsupported { iface: String },
    #[error("cannot start the capture thread: {0}")]
    Thread(std::io::Error),
}

/// An opened capture: checked at start-up, so a missing capability stops `run` at once with a
/// clear error instead of failing later on a thread.
pub struct InterfaceCapture {
    iface: String,
    link: LinkType,
    rx: Box<dyn DataLinkReceiver>,
}

impl std::fmt::Debug for InterfaceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterfaceCapture")
            .field("iface", &self.iface)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// Opens `iface` for capture (promiscuous), asking the kernel for a `recv_buffer` byte receive
/// queue (it grants at most `net.core.rmem_max`; the grant is returned and logged).
pub fn open(iface: &str, recv_buffer: usize) -> Result<(InterfaceCapture, usize), CaptureError> {
    let interfaces = pnet_datalink::interfaces();
    let Some(ni) = interfaces.iter().find(|i| i.name == iface) else {
        let available = interfaces
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CaptureError::NoInterface {
            iface: iface.to_string(),
            available,
        });
    };
    // Our own AF_PACKET socket, so that its receive queue can be enlarged (pnet has no option
    // for it): bursts (a scan, a large download) overflow the 208 KiB default while the meter
    // thread is busy. pnet binds it to the interface and takes ownership.
    let eth_p_all = i32::from(0x0003u16.to_be());
    let socket = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(eth_p_all)),
    );
    let socket = match socket {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(CaptureError::NoPermission {
                iface: iface.to_string(),
            })
        }
        Err(error) => {
            return Err(CaptureError::Open {
                iface: iface.to_string(),
                error,
            })
        }
    };
    // Best effort, as for the NetFlow socket: a small queue is a warning, not a failure.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    let config = pnet_datalink::Config {
        socket_fd: Some(std::os::fd::IntoRawFd::into_raw_fd(socket)),
        read_timeout: Some(READ_TIMEOUT),
        // The meter needs only the headers, but a GRO-merged frame can be 64 KiB; a smaller
        // buffer would cut it (harmless for counting, the IP header holds the length).
        read_buffer_size: 65_536,
        promiscuous: true,
        ..Default::default()
    };
    match pnet_datalink::channel(ni, config) {
        Ok(Channel::Ethernet(_tx, rx)) => Ok((
            InterfaceCapture {
                iface: iface.to_string(),
                link: link_type(ni),
                rx,
            },
            granted,
        )),
        Ok(_) => Err(CaptureError::Unsupported {
            iface: iface.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(CaptureError::NoPermission {
                iface: iface.to_string(),
            })
        }
        Err(error) => Err(CaptureError::Open {
            iface: iface.to_string(),
            error,
        }),
    }
}

/// What an `AF_PACKET` raw socket delivers on this interface: an Ethernet header (Ethernet,
/// loopback, bridges, VLAN devices, veth), or the bare IP packet (tun, WireGuard, PPP, GRE).
fn link_type(ni: &NetworkInterface) -> LinkType {
    let arphrd = std::fs::read_to_string(format!("/sys/class/net/{}/type", ni.name))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match arphrd {
        // ARPHRD_NONE (tun, wireguard), ARPHRD_PPP, ARPHRD_IPGRE, ARPHRD_RAWIP.
        Some(65534 | 512 | 778 | 519) => LinkType::Raw,
        _ => LinkType::Ethernet,
    }
}

impl InterfaceCapture {
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Runs the capture on its own thread until the shutdown signal, then flushes every open flow
    /// into `queue` and returns.
    pub fn spawn(
        self,
        timeouts: CaptureTimeouts,
        arp: ArpConfig,
        queue: SyncSender<FlowInput>,
        metrics: Arc<Metrics>,
        stop: Shutdown,
    ) -> Result<std::thread::JoinHandle<()>, CaptureError> {
        std::thread::Builder::new()
            .name("capture".into())
            .stack_size(meter_stack_bytes())
            .spawn(move || self.run(timeouts, arp, queue, metrics, stop))
            .map_err(CaptureError::Thread)
    }

    fn run(
        mut self,
        timeouts: CaptureTimeouts,
        arp_config: ArpConfig,
        queue: SyncSender<FlowInput>,
        metrics: Arc<Metrics>,
        mut stop: Shutdown,
    ) {
        let origin = FlowOrigin::Meter(format!("capture:{}", self.iface).into());
        let mut meter = GatewayMeter::new(timeouts.meter_config());
        let mut arp = GatewayArpMeter::new(arp_config);
        let mut tap = ArpTap::default();
        let mut batch = RecordBatch::with_capacity(2 * super::RECORDS_PER_BATCH);
        let mut publisher = StatsPublisher::default();
        let mut last_housekeeping = Instant::now();
        let mut last_error_log: Option<Instant> = None;
        // Blocks when the pipeline is behind: the kernel then drops frames, and no metered
        // flow is lost.
        let mut out = RecordQueue::new(queue, origin, metrics.clone());
        tracing::info!(iface = %self.iface, link = ?self.link, flows = super::METER_FLOWS,
            idle_timeout_ms = timeouts.idle_ms, active_timeout_ms = timeouts.active_ms,
            "Capture started");
        while out.is_connected() && !stop.check() {
            match self.rx.next() {
                Ok(frame) => {
                    let ts_ms = crate::now_ms();
                    // Refusals (not IP, truncated) are counted by the meter; ARP by its own.
                    let r = meter.observe(self.link, ts_ms, frame, &mut |f| batch.push(f));
                    if let Err(FrameError::NotIp) = r {
                        tap.observe(&mut arp, self.link, ts_ms, frame);
                        if tap.is_full() {
                            out.send_arp(&mut tap);
                        }
                    }
                    if batch.is_full() {
                        out.send(&mut batch);
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    metrics.add(&metrics.capture_receive_errors, 1);
                    if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(iface = %self.iface, error = %e, "Capture receive error");
                        last_error_log = Some(Instant::now());
                    }
                    // An interface that went down fails every read at once; don't spin.
                    std::thread::sleep(READ_TIMEOUT);
                }
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                meter.expire(crate::now_ms(), &mut |f| batch.push(f));
                out.send(&mut batch);
                out.send_arp(&mut tap);
                publisher.publish(meter.stats(), &metrics);
                tap.publish(arp.stats(), &metrics);
                last_housekeeping = Instant::now();
            }
        }
        meter.flush(&mut |f| batch.push(f));
        out.send(&mut batch);
        out.send_arp(&mut tap);
        publisher.publish(meter.stats(), &metrics);
        tap.publish(arp.stats(), &metrics);
        let s = meter.stats();
        tracing::info!(iface = %self.iface, frames = s.frames, flows = s.emitted(),
            not_ip = s.not_ip, truncated = s.truncated, evicted = s.evicted,
            arp = arp.stats().packets, "Capture stopped");
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::Interrupted
    )
}
