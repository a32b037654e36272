//! The IVR room (IVR issue): admin-written call flows (`ivr-flows/*.toml`),
//! their validation, a pure interpreter and a graph renderer, plus the
//! tables the flows consult: working-hour calendars with Chinese public
//! holidays and adjusted working days, the caller-area prefix table and the
//! block list. Everything here is pure (files are read only by path, time
//! is passed in); `call` drives the interpreter and `switch` loads and
//! hot-reloads the files.
//!
//! - [`flow`]: the flow model and file format (documented there);
//! - [`parse`]: TOML text → [`Flow`], every problem at once;
//! - [`error`]: [`FlowError`] and the messages admins read;
//! - [`validate`](mod@validate): cross-checks over a set of flows, [`FlowSet`];
//! - [`interpreter`]: the per-call state machine (no I/O, no clock);
//! - [`graph`]: Graphviz DOT and Mermaid output;
//! - [`diff`]: two versions of a flow as a unified line diff (flow history);
//! - [`replay`]: recorded calls walked again through an edited flow, and
//!   which of them would now end elsewhere (flow history);
//! - civil dates, weekdays and local time at a fixed UTC offset are the
//!   crate's one civil-date module, [`crate::time::civil`];
//! - [`hours`]: `"HH:MM-HH:MM"` opening ranges within a day;
//! - [`holidays`]: public-holiday calendars with adjusted working days (调休);
//! - [`calendar`]: working-hour schedules and the loaded set of them;
//! - [`calendar_error`]: the errors of schedule and holiday files;
//! - [`coverage`]: holiday calendars that have run out (a year not listed);
//! - [`tomlfile`]: reading those TOML files with file/line in every error;
//! - [`number`]: caller-number normalisation shared by `area` and `blacklist`;
//! - [`area`]: caller number → administrative area, by longest prefix;
//! - [`blacklist`]: the in-memory block list consulted by the `blacklist` node;
//! - [`lookup`]: the `http` node's model, request and answer (IVR lookups);
//! - [`say`]: figures read aloud in Mandarin for the `say` node.

pub mod area;
pub mod blacklist;
pub mod calendar;
pub mod calendar_error;
pub mod coverage;
pub mod diff;
pub mod error;
pub mod flow;
pub mod graph;
pub mod holidays;
pub mod hours;
pub mod interpreter;
pub mod lookup;
pub mod number;
pub mod parse;
pub mod replay;
pub mod say;
pub mod tomlfile;
pub mod validate;

#[cfg(test)]
mod lookup_tests;
#[cfg(test)]
pub(crate) mod testkit;

pub use error::{FlowError, Problem};
pub use flow::{Flow, Node, NodeKind, TransferTarget};
pub use graph::{to_dot, to_mermaid};
pub use interpreter::{
    Action, CallFacts, Environment, Event, HangupReason, Interpreter, InterpreterError,
    QueueOutcome, TimerId,
};
pub use lookup::{HttpMethod, HttpOutcome, HttpRequest};
pub use validate::{validate, Catalog, FlowSet};
