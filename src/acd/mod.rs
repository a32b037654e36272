//! Automatic call distribution (ACD, 话务智能分配), REQUIREMENTS §3 "Queues
//! and agents" and the answer-rate KPIs of §8.
//!
//! A pure, sans-IO core (DESIGN.md "Rooms": `acd`, virtual time): the call
//! room feeds it [`Input`]s with the time as a [`crate::time::Time`] (the
//! pure cores' one time type; the shell runs it on Unix time), drains [`Output`]s (offers to ring, cancellations,
//! announcements, overflow and timeout orders, agent and queue events), and
//! sleeps until [`Engine::poll_timeout`]. Files:
//! - [`model`]: configuration, states, inputs, outputs, views;
//! - `queue`: queue order (the emergency lane, consultations, ordinary
//!   callers: [`EMERGENCY_PRIORITY_MIN`]), priority boosts;
//! - `strategy`: choosing among idle agents;
//! - [`engine`]: the state machine (its state and public surface; inputs,
//!   agents' states, queue entries, offers, timers and views in files of
//!   their own under `engine/`);
//! - `engine/reconfigure`: [`Engine::reconfigure`], applying a new
//!   [`AcdConfig`] (agents and skill groups added, changed, deleted) while
//!   calls are up, without losing live state;
//! - [`stats`]: live counters and the 20 s / 30 s answer rates;
//! - [`day`]: the centre's working day (local midnight) the counters reset at;
//! - [`durable`]: what outlives a restart: the changes the shell keeps
//!   ([`Engine::take_changes`]) and the [`Snapshot`] a fresh engine is
//!   seeded from ([`Engine::restore`]); `engine/durable` applies them;
//! - [`campaign`]: follow-up campaigns' pure scheduler (issue 18 §3 回访:
//!   which items are dialled now, redials, due times, expiry);
//! - `bench`: a large fixture for benchmarks.

mod bench;
pub mod campaign;
pub mod day;
pub mod durable;
pub mod engine;
mod error;
pub mod model;
mod queue;
pub mod stats;
mod strategy;

#[cfg(test)]
mod consult_tests;
#[cfg(test)]
mod reconfigure_tests;
#[cfg(test)]
mod restore_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use bench::{bench_fixture, bench_step};
pub use durable::{AgentRecord, CallbackRecord, Change, GroupRecord, ServiceRecord, Snapshot};
pub use engine::{Engine, DEFAULT_HANDLE_TIME};
pub use error::AcdError;
pub use model::{
    AcdConfig, AgentConfig, AgentId, AgentState, AgentView, CallId, CallPhase, CallView,
    CallbackPolicy, CancelReason, GroupConfig, GroupId, Input, Lane, MissedCall, MissedWhere,
    NextStep, OfferKind, Output, OverflowReason, PreviousServiceConfig, QueueEntryView, QueueEvent,
    QueueEventKind, Reconfigured, Strategy, TimeoutReason, CONSULT_PRIORITY, EMERGENCY_PRIORITY,
    EMERGENCY_PRIORITY_MIN, ORDINARY_PRIORITY_MAX, REASON_BUSY, REASON_NO_ANSWER,
    REASON_UNREACHABLE,
};
pub use stats::{AgentCounters, AgentStats, GroupCounters, GroupStats, ServiceLevel, Stats};
