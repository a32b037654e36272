//! Workforce forecast (issue 19; REQUIREMENTS §8 "20 s answer rate ≥ 90 %,
//! 30 s ≥ 95 %", §7 wall-board): how many ready agents each skill group
//! needs in the next half hour, and the answer rate the agents signed in
//! now can expect.
//!
//! A pure core (time as [`crate::time::Time`], no clock, no IO):
//! - [`erlang`]: Erlang B (recursion), Erlang C and Erlang A (abandonment,
//!   a birth–death chain), the §8 answer rate, the fewest agents meeting
//!   the targets;
//! - [`smoothing`]: arrivals per interval, exponential smoothing, past
//!   weeks as the prior;
//! - [`group`]: one group's forecast from its calls and agents;
//! - [`records`]: call records ([`crate::events::cdr::Cdr`]) as the
//!   forecast's observations, and the chart's intervals counted by the
//!   report's definitions;
//! - [`day`]: a simulated 12345 day at 140 seats (the ACD engine in
//!   virtual time, calls recorded by the real record builder), each half
//!   hour's forecast made from the past only and compared with the 20 s
//!   rate measured (`hotline forecast-day`, BENCHMARKS.md).
//!
//! Where people see it: `GET /api/v1/forecast`, the wall-board and the
//! `hotline_forecast_*` gauges of `/metrics` (`api::forecast`).

pub mod day;
pub mod erlang;
pub mod group;
pub mod records;
pub mod smoothing;

pub use group::{forecast, Forecast, Inputs, ModelFigures, Observation, PastWeek, Seen, Settings};

/// Past weeks the prior looks back over.
pub const PRIOR_WEEKS: u32 = 4;
