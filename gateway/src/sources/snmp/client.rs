//! The SNMP requests of one target over `snmp2`'s `AsyncSession`, made robust.
//!
//! snmp2 0.5 has no timeouts or retries, and a session whose request was abandoned can still get
//! that request's late reply, which the next request rejects as `RequestIdMismatch`. So:
//! - every request (and the SNMPv3 discovery in `init()`) runs under `tokio::time::timeout`;
//! - after a timeout or a mismatched reply the session is dropped and rebuilt (new socket, so
//!   late replies go nowhere), and the request is tried again up to `retries` more times;
//! - `AuthUpdated` (the agent's engine boots/time moved, e.g. it restarted) is retried at once;
//! - an engine-ID mismatch (the agent was replaced or re-keyed) or a boots/time window error
//!   rebuilds the session and runs discovery (`init()`) again;
//! - authentication failures are not retried: they are configuration errors and say so.
//!
//! A poll is one GetBulk walk over ifName, ifDescr, ifHCInOctets, ifHCOutOctets, with
//! sysUpTime.0 as a non-repeater of the first request. Only when some row lacks the 64-bit
//! counters are ifInOctets/ifOutOctets walked too. OIDs are numeric (Debian ships no IF-MIB).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use snmp2::{v3, AsyncSession, Oid, Value};

use super::config::TargetConfig;
use super::credentials::{AuthProtocol, Credentials, PrivProtocol};
use super::state::{IfRow, Walk};
use crate::metrics::Metrics;

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
const HC_COLUMNS: &[&[u64]] = &[IF_NAME, IF_DESCR, IF_HC_IN, IF_HC_OUT];
const COUNTER32_COLUMNS: &[&[u64]] = &[IF_IN, IF_OUT];

/// A walk never takes more requests than this (a looping or endless agent).
const MAX_WALK_REQUESTS: usize = 10_000;
/// `AuthUpdated` retries per request (discovery takes at most two round trips).
const MAX_AUTH_UPDATES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("no reply from {addr} within {timeout:?} ({attempts} attempt(s)): {hint}")]
    Timeout {
        addr: SocketAddr,
        timeout: Duration,
        attempts: u32,
        hint: &'static str,
    },
    #[error("SNMPv3 authentication with {addr} failed for user {user:?}: {detail} (wrong user name, password, or auth/priv protocol?)")]
    Auth {
        addr: SocketAddr,
        user: String,
        detail: String,
    },
    #[error("cannot open a UDP socket to {addr}: {error}")]
    Socket {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("{addr} answered with error-status {status} at varbind {index}")]
    Agent {
        addr: SocketAddr,
        status: u32,
        index: u32,
    },
    #[error("bad reply from {addr}: {detail}")]
    Protocol { addr: SocketAddr, detail: String },
}

impl PollError {
    /// A short stable word for status and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::Timeout { .. } => "timeout",
            PollError::Auth { .. } => "auth_error",
            PollError::Socket { .. } => "socket_error",
            PollError::Agent { .. } => "agent_error",
            PollError::Protocol { .. } => "protocol_error",
        }
    }
}

/// An owned varbind value (snmp2's borrow the session's receive buffer).
#[derive(Debug, Clone, PartialEq)]
enum Val {
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

type Varbinds = Vec<(Vec<u64>, Val)>;

/// The SNMP side of one target: its session (rebuilt when needed) and request logic.
pub struct Client {
    cfg: TargetConfig,
    metrics: Arc<Metrics>,
    session: Option<AsyncSession>,
    next_req_id: i32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.cfg.name)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

impl Client {
    pub fn new(cfg: TargetConfig, metrics: Arc<Metrics>, seed: u32) -> Client {
        Client {
            cfg,
            metrics,
            session: None,
            next_req_id: (seed & 0x3FFF_FFFF) as i32,
        }
    }

