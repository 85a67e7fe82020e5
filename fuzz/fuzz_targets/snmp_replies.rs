//! SNMP replies as our client handles them (`sources/snmp/client.rs`): each datagram is decoded
//! by snmp2 as the session decodes it (v2c, or v3 under a USM user), its varbinds are folded
//! into the interface walk (GetBulk interleaving, column ends, OID ordering), and every walk
//! goes through the interface table and counter arithmetic (`state.rs`, `counter.rs`).
//!
//! Input: one mode byte (v2c, v3 noAuthNoPriv, v3 authNoPriv SHA-1, v3 authPriv AES-128),
//! then replies framed as `[length: u16 BE] [datagram]`; a zero-length frame ends a poll.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden::sources::snmp::config::Selection;
use netwarden::sources::snmp::walk::walk_from_replies;
use netwarden::sources::snmp::TargetState;
use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut security = match mode % 4 {
        0 => None,
        1 => Some(Security::new(b"fuzz", b"").with_auth(Auth::NoAuthNoPriv)),
        2 => Some(
            Security::new(b"fuzz", b"fuzz-auth-pass")
                .with_auth_protocol(AuthProtocol::Sha1)
                .with_auth(Auth::AuthNoPriv),
        ),
        _ => Some(
            Security::new(b"fuzz", b"fuzz-auth-pass")
                .with_auth_protocol(AuthProtocol::Sha1)
                .with_auth(Auth::AuthPriv {
                    cipher: Cipher::Aes128,
                    privacy_password: b"fuzz-priv-pass".to_vec(),
                }),
        ),
    };
    let mut polls: Vec<Vec<&[u8]>> = vec![Vec::new()];
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        if len == 0 {
            polls.push(Vec::new());
        } else if let Some(poll) = polls.last_mut() {
            poll.push(&tail[..len]);
        }
        rest = &tail[len..];
    }
    let mut state = TargetState::new("fuzz", Selection::All, 60_000);
    let mut out = Vec::new();
    for (i, poll) in polls.into_iter().enumerate() {
        let now_ms = 1_700_000_000_000 + 10_000 * i as u64;
        match walk_from_replies(poll, security.as_mut()) {
            Some(walk) => state.on_walk(&walk, now_ms, &mut out),
            None => state.on_failure(now_ms, &mut out),
        };
    }
});
