//! One transfer of a samples snapshot, without I/O: the gateway's [`Sender`] (a window of
//! chunks beyond the last cumulative ack, everything unacknowledged again after a silence) and
//! the central side's [`Receiver`] (chunks checked and placed, the whole checked at the end).

use sha2::{Digest, Sha256};

use super::{Request, SampleChunk, MAX_SNAPSHOT_BYTES, MIN_CHUNK_BYTES};

/// What the [`Sender`] wants published.
pub type Outgoing = Vec<SampleChunk>;

/// The gateway's side of one transfer: a snapshot split into chunks, sent a window beyond the
/// last acknowledgement; without progress for `resend_ms`, everything unacknowledged goes again
/// (at most `max_rounds` times, then the transfer is dropped).
#[derive(Debug)]
pub struct Sender {
    id: String,
    data: Vec<u8>,
    whole: [u8; 32],
    chunk_bytes: usize,
    window: u32,
    count: u32,
    acked: u32,
    sent: u32,
    last_progress_ms: u64,
    rounds: u32,
}

/// Figures a transfer leaves behind (for counters and the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderStats {
    pub sent: u64,
    pub resent: u64,
}

pub const RESEND_MS: u64 = 3_000;
pub const MAX_ROUNDS: u32 = 20;

impl Sender {
    /// A transfer of `data` (a snapshot of the samples CSV), capped at [`MAX_SNAPSHOT_BYTES`].
    pub fn new(req: &Request, mut data: Vec<u8>, now_ms: u64) -> Sender {
        data.truncate(MAX_SNAPSHOT_BYTES);
        let chunk_bytes = req.chunk_bytes as usize;
        let count = data.len().div_ceil(chunk_bytes).max(1) as u32;
        let mut s = Sender {
            id: req.id.clone(),
            whole: Sha256::digest(&data).into(),
            data,
            chunk_bytes,
            window: req.window,
            count,
            acked: 0,
            sent: 0,
            last_progress_ms: now_ms,
            rounds: 0,
        };
        s.resume(req.from, now_ms);
        s
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn done(&self) -> bool {
        self.acked >= self.count
    }

    /// The central side asked again for the same id: go on from `from`.
    pub fn resume(&mut self, from: u32, now_ms: u64) {
        self.acked = from.min(self.count);
        self.sent = self.acked;
        self.last_progress_ms = now_ms;
        self.rounds = 0;
    }

    fn chunk(&self, i: u32) -> SampleChunk {
        let lo = (i as usize * self.chunk_bytes).min(self.data.len());
        let hi = (lo + self.chunk_bytes).min(self.data.len());
        SampleChunk {
            id: self.id.clone(),
            index: i,
            count: self.count,
            total: self.data.len() as u64,
            whole_sha256: self.whole,
            data: self.data[lo..hi].to_vec(),
        }
    }

    /// The chunks that may go now (up to a window beyond the acknowledged ones).
    pub fn poll(&mut self, stats: &mut SenderStats) -> Outgoing {
        let end = self.count.min(self.acked.saturating_add(self.window));
        let out: Outgoing = (self.sent..end).map(|i| self.chunk(i)).collect();
        stats.sent += out.len() as u64;
        self.sent = self.sent.max(end);
        out
    }

    /// An acknowledgement; stale ones (lower than what is known) change nothing.
    pub fn on_ack(&mut self, next: u32, now_ms: u64) {
        let next = next.min(self.count);
        if next > self.acked {
            self.acked = next;
            self.sent = self.sent.max(next);
            self.last_progress_ms = now_ms;
            self.rounds = 0;
        }
    }

    /// Called now and then: after [`RESEND_MS`] without progress, everything unacknowledged
    /// is sent again. Returns false when the transfer should be given up.
    pub fn tick(&mut self, now_ms: u64, stats: &mut SenderStats) -> (bool, Outgoing) {
        if self.done() || now_ms.saturating_sub(self.last_progress_ms) < RESEND_MS {
            return (true, Vec::new());
        }
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return (false, Vec::new());
        }
        self.last_progress_ms = now_ms;
        self.sent = self.acked;
        let out = self.poll(stats);
        stats.resent += out.len() as u64;
        stats.sent -= out.len() as u64;
        (true, out)
    }
}

/// The central side's view of one transfer: chunks by index, each checked; the cumulative
/// acknowledgement to send; the whole checked against its SHA-256 at the end.
#[derive(Debug, Default)]
pub struct Receiver {
    id: String,
    count: u32,
    total: u64,
    whole: [u8; 32],
    parts: Vec<Option<Vec<u8>>>,
    held: usize,
    next: u32,
}

/// What a chunk did to a [`Receiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored (or a duplicate); acknowledge `next`.
    Progress { next: u32 },
    /// Every chunk is here and the whole matches its checksum.
    Complete(Vec<u8>),
    /// Not for this transfer, or it contradicts the chunks before it.
    Refused(&'static str),
    /// Every chunk arrived but the whole does not match: start again with a new id.
    Corrupt,
}

impl Receiver {
    pub fn new(id: &str) -> Receiver {
        Receiver {
            id: id.to_string(),
            ..Receiver::default()
        }
    }

    /// Chunks below this index have all arrived.
    pub fn next(&self) -> u32 {
        self.next
    }