    /// One full poll: sysUpTime and the interface columns.
    pub async fn poll(&mut self) -> Result<Walk, PollError> {
        let mut rows: BTreeMap<u32, IfRow> = BTreeMap::new();
        let uptime = self.walk(HC_COLUMNS, true, &mut rows).await?;
        if rows
            .values()
            .any(|r| r.hc_in.is_none() || r.hc_out.is_none())
        {
            self.walk(COUNTER32_COLUMNS, false, &mut rows).await?;
        }
        let sys_uptime_cs = uptime.ok_or_else(|| PollError::Protocol {
            addr: self.cfg.address,
            detail: "no sysUpTime.0 in the reply".to_string(),
        })?;
        Ok(Walk {
            sys_uptime_cs,
            rows: rows.into_values().collect(),
        })
    }

    /// Walks `columns` together with GetBulk; with `uptime`, sysUpTime.0 rides along as a
    /// non-repeater of the first request. Fills `rows`; returns sysUpTime when asked for.
    async fn walk(
        &mut self,
        columns: &'static [&'static [u64]],
        uptime: bool,
        rows: &mut BTreeMap<u32, IfRow>,
    ) -> Result<Option<u32>, PollError> {
        let mut walk = WalkCursor::new(columns, uptime);
        for _ in 0..MAX_WALK_REQUESTS {
            if walk.is_done() {
                return Ok(walk.sys_uptime);
            }
            let oids = walk.request_oids();
            let vbs = self.getbulk(&oids, walk.non_repeaters()).await?;
            walk.absorb(vbs, rows);
        }
        Err(PollError::Protocol {
            addr: self.cfg.address,
            detail: format!("walk did not end after {MAX_WALK_REQUESTS} requests"),
        })
    }

    /// One GetBulk with timeout, retries, session rebuilds and v3 re-discovery.
    async fn getbulk(
        &mut self,
        oids: &[&[u64]],
        non_repeaters: u32,
    ) -> Result<Varbinds, PollError> {
        let addr = self.cfg.address;
        let mut oid_objs = Vec::with_capacity(oids.len());
        for o in oids {
            oid_objs.push(Oid::from(o).map_err(|e| PollError::Protocol {
                addr,
                detail: format!("bad OID {o:?}: {e:?}"),
            })?);
        }
        let refs: Vec<&Oid<'_>> = oid_objs.iter().collect();
        let timeout = self.cfg.timeout;
        let attempts = self.cfg.retries + 1;
        let mut auth_updates = 0;
        let mut attempt = 0;
        while attempt < attempts {
            if let Err(e) = self.ensure_session().await {
                match e {
                    Attempt::Retry => {
                        attempt += 1;
                        continue;
                    }
                    Attempt::Fail(e) => return Err(e),
                }
            }
            let Some(session) = self.session.as_mut() else {
                attempt += 1;
                continue;
            };
            let max_rep = self.cfg.max_repetitions;
            let raw =
                match tokio::time::timeout(timeout, session.getbulk(&refs, non_repeaters, max_rep))
                    .await
                {
                    Err(_elapsed) => Raw::Elapsed,
                    Ok(Ok(pdu)) if pdu.error_status != 0 => {
                        Raw::AgentError(pdu.error_status, pdu.error_index)
                    }
                    Ok(Ok(pdu)) => Raw::Varbinds(owned_varbinds(pdu)),
                    Ok(Err(e)) => Raw::Snmp(e),
                };
            let handled = match raw {
                Raw::Varbinds(v) => return Ok(v),
                Raw::AgentError(status, index) => {
                    return Err(PollError::Agent {
                        addr,
                        status,
                        index,
                    })
                }
                Raw::Elapsed => {
                    self.metrics.snmp_timeouts.fetch_add(1, Ordering::Relaxed);
                    Handled::Rebuild
                }
                Raw::Snmp(e) => self.classify(e),
            };
            match handled {
                Handled::Again if auth_updates < MAX_AUTH_UPDATES => auth_updates += 1,
                Handled::Again => attempt += 1,
                Handled::Rebuild => {
                    self.drop_session();
                    attempt += 1;
                }
                Handled::Fail(e) => return Err(e),
            }
        }
        let hint = match self.cfg.credentials {
            Credentials::V2c { .. } => "agent down or unreachable, wrong community, or not allowed by the agent's access control",
            // net-snmp drops what it cannot decrypt without a Report.
            Credentials::V3(_) => "agent down or unreachable, not allowed by its access control, or a wrong privacy password or protocol (the agent drops what it cannot decrypt)",
        };
        Err(PollError::Timeout {
            addr,
            timeout,
            attempts,
            hint,
        })
    }

