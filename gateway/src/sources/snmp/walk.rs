//! The GetBulk walk of a poll without I/O: the columns asked for, where each continues, how a
//! reply's varbinds fold into interface rows. [`super::client`] sends the requests; the fuzz
//! target (`fuzz/fuzz_targets/snmp_replies.rs`) feeds raw replies through
//! [`walk_from_replies`].

use std::collections::BTreeMap;

use snmp2::{v3, Value};

use super::state::{IfRow, Walk};

/// sysUpTime (its GetNext is sysUpTime.0).
const SYS_UPTIME: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 3];
const SYS_UPTIME_0: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
const IF_NAME: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1];
const IF_DESCR: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 2];
const IF_HC_IN: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6];
const IF_HC_OUT: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10];
const IF_IN: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 10];
const IF_OUT: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 16];

/// The first walk of a poll (with sysUpTime.0) and the fallback for agents without 64-bit
/// counters.
pub(super) const HC_COLUMNS: &[&[u64]] = &[IF_NAME, IF_DESCR, IF_HC_IN, IF_HC_OUT];
pub(super) const COUNTER32_COLUMNS: &[&[u64]] = &[IF_IN, IF_OUT];

/// A walk never takes more requests than this (a looping or endless agent).
pub(super) const MAX_WALK_REQUESTS: usize = 10_000;

/// An owned varbind value (snmp2's borrow the session's receive buffer).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Counter(u64),
    Text(String),
    Ticks(u32),
    End,
    Other,
}

impl Val {
    fn from_value(v: &Value<'_>) -> Val {
        match v {
            Value::Counter64(n) => Val::Counter(*n),
            Value::Counter32(n) | Value::Unsigned32(n) => Val::Counter(u64::from(*n)),
            Value::Integer(n) => u64::try_from(*n).map(Val::Counter).unwrap_or(Val::Other),
            Value::OctetString(s) => Val::Text(String::from_utf8_lossy(s).into_owned()),
            Value::Timeticks(t) => Val::Ticks(*t),
            Value::EndOfMibView => Val::End,
            _ => Val::Other,
        }
    }
}

pub(super) type Varbinds = Vec<(Vec<u64>, Val)>;

/// A reply's varbinds as owned values (snmp2's borrow the session's receive buffer).
pub(super) fn owned_varbinds(pdu: snmp2::Pdu<'_>) -> Varbinds {
    pdu.varbinds
        .map(|(oid, val)| {
            let arcs: Vec<u64> = oid.iter().map(|i| i.collect()).unwrap_or_default();
            (arcs, Val::from_value(&val))
        })
        .collect()
}

/// Where a GetBulk walk over several columns stands; no I/O, so a reply's handling is testable
/// (and fuzzed) on its own.
pub(super) struct WalkCursor {
    columns: &'static [&'static [u64]],
    /// Where each still-active column continues from.
    cursor: Vec<(usize, Vec<u64>)>,
    /// The next request still carries sysUpTime as a non-repeater.
    first: bool,
    pub(super) sys_uptime: Option<u32>,
}

impl WalkCursor {
    pub(super) fn new(columns: &'static [&'static [u64]], uptime: bool) -> WalkCursor {
        WalkCursor {
            columns,
            cursor: columns.iter().map(|c| c.to_vec()).enumerate().collect(),
            first: uptime,
            sys_uptime: None,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.cursor.is_empty()
    }

    pub(super) fn request_oids(&self) -> Vec<&[u64]> {
        let mut oids: Vec<&[u64]> = Vec::with_capacity(self.cursor.len() + 1);
        if self.first {
            oids.push(SYS_UPTIME);
        }
        oids.extend(self.cursor.iter().map(|(_, o)| o.as_slice()));
        oids
    }

    pub(super) fn non_repeaters(&self) -> u32 {
        u32::from(self.first)
    }

    /// Folds one reply into `rows`. A column ends when its OIDs leave it, stop increasing, or
    /// the agent says endOfMibView.
    pub(super) fn absorb(&mut self, vbs: Varbinds, rows: &mut BTreeMap<u32, IfRow>) {
        let mut it = vbs.into_iter();
        if self.first {
            self.first = false;
            if let Some((oid, Val::Ticks(t))) = it.next() {
                if oid == SYS_UPTIME_0 {
                    self.sys_uptime = Some(t);
                }
            }
        }
        // Repetitions come interleaved: one varbind per active column, in request order.
        let width = self.cursor.len();
        if width == 0 {
            return;
        }
        let mut done = vec![false; width];
        for (i, (oid, val)) in it.enumerate() {
            let slot = i % width;
            if done[slot] {
                continue;
            }
            let (col, ref mut next) = self.cursor[slot];
            let prefix = self.columns[col];
            let index = match oid.strip_prefix(prefix) {
                Some([index]) if val != Val::End && oid > *next => *index,
                _ => {
                    done[slot] = true;
                    continue;
                }
            };
            let Ok(index) = u32::try_from(index) else {
                done[slot] = true;
                continue;
            };
            next.clone_from(&oid);
            let row = rows.entry(index).or_insert_with(|| IfRow {
                index,
                ..IfRow::default()
            });
            store_column(row, prefix, val);
        }
        let mut slot = 0;
        self.cursor.retain(|_| {
            let keep = !done[slot];
            slot += 1;
            keep
        });
    }
}

