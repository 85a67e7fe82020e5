//! Feature samples over MQTT (issue 18, docs/fleet.md "Samples over MQTT"): the central side
//! asks a gateway for its reservoir of feature rows; the gateway answers with checksummed
//! chunks, a window at a time, and sends again what is not acknowledged. No I/O here: the
//! messages ([`Request`], [`Ack`], [`SampleChunk`]), their topics, the gateway's [`Sender`] and
//! the central side's [`Receiver`]; `fleet.rs` and `cli/samples_fetch.rs` drive them.
//!
//! - Request, central -> gateway, `<fleet topic>/samples/<site>/<device>/request` (QoS 1, not
//!   retained; JSON): `{"format":1,"id":"...","chunk_bytes":16384,"window":8,"from":0}`. A new
//!   id starts a transfer of a fresh snapshot; the same id again resumes it from `from`.
//! - Ack, central -> gateway, `<fleet topic>/samples/<site>/<device>/ack` (JSON):
//!   `{"id":"...","next":N}`: every chunk below N arrived intact (cumulative, go-back-N).
//! - Chunk, gateway -> central, `<prefix>/samples/<id>` (QoS 1, not retained; binary):
//!   `"NWS1"`, id length (u8) and id, index (u32 BE), count (u32 BE), total bytes (u64 BE),
//!   SHA-256 of the whole CSV (32 bytes), SHA-256 of this chunk's data (32 bytes), data.
//!
//! Bounded: requests and acks at most 1 KiB, ids 1-64 of `[A-Za-z0-9_.-]`, chunks 1-256 KiB,
//! windows 1-64 chunks, a snapshot at most 64 MiB; one transfer at a time per gateway.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: u32 = 1;
pub const MAX_CONTROL_BYTES: usize = 1024;
pub const MAX_ID: usize = 64;
pub const MIN_CHUNK_BYTES: u32 = 1024;
pub const MAX_CHUNK_BYTES: u32 = 256 * 1024;
pub const DEFAULT_CHUNK_BYTES: u32 = 16 * 1024;
pub const MAX_WINDOW: u32 = 64;
pub const DEFAULT_WINDOW: u32 = 8;
pub const MAX_SNAPSHOT_BYTES: usize = 64 << 20;
const MAGIC: &[u8; 4] = b"NWS1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplesWireError {
    #[error("{0} bytes is over the {MAX_CONTROL_BYTES}-byte limit of a request or ack")]
    TooLong(usize),
    #[error("not a samples message: {0}")]
    Json(String),
    #[error("format {0} is not {FORMAT}")]
    Format(u32),
    #[error("id must be 1-{MAX_ID} of A-Z a-z 0-9 _ . -")]
    BadId,
    #[error("chunk_bytes {0} is outside {MIN_CHUNK_BYTES}-{MAX_CHUNK_BYTES}")]
    ChunkBytes(u32),
    #[error("window {0} is outside 1-{MAX_WINDOW}")]
    Window(u32),
    #[error("chunk: {0}")]
    Chunk(&'static str),
    #[error("topic {0:?} is not a samples topic of this gateway")]
    Topic(String),
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn control<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SamplesWireError> {
    if bytes.len() > MAX_CONTROL_BYTES {
        return Err(SamplesWireError::TooLong(bytes.len()));
    }
    serde_json::from_slice(bytes).map_err(|e| SamplesWireError::Json(e.to_string()))
}

/// The central side's request for a gateway's samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub format: u32,
    pub id: String,
    pub chunk_bytes: u32,
    pub window: u32,
    /// Resume from this chunk (0: from the start).
    #[serde(default)]
    pub from: u32,
}

impl Request {
    pub fn decode(bytes: &[u8]) -> Result<Request, SamplesWireError> {
        let r: Request = control(bytes)?;
        if r.format != FORMAT {
            return Err(SamplesWireError::Format(r.format));
        }
        if !id_ok(&r.id) {
            return Err(SamplesWireError::BadId);
        }
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&r.chunk_bytes) {
            return Err(SamplesWireError::ChunkBytes(r.chunk_bytes));
        }
        if !(1..=MAX_WINDOW).contains(&r.window) {
            return Err(SamplesWireError::Window(r.window));
        }
        Ok(r)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Cumulative acknowledgement: every chunk below `next` arrived intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub id: String,
    pub next: u32,
}

