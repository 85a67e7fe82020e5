//! The UDP receive loop. It only receives and queues: parsing and anything that formats text
//! happen on the pipeline thread, so the socket is drained as fast as the kernel fills it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// A datagram as received, queued for the pipeline.
#[derive(Debug)]
pub struct Datagram {
    pub from: SocketAddr,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen for NetFlow on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Binds the collector socket with a large receive buffer. Returns the socket and the buffer
/// size the kernel actually granted (Linux caps it at `net.core.rmem_max`, reporting double).
pub fn bind(addr: SocketAddr, recv_buffer: usize) -> Result<(UdpSocket, usize), ListenError> {
    let err = |error| ListenError::Bind { addr, error };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    // Best effort: a small buffer is a warning (and a metric), not a reason not to start.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    let socket = UdpSocket::from_std(socket.into()).map_err(err)?;
    Ok((socket, granted))
}

/// Receives until shutdown, handing datagrams to `queue`; a full queue drops (counted).
pub async fn run(
    socket: UdpSocket,
    queue: SyncSender<Datagram>,
    metrics: Arc<Metrics>,
    mut shutdown: Shutdown,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.recv() => return,
        };
        match received {
            Ok((n, from)) => {
                metrics
                    .netflow_datagrams_received
                    .fetch_add(1, Ordering::Relaxed);
                let d = Datagram {
                    from,
                    payload: buf[..n].to_vec(),
                };
                match queue.try_send(d) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        metrics
                            .netflow_datagrams_dropped_queue_full
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(e) => {
                metrics
                    .netflow_receive_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "Receive error on NetFlow socket");
            }
        }
    }
}
