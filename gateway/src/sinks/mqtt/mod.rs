//! MQTT publishing from the durable outbox.
//!
//! rumqttc keeps unacknowledged publishes in memory and drops them when the broker answers
//! `session_present = false`; requests still in its channel when a connection drops are sent
//! on the next connection, and its `publish()` blocks when that channel is full. So we do not
//! trust it with delivery: alerts live in the sled outbox ([`super::store`]) until their PUBACK,
//! and every connection gets a fresh client and event loop (nothing of an old session can be
//! sent, or acknowledged, on a new one).
//!
//! [`Outflow`] ([`outflow`]) is the I/O-free bookkeeping: which outbox entries are in flight
//! under which packet id, which acknowledged ones are held. The loop in [`run`] ([`session`])
//! drives one connection at a time and feeds it events:
//! - `ConnAck`: the retained `online` status is published, then the outbox from its start,
//!   in order (so after a reconnect or a restart everything unacknowledged goes out again, with
//!   its original alert id; subscribers de-duplicate by id).
//! - `Outgoing::Publish(pkid)`: rumqttc assigned `pkid` to the oldest request we queued.
//! - `PubAck(pkid)`: that entry is *held*: it stays in the outbox until the connection has
//!   stayed up for `mqtt.ack_hold_secs` (default 5 s) after the PUBACK, and only then leaves it.
//!   A broker may acknowledge a QoS 1 publish before it has saved or forwarded it (mosquitto
//!   does: docs/delivery.md), so a broker crash right after a PUBACK would lose the alert; a
//!   held entry is sent again on the next connection instead (subscribers de-duplicate by id).
//!   A clean shutdown releases what is held.
//! - an error: the connection's client and event loop are dropped; after a back-off (0.25 s
//!   doubling to 5 s) a new connection starts.
//!
//! At most [`WINDOW`] entries are in flight, below rumqttc's channel and inflight limits, so
//! `try_publish` never finds the channel full and memory waiting for PUBACKs stays bounded.
//!
//! TLS (`mqtts://`) uses rustls with the CA file of `mqtt.ca_file` (and optionally a client
//! certificate); the password comes from `mqtt.password_file` or `NETWARDEN_MQTT_PASSWORD` and
//! is never logged (see [`Secret`]).
//!
//! One job per file: [`config`] (the `[mqtt]` section, topics), [`outflow`] (the state machine),
//! [`session`] (rumqttc client and event loop, back-off, TLS options, status and Last Will),
//! [`fleet`] (the fleet model subscription and the retained model state, docs/fleet.md),
//! [`samples`] and [`samples_serve`] (feature samples for the central side, over the fleet
//! client's connection).

pub mod config;
pub mod fleet;
pub mod outflow;
pub mod samples;
pub mod samples_serve;
pub mod session;

pub use config::{MqttConfig, RawMqtt, Secret, TlsFiles};
pub use outflow::{Outflow, Queued, WINDOW};
pub use session::{explain, run};
