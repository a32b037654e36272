//! Call events and call records for the ticket platform (issue 7 §1;
//! REQUIREMENTS.md §6 "events to the ticket platform", §8 KPIs).
//!
//! This is the pure event model: no clock, no I/O. The shell tells a
//! [`builder::CdrBuilder`] (one per call) and an [`agent::AgentEvents`] what
//! happened and stores the [`model::Event`]s they return in the outbox.
//!
//! - [`model`]: the envelope and the data of every event kind;
//! - [`cdr`]: the call record, `call.ended`'s data;
//! - [`parts`]: the values both name (direction, area, transfer, recording);
//! - [`builder`]: facts of a call → events and the record;
//! - [`agent`]: `agent.state` events;
//! - [`time`]: RFC 3339 timestamps; [`id`]: event ids; [`mask`]: masking
//!   confidential numbers;
//! - [`schema`]: the JSON Schemas published in `docs/events/`.
//!
//! Delivery (issue 7 §2, §3):
//! - [`outbox`]: the durable SQLite outbox — append, per-sink delivery state,
//!   per-call ordering, backoff, dead letters and replay;
//! - [`backoff`]: the retry policy (exponential backoff with full jitter), pure;
//! - [`ordering`]: the per-call ordering rule, pure (the specification the
//!   outbox's SQL is tested against);
//! - [`signature`]: the webhook HMAC-SHA256 signature, sign and verify;
//! - [`webhook`]: the HTTP POST sink (a shell);
//! - [`jsonl`]: the rotated JSON-lines file sink (a shell);
//! - `nats`: the NATS JetStream sink (a shell; cargo feature `nats`);
//! - [`appender`]: the outbox's group-commit writer thread;
//! - [`replay`]: closing the records of calls a crash cut off.
//!
//! The call room owns a `CdrBuilder` per call (`call::record`); the switch
//! turns the ACD's agent state changes into `agent.state` events.

pub mod agent;
pub mod appender;
pub mod backoff;
pub mod builder;
pub mod cdr;
pub mod error;
pub mod id;
pub mod jsonl;
pub mod mask;
pub mod model;
#[cfg(feature = "nats")]
pub mod nats;
pub mod ordering;
pub mod outbox;
pub mod parts;
pub mod replay;
pub mod schema;
pub mod signature;
pub mod time;
pub mod webhook;

#[cfg(test)]
mod builder_order_tests;
#[cfg(test)]
mod builder_tests;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod schema_tests;

pub use builder::{CallStart, CdrBuilder, EndCause};
pub use cdr::{Cdr, HangupParty, LegQuality, Outcome};
pub use error::EventError;
pub use id::{IdGenerator, IdSource};
pub use model::{Event, EventData, SCHEMA_VERSION};
pub use time::Timestamp;
