//! Puts a chunk set together, without I/O: set manifests and chunks arrive in any order (a
//! broker delivers retained messages as it likes), chunks of older sets may still be retained,
//! and a set may never complete. A set is handed out only when every chunk listed in its
//! manifest arrived with the right length and SHA-256; a bad chunk fails the whole set at once,
//! and a set still incomplete after the timeout fails with what was missing.
//!
//! Memory is bounded: per scope key one set (the newest manifest) plus chunks that came before
//! their manifest, at most [`MAX_MODEL_BYTES`](super::wire::MAX_MODEL_BYTES) each, and at most
//! [`MAX_KEYS`] keys.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::wire::{hex, Chunk, SetManifest, MAX_MODEL_BYTES};

/// Scope keys (`<detector>/<scope>`) tracked at once; more are refused.
pub const MAX_KEYS: usize = 16;
/// Chunk bytes held at once, all keys together (a router has little memory to spare).
pub const MAX_HELD_BYTES: usize = 2 * MAX_MODEL_BYTES as usize;

/// A complete, hash-checked set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteSet {
    pub key: String,
    pub set: SetManifest,
    pub model: Vec<u8>,
}

/// A set that cannot complete, and why (reported as a refusal with check `chunks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedSet {
    pub key: String,
    pub set: SetManifest,
    pub reason: String,
}

/// What a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Stored; the set is not complete yet.
    Waiting,
    /// Ignored: a chunk of a set other than the key's current one, or a repeat.
    Stale,
    Complete(CompleteSet),
    Failed(FailedSet),
    /// Refused before it was stored (counted under this name).
    Refused(&'static str),
}

#[derive(Debug, Default)]
struct Pending {
    set: Option<SetManifest>,
    id: Option<[u8; 16]>,
    chunks: BTreeMap<u16, Vec<u8>>,
    bytes: usize,
    /// When the current set manifest arrived.
    since_ms: u64,
    /// Completed or failed: later copies are ignored until a new manifest comes.
    finished: bool,
    /// Chunks of another set that came while this one was current: the next set's, sent
    /// before its manifest (the publisher sends the manifest last), or an older set's.
    early: Option<Early>,
}

#[derive(Debug, Default)]
struct Early {
    id: [u8; 16],
    chunks: BTreeMap<u16, Vec<u8>>,
    bytes: usize,
}

#[derive(Debug, Default)]
pub struct Assembler {
    pending: BTreeMap<String, Pending>,
}

impl Assembler {
    pub fn on_manifest(&mut self, key: &str, set: SetManifest, now_ms: u64) -> Progress {
        let id = set.id();
        let Some(p) = self.slot(key) else {
            return Progress::Refused("too_many_scopes");
        };
        if p.id == Some(id) && p.set.is_some() {
            return Progress::Stale;
        }
        // Early chunks of this very set are kept; anything else goes.
        if p.id != Some(id) {
            p.chunks.clear();
            p.bytes = 0;
            if let Some(e) = p.early.take().filter(|e| e.id == id) {
                p.chunks = e.chunks;
                p.bytes = e.bytes;
            }
        }
        p.id = Some(id);
        p.set = Some(set);
        p.since_ms = now_ms;
        p.finished = false;
        let keys: Vec<u16> = p.chunks.keys().copied().collect();
        for index in keys {
            if let Some(fail) = check_chunk(key, p, index) {
                return fail;
            }
        }
        self.try_complete(key)
    }

    pub fn on_chunk(&mut self, key: &str, topic_index: usize, chunk: Chunk<'_>) -> Progress {
        if usize::from(chunk.index) != topic_index {
            return Progress::Refused("chunk_topic_mismatch");
        }
        if self.held_bytes() + chunk.data.len() > MAX_HELD_BYTES {
            return Progress::Refused("too_large");
        }
        let Some(p) = self.slot(key) else {
            return Progress::Refused("too_many_scopes");
        };
        match (&p.set, p.id) {
            (Some(_), Some(id)) if id != chunk.set => return keep_early(p, chunk),
            (Some(_), _) if p.finished => return Progress::Stale,
            (None, Some(id)) if id != chunk.set => {
                // Early chunks of another set: the newest one wins.
                p.chunks.clear();
                p.bytes = 0;
                p.id = Some(chunk.set);
            }
            (None, None) => p.id = Some(chunk.set),
            _ => {}
        }
        if p.chunks.contains_key(&chunk.index) {
            return Progress::Stale;
        }
        if p.bytes + chunk.data.len() > MAX_MODEL_BYTES as usize {
            return Progress::Refused("too_large");
        }
        p.bytes += chunk.data.len();
        p.chunks.insert(chunk.index, chunk.data.to_vec());
        if p.set.is_none() {
            return Progress::Waiting;
        }
        if let Some(fail) = check_chunk(key, p, chunk.index) {
            return fail;
        }
        self.try_complete(key)
    }