    /// Decides what an snmp2 error means for the request.
    fn classify(&mut self, e: snmp2::Error) -> Handled {
        let addr = self.cfg.address;
        match e {
            snmp2::Error::AuthUpdated => Handled::Again,
            snmp2::Error::RequestIdMismatch => {
                self.metrics
                    .snmp_stale_replies
                    .fetch_add(1, Ordering::Relaxed);
                Handled::Rebuild
            }
            snmp2::Error::AuthFailure(
                v3::AuthErrorKind::EngineIdMismatch
                | v3::AuthErrorKind::EngineBootsMismatch
                | v3::AuthErrorKind::EngineTimeMismatch
                | v3::AuthErrorKind::SecurityNotReady,
            ) => {
                self.metrics
                    .snmp_engine_rediscoveries
                    .fetch_add(1, Ordering::Relaxed);
                Handled::Rebuild
            }
            snmp2::Error::AuthFailure(kind) => Handled::Fail(self.auth_error(kind.to_string())),
            snmp2::Error::AsnWrongType if matches!(self.cfg.credentials, Credentials::V3(_)) => {
                // A v3 agent answers an unknown user or a bad level with a Report PDU.
                Handled::Fail(
                    self.auth_error("the agent sent a Report instead of a Response".into()),
                )
            }
            snmp2::Error::Send | snmp2::Error::Receive => {
                // ICMP unreachable and friends surface here; rebuild and try again.
                Handled::Rebuild
            }
            other => Handled::Fail(PollError::Protocol {
                addr,
                detail: other.to_string(),
            }),
        }
    }

    fn auth_error(&self, detail: String) -> PollError {
        self.metrics
            .snmp_auth_errors
            .fetch_add(1, Ordering::Relaxed);
        let user = match &self.cfg.credentials {
            Credentials::V3(v3) => v3.user.clone(),
            Credentials::V2c { .. } => String::new(),
        };
        PollError::Auth {
            addr: self.cfg.address,
            user,
            detail,
        }
    }

