//! The fleet delivery messages on the broker (docs/fleet.md): one retained *set manifest* and
//! retained *chunks* per bundle, under a topic scoped to every appliance, a site or a device.
//!
//! ```text
//! <fleet>/models/<detector>/all/manifest                 <fleet>/models/<detector>/all/chunk/<i>
//! <fleet>/models/<detector>/site/<S>/manifest            .../site/<S>/chunk/<i>
//! <fleet>/models/<detector>/device/<S>/<D>/manifest      .../device/<S>/<D>/chunk/<i>
//! ```
//! The set manifest is JSON: the bundle's `manifest.json` text exactly as signed, its
//! `manifest.sig` line, the model's size and a SHA-256 per chunk. A chunk is binary: a 24-byte
//! header (`NWC1`, the 16-byte set id, index and count as big-endian u16) and the model bytes.
//! The set id is the first 16 bytes of SHA-256 over the signed manifest text, so a chunk of an
//! older set left retained on the broker never joins a newer one.
//!
//! Everything here is outside input: sizes are bounded before anything is allocated, and each
//! refusal is a [`WireError`] with its own counter name ([`WireError::counter`]). Fuzzed:
//! `fuzz/fuzz_targets/fleet_messages.rs`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The set-manifest format this gateway reads and writes.
pub const SET_FORMAT: u32 = 1;
/// A set manifest message at most (the bundle manifest with its golden vectors is inside).
pub const MAX_SET_MANIFEST_BYTES: usize = 1 << 20;
/// A model at most.
pub const MAX_MODEL_BYTES: u64 = 32 << 20;
/// Model bytes per chunk at most, and at least (except the last chunk).
pub const MAX_CHUNK_BYTES: u32 = 1 << 20;
pub const MIN_CHUNK_BYTES: u32 = 1 << 10;
/// Chunks per set at most.
pub const MAX_CHUNKS: usize = 4096;
/// The chunk size `netwarden fleet publish` uses unless told otherwise.
pub const DEFAULT_CHUNK_BYTES: u32 = 64 << 10;
/// Chunk header: magic, set id, index, count.
pub const CHUNK_HEADER: usize = 4 + 16 + 2 + 2;
const CHUNK_MAGIC: &[u8; 4] = b"NWC1";

/// The detector names of sets and of the ledger (not the alerts' `flow_ae`: a set names the
/// pipeline it replaces a model of).
pub const FLOW: &str = "flow";
pub const SERIES: &str = "series";
/// Detector names a set may target.
pub const DETECTORS: [&str; 2] = [FLOW, SERIES];

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message of {0} bytes is over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("set manifest is not valid JSON: {0}")]
    Json(String),
    #[error("set manifest format {0} is not supported (this gateway reads {SET_FORMAT})")]
    Format(u32),
    #[error("detector {0:?} is not one of flow, series")]
    Detector(String),
    #[error("set manifest: {0}")]
    Invalid(String),
    #[error("chunk is {0} bytes, shorter than its 24-byte header")]
    ChunkShort(usize),
    #[error("chunk does not start with NWC1")]
    ChunkMagic,
    #[error("chunk index {index} is not below its count {count}")]
    ChunkIndex { index: u16, count: u16 },
    #[error("topic {0:?} is not a fleet model topic")]
    Topic(String),
}

impl WireError {
    /// The counter this refusal is counted under (`fleet_refused_<name>` in stats.json).
    pub fn counter(&self) -> &'static str {
        match self {
            WireError::TooLarge(..) => "too_large",
            WireError::Json(_) | WireError::Format(_) | WireError::Invalid(_) => "bad_set_manifest",
            WireError::Detector(_) => "bad_detector",
            WireError::ChunkShort(_) | WireError::ChunkMagic | WireError::ChunkIndex { .. } => {
                "bad_chunk"
            }
            WireError::Topic(_) => "bad_topic",
        }
    }
}