    /// Sets still incomplete `timeout_ms` after their manifest arrived fail.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<FailedSet> {
        let mut out = Vec::new();
        for (key, p) in &mut self.pending {
            let Some(set) = &p.set else { continue };
            if p.finished || now_ms < p.since_ms.saturating_add(timeout_ms) {
                continue;
            }
            let missing: Vec<usize> = (0..set.chunks.len())
                .filter(|i| !p.chunks.contains_key(&(*i as u16)))
                .collect();
            out.push(FailedSet {
                key: key.clone(),
                set: set.clone(),
                reason: format!(
                    "incomplete after {} s: {} of {} chunks, missing {}",
                    timeout_ms / 1000,
                    set.chunks.len() - missing.len(),
                    set.chunks.len(),
                    list(&missing)
                ),
            });
            p.finished = true;
            p.chunks.clear();
            p.bytes = 0;
        }
        out
    }

    /// Chunk bytes held, all keys together.
    pub fn held_bytes(&self) -> usize {
        self.pending
            .values()
            .map(|p| p.bytes + p.early.as_ref().map_or(0, |e| e.bytes))
            .sum()
    }

    fn slot(&mut self, key: &str) -> Option<&mut Pending> {
        if !self.pending.contains_key(key) && self.pending.len() >= MAX_KEYS {
            return None;
        }
        Some(self.pending.entry(key.to_string()).or_default())
    }

    fn try_complete(&mut self, key: &str) -> Progress {
        let Some(p) = self.pending.get_mut(key) else {
            return Progress::Waiting;
        };
        let Some(set) = &p.set else {
            return Progress::Waiting;
        };
        if p.finished || p.chunks.len() < set.chunks.len() {
            return Progress::Waiting;
        }
        let mut model = Vec::with_capacity(set.model_bytes as usize);
        for c in p.chunks.values() {
            model.extend_from_slice(c);
        }
        p.finished = true;
        p.chunks.clear();
        p.bytes = 0;
        Progress::Complete(CompleteSet {
            key: key.to_string(),
            set: set.clone(),
            model,
        })
    }
}

/// Keeps a chunk of a set other than the current one, in case its manifest comes next.
fn keep_early(p: &mut Pending, chunk: Chunk<'_>) -> Progress {
    let e = p.early.get_or_insert_with(|| Early {
        id: chunk.set,
        ..Early::default()
    });
    if e.id != chunk.set {
        *e = Early {
            id: chunk.set,
            ..Early::default()
        };
    }
    if e.chunks.contains_key(&chunk.index) {
        return Progress::Stale;
    }
    if e.bytes + chunk.data.len() > MAX_MODEL_BYTES as usize {
        return Progress::Refused("too_large");
    }
    e.bytes += chunk.data.len();
    e.chunks.insert(chunk.index, chunk.data.to_vec());
    Progress::Waiting
}

/// Checks chunk `index` against the set's manifest; a bad one fails the set.
fn check_chunk(key: &str, p: &mut Pending, index: u16) -> Option<Progress> {
    let set = p.set.as_ref()?;
    let data = p.chunks.get(&index)?;
    let i = usize::from(index);
    let reason = if i >= set.chunks.len() {
        format!("chunk {i} is beyond the {} listed", set.chunks.len())
    } else if data.len() != set.chunk_len(i) {
        format!(
            "chunk {i} has {} bytes, the manifest says {} (truncated or padded)",
            data.len(),
            set.chunk_len(i)
        )
    } else if hex(&Sha256::digest(data)) != set.chunks[i].to_ascii_lowercase() {
        format!("chunk {i} SHA-256 differs from the manifest's")
    } else {
        return None;
    };
    let failed = FailedSet {
        key: key.to_string(),
        set: set.clone(),
        reason,
    };
    p.finished = true;
    p.chunks.clear();
    p.bytes = 0;
    Some(Progress::Failed(failed))
}

