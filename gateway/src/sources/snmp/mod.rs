//! SNMP interface polling: IF-MIB octet counters of routers and switches, turned into one
//! [`RateSample`](crate::records::RateSample) per interface per poll step.
//!
//! ```text
//!  [[snmp.targets]] ──► poller task per target (jittered start, every interval)
//!                        client.rs: GetBulk requests, timeout + retries, session rebuild,
//!                                   SNMPv3 re-discovery
//!                        walk.rs:   replies folded into interface rows
//!                        state.rs:  ifIndex ⇄ name, renumbering, selection
//!                        counter.rs: wrap / reset / gap rules → bits per second or unknown
//!                      ──try_send──► bounded queue (full: dropped, counted) ──► series thread
//!                                    (runtime/series.rs): series pipeline, then sled
//! ```
//!
//! - [`config`]: the `[snmp]` section (targets, interfaces, timing); [`credentials`]: the v2c
//!   community or v3 USM user, from the config or secret files.
//! - [`counter`]: pure counter arithmetic with a caller-supplied clock.
//! - [`state`]: one target's interface table between polls (pure, fake-clock tested).
//! - [`walk`]: the GetBulk walk of a poll, reply by reply (pure, fuzzed).
//! - [`client`]: snmp2 0.5 requests made robust (it has no timeouts or retries of its own).
//! - [`poller`]: the async loop per target and the per-target status in `stats.json`.
//!
//! Invariant: a step whose counters cannot be trusted (agent restart, 64-bit counter going
//! down, renumbering, failed or late poll) is reported as unknown (`None`), never guessed.

pub mod client;
pub mod config;
pub mod counter;
pub mod credentials;
pub mod poller;
pub mod state;
pub mod walk;

pub use client::{Client, PollError};
pub use config::{RawSnmp, SnmpConfig, TargetConfig};
pub use poller::run_target;
pub use state::{IfRow, TargetState, Walk};