/// The retained message that announces a bundle and lists its chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetManifest {
    pub format: u32,
    /// `flow` or `series`.
    pub detector: String,
    /// The bundle's `manifest.json`, byte for byte as signed.
    pub manifest: String,
    /// The bundle's `manifest.sig` line (base64 of the ed25519 signature).
    pub signature: String,
    pub model_bytes: u64,
    pub chunk_bytes: u32,
    /// SHA-256 (hex) of each chunk's model bytes, in order.
    pub chunks: Vec<String>,
    /// Only this share of the addressed appliances applies it (by a hash of site/device).
    #[serde(default = "full_canary")]
    pub canary_percent: u8,
    /// When it was published (informational).
    #[serde(default)]
    pub published_ms: u64,
}

fn full_canary() -> u8 {
    100
}

/// The set id of a bundle manifest text.
pub fn set_id(manifest: &str) -> [u8; 16] {
    let d = Sha256::digest(manifest.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SetManifest {
    /// Parses and checks a set manifest message.
    pub fn decode(payload: &[u8]) -> Result<SetManifest, WireError> {
        if payload.len() > MAX_SET_MANIFEST_BYTES {
            return Err(WireError::TooLarge(payload.len(), MAX_SET_MANIFEST_BYTES));
        }
        let m: SetManifest =
            serde_json::from_slice(payload).map_err(|e| WireError::Json(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn id(&self) -> [u8; 16] {
        set_id(&self.manifest)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.format != SET_FORMAT {
            return Err(WireError::Format(self.format));
        }
        if !DETECTORS.contains(&self.detector.as_str()) {
            return Err(WireError::Detector(self.detector.clone()));
        }
        let bad = |s: String| Err(WireError::Invalid(s));
        if self.model_bytes == 0 || self.model_bytes > MAX_MODEL_BYTES {
            return bad(format!(
                "model_bytes {} is not in 1..={MAX_MODEL_BYTES}",
                self.model_bytes
            ));
        }
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&self.chunk_bytes) {
            return bad(format!(
                "chunk_bytes {} is not in {MIN_CHUNK_BYTES}..={MAX_CHUNK_BYTES}",
                self.chunk_bytes
            ));
        }
        let need = self.model_bytes.div_ceil(u64::from(self.chunk_bytes));
        if self.chunks.len() as u64 != need || self.chunks.len() > MAX_CHUNKS {
            return bad(format!(
                "{} chunk hashes listed; {} bytes in chunks of {} need {need} (at most {MAX_CHUNKS})",
                self.chunks.len(),
                self.model_bytes,
                self.chunk_bytes
            ));
        }
        if let Some(i) = self.chunks.iter().position(|h| !is_sha256_hex(h)) {
            return bad(format!("chunks[{i}] is not a hex SHA-256"));
        }
        if self.canary_percent > 100 {
            return bad(format!(
                "canary_percent {} is over 100",
                self.canary_percent
            ));
        }
        if self.signature.len() > 200 {
            return bad("signature is longer than an ed25519 signature in base64".into());
        }
        Ok(())
    }

    /// The model bytes chunk `index` must hold.
    pub fn chunk_len(&self, index: usize) -> usize {
        let start = index as u64 * u64::from(self.chunk_bytes);
        (self.model_bytes - start.min(self.model_bytes)).min(u64::from(self.chunk_bytes)) as usize
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A chunk message, viewed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub set: [u8; 16],
    pub index: u16,
    pub count: u16,
    pub data: &'a [u8],
}

impl<'a> Chunk<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Chunk<'a>, WireError> {
        let limit = CHUNK_HEADER + MAX_CHUNK_BYTES as usize;
        if payload.len() > limit {
            return Err(WireError::TooLarge(payload.len(), limit));
        }
        if payload.len() < CHUNK_HEADER {
            return Err(WireError::ChunkShort(payload.len()));
        }
        if &payload[..4] != CHUNK_MAGIC {
            return Err(WireError::ChunkMagic);
        }
        let mut set = [0u8; 16];
        set.copy_from_slice(&payload[4..20]);
        let index = u16::from_be_bytes([payload[20], payload[21]]);
        let count = u16::from_be_bytes([payload[22], payload[23]]);
        if index >= count {
            return Err(WireError::ChunkIndex { index, count });
        }
        Ok(Chunk {
            set,
            index,
            count,
            data: &payload[CHUNK_HEADER..],
        })
    }

    pub fn encode(set: [u8; 16], index: u16, count: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(CHUNK_HEADER + data.len());
        v.extend_from_slice(CHUNK_MAGIC);
        v.extend_from_slice(&set);
        v.extend_from_slice(&index.to_be_bytes());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend_from_slice(data);
        v
    }
}

/// Who a set is addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Site(String),
    Device(String, String),
}

impl Scope {
    fn path(&self) -> String {
        match self {
            Scope::All => "all".into(),
            Scope::Site(s) => format!("site/{s}"),
            Scope::Device(s, d) => format!("device/{s}/{d}"),
        }
    }
}

/// The base of a set's topics: `<fleet>/models/<detector>/<scope>`.
pub fn set_base(fleet: &str, detector: &str, scope: &Scope) -> String {
    format!("{fleet}/models/{detector}/{}", scope.path())
}

pub fn manifest_topic(base: &str) -> String {
    format!("{base}/manifest")
}

pub fn chunk_topic(base: &str, index: usize) -> String {
    format!("{base}/chunk/{index}")
}

/// The filters an appliance subscribes to: every scope that addresses it, every detector.
pub fn subscriptions(fleet: &str, site: &str, device: &str) -> Vec<String> {
    vec![
        format!("{fleet}/models/+/all/#"),
        format!("{fleet}/models/+/site/{site}/#"),
        format!("{fleet}/models/+/device/{site}/{device}/#"),
    ]
}

/// What a message on a fleet topic is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicKind {
    Manifest,
    Chunk(usize),
}

/// Splits `<fleet>/models/<detector>/<scope...>/(manifest|chunk/<i>)` into the detector, the
/// scope's path (the key a set is assembled under) and the message kind.
pub fn parse_topic<'t>(
    fleet: &str,
    topic: &'t str,
) -> Result<(&'t str, &'t str, TopicKind), WireError> {
    let bad = || WireError::Topic(topic.chars().take(200).collect());
    let rest = topic
        .strip_prefix(fleet)
        .and_then(|r| r.strip_prefix("/models/"))
        .ok_or_else(bad)?;
    let (detector, rest) = rest.split_once('/').ok_or_else(bad)?;
    if let Some(scope) = rest.strip_suffix("/manifest") {
        return Ok((detector, scope, TopicKind::Manifest));
    }
    let (scope, index) = rest.rsplit_once("/chunk/").ok_or_else(bad)?;
    let index: usize = index.parse().map_err(|_| bad())?;
    if index >= MAX_CHUNKS {
        return Err(bad());
    }
    Ok((detector, scope, TopicKind::Chunk(index)))
}

/// Whether `site/device` is inside a canary of `percent` for the set `id` (a stable hash, so
/// the same appliances stay in when the same set is seen again).
pub fn in_canary(percent: u8, id: &[u8; 16], site: &str, device: &str) -> bool {
    if percent >= 100 {
        return true;
    }
    let mut h = Sha256::new();
    h.update(id);
    h.update(site.as_bytes());
    h.update(b"/");
    h.update(device.as_bytes());
    let d = h.finalize();
    (u16::from_be_bytes([d[0], d[1]]) % 100) < u16::from(percent)
}

/// Splits a model into a set manifest and its chunk payloads (`netwarden fleet publish`).
pub fn split(
    detector: &str,
    manifest: String,
    signature: String,
    model: &[u8],
    chunk_bytes: u32,
    canary_percent: u8,
    published_ms: u64,
) -> Result<(SetManifest, Vec<Vec<u8>>), WireError> {
    let id = set_id(&manifest);
    let step = chunk_bytes.max(1) as usize;
    let pieces: Vec<&[u8]> = model.chunks(step).collect();
    let count = u16::try_from(pieces.len())
        .map_err(|_| WireError::Invalid(format!("{} chunks is too many", pieces.len())))?;
    let set = SetManifest {
        format: SET_FORMAT,
        detector: detector.to_string(),
        manifest,
        signature: signature.trim().to_string(),
        model_bytes: model.len() as u64,
        chunk_bytes,
        chunks: pieces.iter().map(|p| hex(&Sha256::digest(p))).collect(),
        canary_percent,
        published_ms,
    };
    set.check()?;
    let chunks = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| Chunk::encode(id, i as u16, count, p))
        .collect();
    Ok((set, chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SetManifest, Vec<Vec<u8>>) {
        let model: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        split(
            "flow",
            "{\"v\":1}".into(),
            "c2ln\n".into(),
            &model,
            2048,
            100,
            7,
        )
        .expect("split")
    }

    #[test]
    fn split_then_decode_round_trips() {
        let (set, chunks) = sample();
        assert_eq!(set.chunks.len(), 3);
        assert_eq!(set.signature, "c2ln");
        let back = SetManifest::decode(&set.encode()).expect("decodes");
        assert_eq!(back, set);
        let c = Chunk::decode(&chunks[2]).expect("chunk");
        assert_eq!((c.index, c.count, c.set), (2, 3, set.id()));
        assert_eq!(c.data.len(), 5000 - 4096);
        assert_eq!(set.chunk_len(2), 5000 - 4096);
        assert_eq!(hex(&Sha256::digest(c.data)), set.chunks[2]);
    }

    #[test]
    fn each_bad_set_manifest_says_why() {
        let (set, _) = sample();
        let cases: Vec<(SetManifest, &str)> = vec![
            (
                SetManifest {
                    format: 2,
                    ..set.clone()
                },
                "format 2",
            ),
            (
                SetManifest {
                    detector: "dns".into(),
                    ..set.clone()
                },
                "detector",
            ),
            (
                SetManifest {
                    model_bytes: 0,
                    ..set.clone()
                },
                "model_bytes 0",
            ),
            (
                SetManifest {
                    chunk_bytes: 10,
                    ..set.clone()
                },
                "chunk_bytes 10",
            ),
            (
                SetManifest {
                    chunks: set.chunks[..2].to_vec(),
                    ..set.clone()
                },
                "2 chunk hashes",
            ),
            (
                SetManifest {
                    chunks: vec!["zz".into(); 3],
                    ..set.clone()
                },
                "not a hex",
            ),
            (
                SetManifest {
                    canary_percent: 101,
                    ..set.clone()
                },
                "canary_percent",
            ),
        ];
        for (m, want) in cases {
            let err = SetManifest::decode(&m.encode()).expect_err(want);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
        let big = vec![b' '; MAX_SET_MANIFEST_BYTES + 1];
        assert_eq!(
            SetManifest::decode(&big).expect_err("big").counter(),
            "too_large"
        );
        assert_eq!(
            SetManifest::decode(b"{").expect_err("json").counter(),
            "bad_set_manifest"
        );
    }

    #[test]
    fn bad_chunks_are_refused_by_reason() {
        assert_eq!(Chunk::decode(b"NWC1"), Err(WireError::ChunkShort(4)));
        assert_eq!(Chunk::decode(&[0u8; 30]), Err(WireError::ChunkMagic));
        let c = Chunk::encode([1; 16], 3, 3, b"x");
        assert_eq!(
            Chunk::decode(&c),
            Err(WireError::ChunkIndex { index: 3, count: 3 })
        );
    }

    #[test]
    fn topics_parse_for_every_scope() {
        let base = set_base("nw/fleet", "flow", &Scope::Device("hq".into(), "r1".into()));
        assert_eq!(base, "nw/fleet/models/flow/device/hq/r1");
        assert_eq!(
            parse_topic("nw/fleet", &manifest_topic(&base)),
            Ok(("flow", "device/hq/r1", TopicKind::Manifest))
        );
        assert_eq!(
            parse_topic(
                "nw/fleet",
                &chunk_topic(&set_base("nw/fleet", "series", &Scope::All), 12)
            ),
            Ok(("series", "all", TopicKind::Chunk(12)))
        );
        assert!(parse_topic("nw/fleet", "nw/fleet/models/flow/all/chunk/x").is_err());
        assert!(parse_topic("nw/fleet", "other/models/flow/all/manifest").is_err());
    }

    #[test]
    fn canary_takes_about_its_share_and_is_stable() {
        let id = [9u8; 16];
        let n = (0..1000)
            .filter(|i| in_canary(30, &id, "s", &format!("d{i}")))
            .count();
        assert!((230..370).contains(&n), "{n} of 1000 in a 30% canary");
        assert_eq!(in_canary(30, &id, "s", "d1"), in_canary(30, &id, "s", "d1"));
        assert!(in_canary(100, &id, "s", "d1"));
        assert!(!in_canary(0, &id, "s", "d1"));
    }
}
