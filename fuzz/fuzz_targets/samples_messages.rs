//! Samples over MQTT (`sinks/mqtt/samples/`): requests and acks (JSON) and chunks (binary) as
//! they come off the broker, chunks fed through the central side's receiver in any order.
//!
//! Input: a sequence of frames `[kind: u8] [len: u16 BE] [payload]`; kind 0 is a request, 1 an
//! ack, 2 a chunk, 3 a control topic; anything after the last whole frame is decoded as all
//! three.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden::sinks::mqtt::samples::{
    parse_control_topic, Ack, Receiver, Request, SampleChunk, Sender, SenderStats,
};

fuzz_target!(|data: &[u8]| {
    let mut rx = Receiver::new("fuzz");
    let mut sender: Option<Sender> = None;
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 3 {
        let kind = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < 3 + len {
            break;
        }
        let payload = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += 1_000;
        match kind % 4 {
            0 => {
                if let Ok(r) = Request::decode(payload) {
                    // A small snapshot keeps each run quick; the request picks its chunking.
                    let mut s = Sender::new(&r, payload.repeat(8), now);
                    let _ = s.poll(&mut SenderStats::default());
                    sender = Some(s);
                }
            }
            1 => {
                if let (Ok(a), Some(s)) = (Ack::decode(payload), sender.as_mut()) {
                    s.on_ack(a.next, now);
                    let _ = s.tick(now, &mut SenderStats::default());
                    let _ = s.poll(&mut SenderStats::default());
                }
            }
            2 => {
                if let Ok(c) = SampleChunk::decode(payload) {
                    let _ = rx.on_chunk(c);
                }
            }
            _ => {
                if let Ok(t) = std::str::from_utf8(payload) {
                    let _ = parse_control_topic("netwarden/fleet/samples/s/d", t);
                }
            }
        }
    }
    let _ = Request::decode(rest);
    let _ = Ack::decode(rest);
    if let Ok(c) = SampleChunk::decode(rest) {
        let _ = rx.on_chunk(c);
    }
});
