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

//!
//! What a reply means for the walk (which rows, where each column continues) is decided in
//! [`super::walk`], without I/O; this file does the requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use snmp2::{v3, AsyncSession, Oid};

use super::config::TargetConfig;
use super::credentials::{AuthProtocol, Credentials, PrivProtocol};
use super::state::{IfRow, Walk};
use super::walk::{
    owned_varbinds, Varbinds, WalkCursor, COUNTER32_COLUMNS, HC_COLUMNS, MAX_WALK_REQUESTS,
};
use crate::metrics::Metrics;

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