fn list(v: &[usize]) -> String {
    let shown: Vec<String> = v.iter().take(8).map(|i| i.to_string()).collect();
    if v.len() > 8 {
        format!("{} ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::split;
    use super::*;

    fn set(tag: &str) -> (SetManifest, Vec<Vec<u8>>, Vec<u8>) {
        let model: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        let (s, c) = split(
            "flow",
            format!("{{\"t\":\"{tag}\"}}"),
            "c2ln".into(),
            &model,
            2048,
            100,
            0,
        )
        .expect("split");
        (s, c, model)
    }

    fn feed(a: &mut Assembler, key: &str, chunks: &[Vec<u8>], which: &[usize]) -> Vec<Progress> {
        which
            .iter()
            .map(|&i| a.on_chunk(key, i, Chunk::decode(&chunks[i]).expect("chunk")))
            .collect()
    }

    #[test]
    fn completes_in_any_order_once_every_chunk_is_there() {
        let (s, chunks, model) = set("a");
        let mut a = Assembler::default();
        assert_eq!(
            feed(&mut a, "flow/all", &chunks, &[2, 0]),
            vec![Progress::Waiting; 2]
        );
        assert_eq!(a.on_manifest("flow/all", s.clone(), 0), Progress::Waiting);
        match &feed(&mut a, "flow/all", &chunks, &[1])[0] {
            Progress::Complete(c) => assert_eq!(c.model, model),
            other => panic!("{other:?}"),
        }
        // The same set again (a reconnect's retained copies) is not handed out twice.
        assert_eq!(a.on_manifest("flow/all", s, 5), Progress::Stale);
        assert_eq!(
            feed(&mut a, "flow/all", &chunks, &[0]),
            vec![Progress::Stale]
        );
    }

    #[test]
    fn stale_chunks_of_an_older_set_never_join_a_newer_one() {
        let (old, old_chunks, _) = set("old");
        let (new, new_chunks, _) = set("new");
        let mut a = Assembler::default();
        a.on_manifest("k", old, 0);
        feed(&mut a, "k", &old_chunks, &[0, 1]);
        assert_eq!(a.on_manifest("k", new.clone(), 1), Progress::Waiting);
        assert_eq!(
            feed(&mut a, "k", &old_chunks, &[2]),
            vec![Progress::Waiting]
        );
        let got = feed(&mut a, "k", &new_chunks, &[0, 1, 2]);
        match &got[2] {
            Progress::Complete(c) => assert_eq!(c.set, new),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunks_of_the_next_set_sent_before_its_manifest_are_kept() {
        // `fleet publish` sends the chunks first, the manifest last; the key still holds the
        // previous (finished) set when the new chunks arrive.
        let (old, old_chunks, _) = set("old");
        let (new, new_chunks, model) = set("new");
        let mut a = Assembler::default();
        a.on_manifest("k", old, 0);
        let done = feed(&mut a, "k", &old_chunks, &[0, 1, 2]);
        assert!(matches!(done[2], Progress::Complete(_)));
        assert_eq!(
            feed(&mut a, "k", &new_chunks, &[0, 1, 2]),
            vec![Progress::Waiting; 3]
        );
        match a.on_manifest("k", new, 1) {
            Progress::Complete(c) => assert_eq!(c.model, model),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_truncated_or_altered_chunk_fails_the_set_with_its_index() {
        let (s, chunks, _) = set("a");
        let mut a = Assembler::default();
        a.on_manifest("k", s.clone(), 0);
        let mut short = chunks[1].clone();
        short.truncate(short.len() - 10);
        match a.on_chunk("k", 1, Chunk::decode(&short).expect("chunk")) {
            Progress::Failed(f) => {
                assert!(f.reason.contains("chunk 1 has 2038 bytes"), "{}", f.reason)
            }
            other => panic!("{other:?}"),
        }
        let mut b = Assembler::default();
        b.on_manifest("k", s, 0);
        let mut flipped = chunks[0].clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        match b.on_chunk("k", 0, Chunk::decode(&flipped).expect("chunk")) {
            Progress::Failed(f) => assert!(f.reason.contains("chunk 0 SHA-256"), "{}", f.reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_incomplete_set_expires_naming_what_is_missing() {
        let (s, chunks, _) = set("a");
        let mut a = Assembler::default();
        a.on_manifest("k", s, 1_000);
        feed(&mut a, "k", &chunks, &[0]);
        assert!(a.expire(30_000, 60_000).is_empty());
        let failed = a.expire(61_000, 60_000);
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0].reason.contains("1 of 3 chunks, missing 1, 2"),
            "{}",
            failed[0].reason
        );
        assert!(a.expire(200_000, 60_000).is_empty(), "reported once");
    }

    #[test]
    fn memory_held_is_bounded_across_keys() {
        let mut a = Assembler::default();
        let big = vec![7u8; super::super::wire::MAX_CHUNK_BYTES as usize];
        let mut refused = 0;
        for k in 0..MAX_KEYS {
            for i in 0..40u16 {
                let c = Chunk::encode([k as u8; 16], i, 40, &big);
                let key = format!("flow/k{k}");
                if a.on_chunk(&key, usize::from(i), Chunk::decode(&c).expect("chunk"))
                    == Progress::Refused("too_large")
                {
                    refused += 1;
                }
            }
        }
        assert!(a.held_bytes() <= MAX_HELD_BYTES, "{}", a.held_bytes());
        assert!(refused > 0);
    }

    #[test]
    fn a_chunk_under_the_wrong_topic_index_is_refused() {
        let (_, chunks, _) = set("a");
        let mut a = Assembler::default();
        let p = a.on_chunk("k", 5, Chunk::decode(&chunks[0]).expect("chunk"));
        assert_eq!(p, Progress::Refused("chunk_topic_mismatch"));
    }
}