    fn drop_session(&mut self) {
        if self.session.take().is_some() {
            self.metrics
                .snmp_session_rebuilds
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Opens the session when there is none (and runs v3 discovery under the timeout).
    async fn ensure_session(&mut self) -> Result<(), Attempt> {
        if self.session.is_some() {
            return Ok(());
        }
        let addr = self.cfg.address;
        let req_id = self.next_req_id;
        // A fresh range per session, so nothing from an old one can match.
        self.next_req_id = self.next_req_id.wrapping_add(1 << 20) & 0x3FFF_FFFF;
        let socket_err = |error| Attempt::Fail(PollError::Socket { addr, error });
        let mut session = match &self.cfg.credentials {
            Credentials::V2c { community } => {
                AsyncSession::new_v2c(addr, community.as_bytes(), req_id)
                    .await
                    .map_err(socket_err)?
            }
            Credentials::V3(c) => {
                let mut sec = v3::Security::new(c.user.as_bytes(), b"");
                match &c.auth {
                    None => sec = sec.with_auth(v3::Auth::NoAuthNoPriv),
                    Some((proto, pw)) => {
                        sec = v3::Security::new(c.user.as_bytes(), pw.as_bytes())
                            .with_auth_protocol(auth_protocol(*proto));
                        sec = match &c.privacy {
                            None => sec.with_auth(v3::Auth::AuthNoPriv),
                            Some((p, ppw)) => sec.with_auth(v3::Auth::AuthPriv {
                                cipher: cipher(*p),
                                privacy_password: ppw.as_bytes().to_vec(),
                            }),
                        };
                        // AES-192/256 keys longer than the auth digest are extended the way
                        // net-snmp's "AES-192"/"AES-256" do (draft-blumenthal-aes-usm-04);
                        // snmp2 ignores this where no extension is needed.
                        if matches!(
                            &c.privacy,
                            Some((PrivProtocol::Aes192 | PrivProtocol::Aes256, _))
                        ) {
                            sec = sec.with_key_extension_method(v3::KeyExtension::Blumenthal);
                        }
                    }
                }
                AsyncSession::new_v3(addr, req_id, sec)
                    .await
                    .map_err(socket_err)?
            }
        };
        if matches!(self.cfg.credentials, Credentials::V3(_)) {
            match tokio::time::timeout(self.cfg.timeout, session.init()).await {
                Err(_) => {
                    self.metrics.snmp_timeouts.fetch_add(1, Ordering::Relaxed);
                    return Err(Attempt::Retry);
                }
                Ok(Err(e)) => {
                    return match self.classify(e) {
                        Handled::Fail(e) => Err(Attempt::Fail(e)),
                        Handled::Again | Handled::Rebuild => Err(Attempt::Retry),
                    }
                }
                Ok(Ok(())) => {}
            }
        }
        self.session = Some(session);
        Ok(())
    }
}

/// What one request attempt produced, owned (the reply borrows the session).
enum Raw {
    Elapsed,
    Varbinds(Varbinds),
    AgentError(u32, u32),
    Snmp(snmp2::Error),
}

enum Handled {
    /// Repeat the request on the same session (security parameters were updated).
    Again,
    /// Drop the session, open a new one (and rediscover), and repeat.
    Rebuild,
    Fail(PollError),
}

enum Attempt {
    Retry,
    Fail(PollError),
}

fn auth_protocol(p: AuthProtocol) -> v3::AuthProtocol {
    match p {
        AuthProtocol::Md5 => v3::AuthProtocol::Md5,
        AuthProtocol::Sha1 => v3::AuthProtocol::Sha1,
        AuthProtocol::Sha224 => v3::AuthProtocol::Sha224,
        AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
        AuthProtocol::Sha384 => v3::AuthProtocol::Sha384,
        AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
    }
}

fn cipher(p: PrivProtocol) -> v3::Cipher {
    match p {
        PrivProtocol::Des => v3::Cipher::Des,
        PrivProtocol::Aes128 => v3::Cipher::Aes128,
        PrivProtocol::Aes192 => v3::Cipher::Aes192,
        PrivProtocol::Aes256 => v3::Cipher::Aes256,
    }
}

/// A reply's varbinds as owned values (snmp2's borrow the session's receive buffer).
fn owned_varbinds(pdu: snmp2::Pdu<'_>) -> Varbinds {
    pdu.varbinds
        .map(|(oid, val)| {
            let arcs: Vec<u64> = oid.iter().map(|i| i.collect()).unwrap_or_default();
            (arcs, Val::from_value(&val))
        })
        .collect()
}

/// Where a GetBulk walk over several columns stands; no I/O, so a reply's handling is testable
/// (and fuzzed) on its own.
struct WalkCursor {
    columns: &'static [&'static [u64]],
    /// Where each still-active column continues from.
    cursor: Vec<(usize, Vec<u64>)>,
    /// The next request still carries sysUpTime as a non-repeater.
    first: bool,
    sys_uptime: Option<u32>,
}

impl WalkCursor {
    fn new(columns: &'static [&'static [u64]], uptime: bool) -> WalkCursor {
        WalkCursor {
            columns,
            cursor: columns.iter().map(|c| c.to_vec()).enumerate().collect(),
            first: uptime,
            sys_uptime: None,
        }
    }

    fn is_done(&self) -> bool {
        self.cursor.is_empty()
    }

    fn request_oids(&self) -> Vec<&[u64]> {
        let mut oids: Vec<&[u64]> = Vec::with_capacity(self.cursor.len() + 1);
        if self.first {
            oids.push(SYS_UPTIME);
        }
        oids.extend(self.cursor.iter().map(|(_, o)| o.as_slice()));
        oids
    }

    fn non_repeaters(&self) -> u32 {
        u32::from(self.first)
    }

    /// Folds one reply into `rows`. A column ends when its OIDs leave it, stop increasing, or
    /// the agent says endOfMibView.
    fn absorb(&mut self, vbs: Varbinds, rows: &mut BTreeMap<u32, IfRow>) {
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
/// the walk's rows exactly as [`Client::poll`] does, and the rows become a [`Walk`]. For the
/// fuzz target (`fuzz/fuzz_targets/snmp_replies.rs`) and tests; returns `None` when a reply
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
