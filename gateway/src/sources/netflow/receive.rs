//! Batched receive: one `recvmmsg` call fills up to [`BATCH`] datagrams into buffers that live
//! as long as the receiver, so the thread that receives also decodes, straight from those
//! buffers: no copy, no queue, no thread switch per datagram.
//!
//! Shards: with `shards > 1` every shard binds its own socket to the same address with
//! `SO_REUSEPORT`; Linux picks the socket by a hash of the source address and port, so one
//! exporter's datagrams always reach the same shard (its templates, sequence numbers and host
//! windows stay in one place) as long as the set of sockets does not change.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use socket2::{Domain, Protocol, Socket, Type};

use super::listener::ListenError;

/// Datagrams per `recvmmsg` call.
pub const BATCH: usize = 64;
/// Bytes per datagram slot: the largest UDP payload, so nothing is ever cut short.
const SLOT: usize = 65_536;

/// Binds `shards` sockets to `addr` (with `SO_REUSEPORT` when more than one) with a receive
/// buffer of `recv_buffer` bytes and a receive timeout of `timeout`, so a blocked shard still
/// looks at its other work. Returns each socket with the buffer size the kernel granted.
pub fn bind_shards(
    addr: SocketAddr,
    recv_buffer: usize,
    shards: usize,
    timeout: Duration,
) -> Result<Vec<(UdpSocket, usize)>, ListenError> {
    let err = |error| ListenError::Bind { addr, error };
    let mut out = Vec::with_capacity(shards.max(1));
    let mut bound = addr;
    for _ in 0..shards.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(err)?;
        // Best effort: a small buffer is a warning (and a metric), not a reason not to start.
        let _ = socket.set_recv_buffer_size(recv_buffer);
        let granted = socket.recv_buffer_size().unwrap_or(0);
        if shards > 1 {
            socket.set_reuse_port(true).map_err(err)?;
        }
        socket.set_read_timeout(Some(timeout)).map_err(err)?;
        // Port 0: the first socket picks a port and the others join it.
        socket.bind(&bound.into()).map_err(err)?;
        let socket: UdpSocket = socket.into();
        bound = socket.local_addr().map_err(err)?;
        out.push((socket, granted));
    }
    Ok(out)
}

/// Reused receive buffers and message headers for one socket.
pub struct Receiver {
    buf: Vec<u8>,
    headers: MultiHeaders<SockaddrStorage>,
    got: Vec<(SocketAddr, usize)>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("got", &self.got.len())
            .finish()
    }
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver {
            buf: vec![0; BATCH * SLOT],
            headers: MultiHeaders::preallocate(BATCH, None),
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl Receiver {
    /// Waits for at least one datagram (up to the socket's receive timeout, then
    /// `ErrorKind::WouldBlock`/`TimedOut`) and takes every one already queued, up to [`BATCH`].
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        let mut chunks = self.buf.chunks_exact_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in results {
            let from = msg.address.as_ref().and_then(socket_addr);
            if let Some(from) = from {
                self.got.push((from, msg.bytes));
            }
        }
        Ok(self.got.len())
    }

    /// The datagrams of the last [`Receiver::recv`], as `(sender, payload)`.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.got
            .iter()
            .enumerate()
            .map(|(i, &(from, n))| (from, &self.buf[i * SLOT..i * SLOT + n.min(SLOT)]))
    }
}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Whether a receive error only means the timeout passed.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_every_queued_datagram_and_its_sender() {
        let socks = bind_shards(
            "127.0.0.1:0".parse().expect("addr"),
            1 << 20,
            1,
            Duration::from_millis(200),
        )
        .expect("bind");
        let (sock, _) = &socks[0];
        let to = sock.local_addr().expect("addr");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for i in 0..100u16 {
            tx.send_to(&i.to_be_bytes().repeat(usize::from(i) + 1), to)
                .expect("send");
        }
        let mut r = Receiver::default();
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let n = r.recv(sock).expect("recv");
            assert!((1..=BATCH).contains(&n));
            for (from, p) in r.datagrams() {
                assert_eq!(from, tx.local_addr().expect("addr"));
                seen.push(p.to_vec());
            }
        }
        for (i, p) in seen.iter().enumerate() {
            assert_eq!(p, &(i as u16).to_be_bytes().repeat(i + 1));
        }
        let e = r.recv(sock).expect_err("nothing left: times out");
        assert!(is_timeout(&e), "{e}");
    }
}