    pub fn on_chunk(&mut self, c: SampleChunk) -> Received {
        if c.id != self.id {
            return Received::Refused("another transfer's chunk");
        }
        if self.parts.is_empty() {
            if c.total.div_ceil(u64::from(MIN_CHUNK_BYTES)) < u64::from(c.count).saturating_sub(1) {
                return Received::Refused("more chunks than its size needs");
            }
            self.count = c.count;
            self.total = c.total;
            self.whole = c.whole_sha256;
            self.parts = vec![None; c.count as usize];
        } else if (c.count, c.total, c.whole_sha256) != (self.count, self.total, self.whole) {
            return Received::Refused("a chunk of another snapshot");
        }
        let slot = &mut self.parts[c.index as usize];
        if slot.is_none() {
            self.held += c.data.len();
            if self.held as u64 > self.total {
                return Received::Refused("more bytes than the snapshot holds");
            }
            *slot = Some(c.data);
        }
        while (self.next as usize) < self.parts.len() && self.parts[self.next as usize].is_some() {
            self.next += 1;
        }
        if self.next < self.count {
            return Received::Progress { next: self.next };
        }
        let whole: Vec<u8> = self.parts.iter().flatten().flatten().copied().collect();
        if whole.len() as u64 != self.total || Sha256::digest(&whole).as_slice() != self.whole {
            return Received::Corrupt;
        }
        Received::Complete(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{data, req};
    use super::*;

    #[test]
    fn lossless_transfer_goes_a_window_at_a_time() {
        let snap = data(10_000);
        let mut s = Sender::new(&req("x", 1024, 3), snap.clone(), 0);
        let mut r = Receiver::new("x");
        let mut stats = SenderStats::default();
        assert_eq!(s.count(), 10);
        let mut got = None;
        let mut rounds = 0;
        while got.is_none() {
            rounds += 1;
            let out = s.poll(&mut stats);
            assert!(out.len() <= 3 && !out.is_empty(), "window");
            for c in out {
                let c = SampleChunk::decode(&c.encode()).expect("decode");
                match r.on_chunk(c) {
                    Received::Progress { next } => s.on_ack(next, 0),
                    Received::Complete(d) => got = Some(d),
                    other => panic!("{other:?}"),
                }
            }
        }
        s.on_ack(r.next(), 0);
        assert!(s.done());
        assert_eq!(got, Some(snap));
        assert_eq!((rounds, stats.sent, stats.resent), (4, 10, 0));
    }

    #[test]
    fn lost_chunks_are_sent_again_after_the_timeout_and_a_resume_goes_on() {
        let snap = data(5_000);
        let mut s = Sender::new(&req("y", 1024, 8), snap.clone(), 0);
        let mut r = Receiver::new("y");
        let mut stats = SenderStats::default();
        // Chunk 1 is lost on the way.
        for c in s.poll(&mut stats) {
            if c.index != 1 {
                if let Received::Progress { next } = r.on_chunk(c) {
                    s.on_ack(next, 100);
                }
            }
        }
        assert_eq!(r.next(), 1);
        assert_eq!(s.tick(1_000, &mut stats), (true, Vec::new()), "not yet");
        let (alive, again) = s.tick(100 + RESEND_MS, &mut stats);
        assert!(alive);
        assert_eq!(
            again.iter().map(|c| c.index).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let mut done = None;
        for c in again {
            if let Received::Complete(d) = r.on_chunk(c) {
                done = Some(d);
            }
        }
        assert_eq!(done, Some(snap.clone()));
        assert_eq!((stats.sent, stats.resent), (5, 4));
        // A resumed request starts from its `from`; a sender without any ack gives up.
        let mut s = Sender::new(&req("z", 1024, 2), snap, 0);
        s.resume(3, 0);
        let idx: Vec<u32> = s.poll(&mut stats).iter().map(|c| c.index).collect();
        assert_eq!(idx, [3, 4]);
        let mut t = 0;
        let mut alive = true;
        while alive {
            t += RESEND_MS;
            alive = s.tick(t, &mut stats).0;
        }
        assert_eq!(t, RESEND_MS * u64::from(MAX_ROUNDS + 1));
    }

    #[test]
    fn the_receiver_refuses_foreign_or_contradicting_chunks_and_detects_a_bad_whole() {
        let mut s = Sender::new(&req("a", 1024, 8), data(3000), 0);
        let chunks = s.poll(&mut SenderStats::default());
        let mut r = Receiver::new("b");
        assert_eq!(
            r.on_chunk(chunks[0].clone()),
            Received::Refused("another transfer's chunk")
        );
        let mut r = Receiver::new("a");
        assert_eq!(
            r.on_chunk(chunks[0].clone()),
            Received::Progress { next: 1 }
        );
        let mut other = chunks[1].clone();
        other.total += 1;
        assert_eq!(
            r.on_chunk(other),
            Received::Refused("a chunk of another snapshot")
        );
        // Data swapped between two chunks: each checks out, the whole does not.
        let mut r = Receiver::new("a");
        let (mut c1, mut c2) = (chunks[1].clone(), chunks[2].clone());
        c1.data.truncate(c2.data.len());
        std::mem::swap(&mut c1.data, &mut c2.data);
        let _ = r.on_chunk(chunks[0].clone());
        let _ = r.on_chunk(c1);
        assert_eq!(r.on_chunk(c2), Received::Corrupt);
        // An empty snapshot is one empty chunk.
        let mut s = Sender::new(&req("e", 1024, 8), Vec::new(), 0);
        let c = s.poll(&mut SenderStats::default());
        assert_eq!(c.len(), 1);
        assert_eq!(
            Receiver::new("e").on_chunk(c[0].clone()),
            Received::Complete(Vec::new())
        );
    }
}