/// The pure half of a poll, fed raw reply datagrams instead of a socket: each reply is decoded
/// as snmp2's session decodes it (v1/v2c, or v3 with `security`), its varbinds are folded into
/// the walk's rows exactly as [`Client::poll`](super::Client::poll) does, and the rows become
/// a [`Walk`]. For the fuzz target (`fuzz/fuzz_targets/snmp_replies.rs`) and tests; returns `None` when a reply
/// does not decode or carries no sysUpTime.0, as `poll` would fail. A reply that only updates
/// the SNMPv3 engine state (discovery) counts as a retried request, as in the client.
pub fn walk_from_replies<'a>(
    replies: impl IntoIterator<Item = &'a [u8]>,
    mut security: Option<&mut v3::Security>,
) -> Option<Walk> {
    let mut rows = BTreeMap::new();
    let mut walk = WalkCursor::new(HC_COLUMNS, true);
    let mut replies = replies.into_iter();
    for _ in 0..MAX_WALK_REQUESTS {
        if walk.is_done() {
            break;
        }
        let bytes = replies.next()?;
        let pdu = match snmp2::Pdu::from_bytes_with_security(bytes, security.as_deref_mut()) {
            Ok(pdu) => pdu,
            // SNMPv3 discovery or a moved engine clock: the client sends the request again.
            Err(snmp2::Error::AuthUpdated) => continue,
            Err(_) => return None,
        };
        if pdu.error_status != 0 {
            return None;
        }
        walk.absorb(owned_varbinds(pdu), &mut rows);
    }
    Some(Walk {
        sys_uptime_cs: walk.sys_uptime?,
        rows: rows.into_values().collect(),
    })
}

fn store_column(row: &mut IfRow, column: &[u64], val: Val) {
    match (column, val) {
        (c, Val::Text(s)) if c == IF_NAME => row.name = Some(s),
        (c, Val::Text(s)) if c == IF_DESCR => row.descr = Some(s),
        (c, Val::Counter(n)) if c == IF_HC_IN => row.hc_in = Some(n),
        (c, Val::Counter(n)) if c == IF_HC_OUT => row.hc_out = Some(n),
        (c, Val::Counter(n)) if c == IF_IN => row.in32 = u32::try_from(n).ok(),
        (c, Val::Counter(n)) if c == IF_OUT => row.out32 = u32::try_from(n).ok(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The replies of one poll from a fuzz seed (`fuzz/make-seeds.py` writes them with a BER
    /// encoder of its own, so this also checks that the seeds reach the walk logic).
    fn first_poll(seed: &[u8]) -> Vec<&[u8]> {
        let mut rest = &seed[1..];
        let mut out = Vec::new();
        while let [hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if len == 0 {
                break;
            }
            out.push(&tail[..len]);
            rest = &tail[len..];
        }
        out
    }

    #[test]
    fn replies_fold_into_a_walk_v2c_and_v3() {
        let v2c = include_bytes!("../../../../fuzz/seeds/snmp_replies/v2c-three-polls");
        let walk = walk_from_replies(first_poll(v2c), None).expect("v2c walk");
        assert_eq!(walk.sys_uptime_cs, 1000);
        let names: Vec<_> = walk.rows.iter().map(IfRow::display_name).collect();
        assert_eq!(names, ["eth1", "eth2"]);
        assert_eq!(walk.rows[1].hc_in, Some(20_000));
        assert_eq!(walk.rows[1].hc_out, Some(10_000));

        let v3 = include_bytes!("../../../../fuzz/seeds/snmp_replies/v3-noauth-three-polls");
        let mut sec = v3::Security::new(b"fuzz", b"").with_auth(v3::Auth::NoAuthNoPriv);
        let walk3 = walk_from_replies(first_poll(v3), Some(&mut sec)).expect("v3 walk");
        assert_eq!(walk3, walk);
    }

    #[test]
    fn a_reply_that_does_not_decode_or_lacks_uptime_fails_the_poll() {
        assert_eq!(walk_from_replies([&b"\x30\x03\x02\x01"[..]], None), None);
        assert_eq!(walk_from_replies(Vec::<&[u8]>::new(), None), None);
    }
}
