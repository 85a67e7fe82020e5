//! Suricata's `unix_stream` and `unix_dgram` EVE output: netwarden binds the socket, Suricata
//! connects (stream) or sends to it (dgram). Lines go to a bounded queue the EVE thread drains;
//! a full queue blocks the reader (stream: Suricata's writes then wait; dgram: the kernel's
//! socket buffer fills and drops, counted by the kernel, not by us). Nothing is kept across
//! restarts: what is in flight when netwarden stops is lost, unlike the file input.

use std::io::{BufRead, BufReader};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;

use super::config::{EveSocket, SocketKind};

/// Binds `s.path` (a stale socket file there is removed first) and spawns its reader thread.
/// Each record goes to `tx` as the line's bytes (an oversize one as `None`, to be counted).
pub fn spawn(
    s: &EveSocket,
    max_line: usize,
    tx: SyncSender<Option<Vec<u8>>>,
    stop: Shutdown,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    remove_stale(&s.path);
    match s.kind {
        SocketKind::Dgram => {
            let sock = UnixDatagram::bind(&s.path)?;
            sock.set_read_timeout(Some(Duration::from_millis(200)))?;
            std::thread::Builder::new()
                .name("eve-dgram".into())
                .spawn(move || dgram_loop(sock, max_line, tx, stop))
        }
        SocketKind::Stream => {
            let listener = UnixListener::bind(&s.path)?;
            listener.set_nonblocking(true)?;
            std::thread::Builder::new()
                .name("eve-stream".into())
                .spawn(move || stream_loop(listener, max_line, tx, stop))
        }
    }
}

fn remove_stale(p: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(p) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn dgram_loop(
    sock: UnixDatagram,
    max_line: usize,
    tx: SyncSender<Option<Vec<u8>>>,
    mut stop: Shutdown,
) {
    let mut buf = vec![0u8; max_line + 1];
    while !stop.check() {
        match sock.recv(&mut buf) {
            Ok(n) if n > max_line => {
                if tx.send(None).is_err() {
                    return;
                }
            }
            Ok(n) => {
                // One record per datagram; Suricata may or may not end it with a newline.
                for line in buf[..n].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    if tx.send(Some(line.to_vec())).is_err() {
                        return;
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                tracing::warn!(error = %e, "EVE datagram socket read failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn stream_loop(
    listener: UnixListener,
    max_line: usize,
    tx: SyncSender<Option<Vec<u8>>>,
    mut stop: Shutdown,
) {
    let done = Arc::new(AtomicBool::new(false));
    while !stop.check() {
        match listener.accept() {
            Ok((conn, _)) => {
                let (tx, done) = (tx.clone(), done.clone());
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = std::thread::Builder::new()
                    .name("eve-conn".into())
                    .spawn(move || read_stream(conn, max_line, tx, &done));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, "EVE stream socket accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    done.store(true, Ordering::Relaxed);
}

fn read_stream(
    conn: std::os::unix::net::UnixStream,
    max_line: usize,
    tx: SyncSender<Option<Vec<u8>>>,
    done: &AtomicBool,
) {
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    let mut skipping = false;
    while !done.load(Ordering::Relaxed) {
        let avail = match reader.fill_buf() {
            Ok([]) => return, // peer closed
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let (used, complete) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !skipping {
            line.extend_from_slice(&avail[..if complete { used - 1 } else { used }]);
        }
        reader.consume(used);
        if !skipping && line.len() > max_line {
            line.clear();
            skipping = true;
            if tx.send(None).is_err() {
                return;
            }
        }
        if complete {
            if !skipping && !line.is_empty() && tx.send(Some(std::mem::take(&mut line))).is_err() {
                return;
            }
            line.clear();
            skipping = false;
        }
    }
}
