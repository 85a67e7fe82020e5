//! Sources: where flow records come from. Each turns its input into
//! [`netwarden_firmware::FlowRecord`]s plus counters of everything it could not use.

pub mod netflow;