impl Ack {
    pub fn decode(bytes: &[u8]) -> Result<Ack, SamplesWireError> {
        let a: Ack = control(bytes)?;
        if !id_ok(&a.id) {
            return Err(SamplesWireError::BadId);
        }
        Ok(a)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One chunk of a snapshot, as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleChunk {
    pub id: String,
    pub index: u32,
    pub count: u32,
    pub total: u64,
    pub whole_sha256: [u8; 32],
    pub data: Vec<u8>,
}

impl SampleChunk {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 1 + self.id.len() + 16 + 64 + self.data.len());
        out.extend_from_slice(MAGIC);
        out.push(self.id.len() as u8);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&self.whole_sha256);
        out.extend_from_slice(&Sha256::digest(&self.data));
        out.extend_from_slice(&self.data);
        out
    }

    /// Checks the layout, the bounds and the chunk's own checksum.
    pub fn decode(bytes: &[u8]) -> Result<SampleChunk, SamplesWireError> {
        let bad = SamplesWireError::Chunk;
        let rest = bytes.strip_prefix(MAGIC).ok_or(bad("no NWS1 magic"))?;
        let (&id_len, rest) = rest.split_first().ok_or(bad("truncated"))?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + 4 + 4 + 8 + 64 {
            return Err(bad("truncated"));
        }
        let id = std::str::from_utf8(&rest[..id_len]).map_err(|_| bad("id is not UTF-8"))?;
        if !id_ok(id) {
            return Err(SamplesWireError::BadId);
        }
        let r = &rest[id_len..];
        let u32_at = |o: usize| u32::from_be_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
        let (index, count) = (u32_at(0), u32_at(4));
        let mut t = [0u8; 8];
        t.copy_from_slice(&r[8..16]);
        let total = u64::from_be_bytes(t);
        let mut whole = [0u8; 32];
        whole.copy_from_slice(&r[16..48]);
        let sum = &r[48..80];
        let data = &r[80..];
        if count == 0 || index >= count {
            return Err(bad("index not below count"));
        }
        if total > MAX_SNAPSHOT_BYTES as u64 || data.len() > MAX_CHUNK_BYTES as usize {
            return Err(bad("over the size limits"));
        }
        if Sha256::digest(data).as_slice() != sum {
            return Err(bad("checksum does not match its data"));
        }
        Ok(SampleChunk {
            id: id.to_string(),
            index,
            count,
            total,
            whole_sha256: whole,
            data: data.to_vec(),
        })
    }
}

/// `<fleet topic>/samples/<site>/<device>`: where requests and acks for a gateway go.
pub fn control_base(fleet_topic: &str, site: &str, device: &str) -> String {
    format!("{fleet_topic}/samples/{site}/{device}")
}

/// `<prefix>/samples/<id>`: where a gateway's chunks of transfer `id` go.
pub fn chunk_topic(prefix: &str, id: &str) -> String {
    format!("{prefix}/samples/{id}")
}

/// Which control message a topic under [`control_base`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Request,
    Ack,
}

pub fn parse_control_topic(base: &str, topic: &str) -> Result<Control, SamplesWireError> {
    match topic.strip_prefix(base).and_then(|t| t.strip_prefix('/')) {
        Some("request") => Ok(Control::Request),
        Some("ack") => Ok(Control::Ack),
        _ => Err(SamplesWireError::Topic(topic.chars().take(200).collect())),
    }
}

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
    use super::*;

    fn req(id: &str, chunk: u32, window: u32) -> Request {
        Request {
            format: 1,
            id: id.into(),
            chunk_bytes: chunk,
            window,
            from: 0,
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn requests_and_acks_are_bounded_and_checked() {
        let r = req("t-1", 4096, 8);
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let cases: [(&str, &str); 7] = [
            (
                r#"{"format":2,"id":"a","chunk_bytes":4096,"window":8}"#,
                "format 2",
            ),
            (
                r#"{"format":1,"id":"a/b","chunk_bytes":4096,"window":8}"#,
                "id must be",
            ),
            (
                r#"{"format":1,"id":"","chunk_bytes":4096,"window":8}"#,
                "id must be",
            ),
            (
                r#"{"format":1,"id":"a","chunk_bytes":10,"window":8}"#,
                "chunk_bytes 10",
            ),
            (
                r#"{"format":1,"id":"a","chunk_bytes":4096,"window":0}"#,
                "window 0",
            ),
            (
                r#"{"format":1,"id":"a","chunk_bytes":4096,"window":8,"x":1}"#,
                "unknown field",
            ),
            ("[1,2]", "not a samples message"),
        ];
        for (text, want) in cases {
            let e = Request::decode(text.as_bytes())
                .expect_err(text)
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let long = vec![b' '; MAX_CONTROL_BYTES + 1];
        assert_eq!(
            Request::decode(&long),
            Err(SamplesWireError::TooLong(MAX_CONTROL_BYTES + 1))
        );
        let a = Ack {
            id: "t-1".into(),
            next: 3,
        };
        assert_eq!(Ack::decode(&a.encode()), Ok(a));
        assert!(Ack::decode(br#"{"id":"t 1","next":3}"#).is_err());
    }

    #[test]
    fn a_chunk_round_trips_and_any_flipped_byte_is_refused() {
        let c = SampleChunk {
            id: "abc".into(),
            index: 1,
            count: 2,
            total: 2000,
            whole_sha256: [7; 32],
            data: data(976),
        };
        let bytes = c.encode();
        assert_eq!(SampleChunk::decode(&bytes), Ok(c));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            if let Ok(d) = SampleChunk::decode(&b) {
                // Only header fields no checksum covers can change undetected here; the
                // receiver compares them across chunks and the whole against its checksum.
                assert!(
                    (8..56).contains(&i),
                    "byte {i} flipped, still decoded: {d:?}"
                );
            }
        }
        for n in 0..bytes.len() {
            let _ = SampleChunk::decode(&bytes[..n]);
        }
    }

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
