//! # hotline
//!
//! The telephony engine of a 12345 government-service hotline: a SIP B2BUA
//! that terminates carrier trunks, rings agents' soft-phones, anchors the
//! media and tells the ticket platform everything that happened.
//!
//! Rooms (see `ARCHITECTURE.md`):
//! - [`config`]: `hotline.toml`, validated with file/line/key in errors;
//! - [`sip`]: the SIP stack (rsipstack, wrapped), registrar, digest auth, trunks;
//! - [`media`]: SDP offer/answer, RTP port pool, the RTP relay;
//! - [`ivr`]: IVR flows (validation, pure interpreter), calendars, areas, block list;
//! - [`acd`]: skill groups, agent states, queues and offers (pure);
//! - [`roster`]: the agents and skill groups in force;
//! - [`call`]: one task per call, the only room that knows all the others;
//! - [`events`]: call events and records, the durable outbox and its sinks
//!   (webhook with HMAC signature, JSONL, NATS), started by `switch::events`;
//! - [`records`]: stored call records, KPI reports, retention;
//! - [`forecast`]: agents needed per skill group in the next half hour
//!   (Erlang C and A, smoothed arrivals; pure) and its simulated check day;
//! - [`auth`]: API users, roles, tenants, sessions, the audit log;
//! - [`api`]: the `/api/v1` endpoints (records, CTI, admin, live events);
//! - [`store`]: SQLite persistence;
//! - [`switch`]: admission, routing, registrations, reloads: the telephony shell;
//! - [`app`]: the composition root of `hotline serve`: starts the switch and
//!   wires the HTTP API to it (the one room importing both);
//! - [`time`]: the one time type of the pure cores ([`time::Time`], Unix
//!   milliseconds) and the one civil-date module ([`time::civil`]);
//! - [`util`]: the shells' clock, `Live<T>`, RSS;
//! - [`phone`]: a scripted SIP phone for tests and people (`hotline dial`, `hotline phone`).
//!
//! `sip` and `media` never import each other or `call`.
#![forbid(unsafe_code)]

pub mod acd;
pub mod api;
pub mod app;
pub mod auth;
pub mod call;
pub mod config;
pub mod events;
pub mod forecast;
pub mod ivr;
pub mod media;
pub mod phone;
pub mod records;
pub mod roster;
pub mod sip;
pub mod store;
pub mod switch;
pub mod time;
pub mod util;
