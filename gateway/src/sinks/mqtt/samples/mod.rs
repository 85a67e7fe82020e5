//! Feature samples over MQTT (issue 18, docs/fleet.md "Samples over MQTT"): the central side
//! asks a gateway for its reservoir of feature rows; the gateway answers with checksummed
//! chunks, a window at a time, and sends again what is not acknowledged. No I/O here: the
//! messages ([`Request`], [`Ack`], [`SampleChunk`]) and their topics here, the gateway's
//! [`Sender`] and the central side's [`Receiver`] in [`transfer`]; `samples_serve.rs` and
//! `cli/samples_fetch.rs` drive them.
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

pub mod transfer;

pub use transfer::{Outgoing, Received, Receiver, Sender, SenderStats, MAX_ROUNDS, RESEND_MS};

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
    #[error("{0}")]
    Schema(String),
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
    /// Which rows: `flow-v1`, `flow-v2` or `all`; absent: the active flow model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
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
        if let Some(s) = &r.schema {
            crate::records::samples::SchemaPick::parse(s).map_err(SamplesWireError::Schema)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A request (shared with `transfer.rs`'s tests).
    pub(super) fn req(id: &str, chunk: u32, window: u32) -> Request {
        Request {
            format: 1,
            id: id.into(),
            chunk_bytes: chunk,
            window,
            from: 0,
            schema: None,
        }
    }

    pub(super) fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn requests_and_acks_are_bounded_and_checked() {
        let r = req("t-1", 4096, 8);
        assert_eq!(Request::decode(&r.encode()), Ok(r.clone()));
        assert!(!String::from_utf8_lossy(&r.encode()).contains("schema"));
        let v2 = Request {
            schema: Some("flow-v2".into()),
            ..r
        };
        assert_eq!(Request::decode(&v2.encode()), Ok(v2));
        let cases: [(&str, &str); 8] = [
            (
                r#"{"format":1,"id":"a","chunk_bytes":4096,"window":8,"schema":"flow-v9"}"#,
                "schema \"flow-v9\" is not one of",
            ),
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
}
