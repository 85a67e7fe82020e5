//! Fleet model delivery messages (`models/fleet/wire.rs`, `assemble.rs`): set manifests,
//! chunks and topics as they come off the broker, fed through the assembler in any order.
//!
//! Input: a sequence of frames `[kind: u8] [index: u8] [len: u16 BE] [payload]`; kind 0 is a
//! set manifest, 1 a chunk on topic index `index`, 2 a topic name; anything after the last
//! whole frame is decoded as a lone set manifest and as a lone chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden::models::fleet::assemble::Assembler;
use netwarden::models::fleet::wire::{parse_topic, Chunk, SetManifest};

fuzz_target!(|data: &[u8]| {
    let mut a = Assembler::default();
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 4 {
        let (kind, index) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if rest.len() < 4 + len {
            break;
        }
        let payload = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now += 1_000;
        match kind % 3 {
            0 => {
                if let Ok(set) = SetManifest::decode(payload) {
                    let _ = a.on_manifest("flow/all", set, now);
                }
            }
            1 => {
                if let Ok(c) = Chunk::decode(payload) {
                    let _ = a.on_chunk("flow/all", usize::from(index), c);
                }
            }
            _ => {
                if let Ok(t) = std::str::from_utf8(payload) {
                    let _ = parse_topic("netwarden/fleet", t);
                }
            }
        }
        let _ = a.expire(now, 5_000);
    }
    let _ = SetManifest::decode(rest);
    let _ = Chunk::decode(rest);
});
