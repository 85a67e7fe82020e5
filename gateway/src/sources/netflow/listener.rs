//! The collector socket's bind errors and the kernel's drop counter of a socket. Receiving is
//! in [`super::receive`] (batched, on the shard threads that decode).

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

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

/// Where the kernel counts this socket's drops: the socket's inode, found in the `inode`
/// column of `/proc/net/udp` (or `udp6`), whose `drops` column counts datagrams the kernel
/// discarded because the receive buffer was full (before netwarden could read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelDrops {
    inode: u64,
    v6: bool,
}

impl KernelDrops {
    /// `None` where `/proc` is not there (not Linux) or the socket cannot be found.
    pub fn of(socket: &UdpSocket) -> Option<KernelDrops> {
        use std::os::fd::AsRawFd;
        Self::of_fd(socket.as_raw_fd(), socket.local_addr().ok()?.is_ipv6())
    }

    /// As [`KernelDrops::of`], for a plain (shard) socket.
    pub fn of_std(socket: &std::net::UdpSocket) -> Option<KernelDrops> {
        use std::os::fd::AsRawFd;
        Self::of_fd(socket.as_raw_fd(), socket.local_addr().ok()?.is_ipv6())
    }

    fn of_fd(fd: std::os::fd::RawFd, v6: bool) -> Option<KernelDrops> {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
        let inode = link
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        Some(KernelDrops { inode, v6 })
    }

    /// The kernel's drop count for the socket now.
    pub fn read(&self) -> Option<u64> {
        let path = if self.v6 {
            "/proc/net/udp6"
        } else {
            "/proc/net/udp"
        };
        parse_proc_net_udp_drops(&std::fs::read_to_string(path).ok()?, self.inode)
    }
}

/// The `drops` column of the row of `inode` in a `/proc/net/udp` table.
pub fn parse_proc_net_udp_drops(table: &str, inode: u64) -> Option<u64> {
    let inode = inode.to_string();
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
        (cols.len() >= 13 && cols[9] == inode).then(|| cols[12].parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_drops_of_a_real_socket_and_of_a_proc_table() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n \
             5500: 0100007F:D0D9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 434209 2 0000000024a09cfc 0\n \
            10402: 0100007F:A3FF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 434516 2 00000000496472d8 17\n";
        assert_eq!(parse_proc_net_udp_drops(table, 434516), Some(17));
        assert_eq!(parse_proc_net_udp_drops(table, 434209), Some(0));
        assert_eq!(parse_proc_net_udp_drops(table, 1), None);

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (sock, _) = bind("127.0.0.1:0".parse().expect("addr"), 4096).expect("bind");
            let k = KernelDrops::of(&sock).expect("socket inode");
            assert_eq!(k.read(), Some(0));
            // Overflow a tiny buffer without reading: the kernel counts the drops.
            let to = sock.local_addr().expect("addr");
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            for _ in 0..200 {
                let _ = tx.send_to(&[0u8; 1200], to);
            }
            assert!(k.read().expect("drops") > 0, "drops counted");
        });
    }
}
