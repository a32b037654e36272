//! Each call's events and record (issue 7 §1, §2): the call room tells a
//! [`CallRecord`] what happens; it feeds the call's pure
//! [`CdrBuilder`] and hands the events that come out to the outbox writer
//! ([`Appender`]), in order.
//!
//! The record outlives the call's task: `call.ended` waits for the
//! after-call work of the agents who talked to the caller (the ACD tells
//! [`CallRecords::agent_state`] when they leave it) and for the recording.
//! If those never come, [`CallRecord::finish`] closes the record after
//! [`CallRecords::close_after`] with `complete: false`.
//!
//! A fact the builder refuses (a bug in the shell: hold with no agent …)
//! is logged once per call and kind and changes nothing; the call goes on.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tracing::{debug, warn};

use crate::events::appender::Appender;
use crate::events::builder::Emitted;
use crate::events::outbox::NewEvent;
use crate::events::{CallStart, CdrBuilder, EndCause, EventError, HangupParty, IdGenerator};

/// The open records of all calls; one per switch.
pub struct CallRecords {
    appender: Appender,
    ids: Arc<IdGenerator>,
    /// Records not yet emitted, by call id.
    open: DashMap<String, Arc<Mutex<CdrBuilder>>>,
    /// Agents whose after-call work a record waits for: agent → call id.
    acw: DashMap<String, String>,
    /// How long a record waits for after-call work and the recording once
    /// the caller has hung up.
    pub close_after: Duration,
    /// Serial numbers of this process: boot time + a counter.
    serials: std::sync::atomic::AtomicU64,
    /// Every event as it is stored, for live listeners (the CTI WebSocket).
    bus: EventBus,
}

/// Live events for listeners that may miss some (a slow WebSocket skips
/// ahead; the outbox is the durable copy).
pub type EventBus = tokio::sync::broadcast::Sender<Arc<crate::events::Event>>;

impl CallRecords {
    /// Records writing through `appender`.
    pub fn new(appender: Appender, close_after: Duration, bus: EventBus) -> CallRecords {
        let boot = crate::util::unix_now_ms().max(0) as u64;
        CallRecords {
            appender,
            ids: Arc::new(IdGenerator::new("hotline", boot.saturating_mul(1000))),
            open: DashMap::new(),
            acw: DashMap::new(),
            close_after,
            serials: std::sync::atomic::AtomicU64::new(0),
            bus,
        }
    }

    /// A live feed of the events stored from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<crate::events::Event>> {
        self.bus.subscribe()
    }

    /// The live feed's sender (agent state events join it).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The records of the calls in progress (the caller still on the
    /// line), as known now.
    pub fn live(&self) -> Vec<crate::events::Cdr> {
        let open: Vec<Arc<Mutex<CdrBuilder>>> =
            self.open.iter().map(|e| e.value().clone()).collect();
        open.iter()
            .filter_map(|b| {
                let b = b.lock().ok()?;
                b.is_live().then(|| b.snapshot())
            })
            .collect()
    }

    /// The records not yet stored: calls in progress and calls ended but
    /// waiting for after-call work or the recording, as known now (the
    /// forecast counts their callers among the arrivals).
    pub fn unfinished(&self) -> Vec<crate::events::Cdr> {
        let open: Vec<Arc<Mutex<CdrBuilder>>> =
            self.open.iter().map(|e| e.value().clone()).collect();
        open.iter()
            .filter_map(|b| {
                let b = b.lock().ok()?;
                (!b.is_closed()).then(|| b.snapshot())
            })
            .collect()
    }

    /// What the record of `call_id` knows now, if the call is open.
    pub fn peek<T>(&self, call_id: &str, f: impl FnOnce(&CdrBuilder) -> T) -> Option<T> {
        let b = self.open.get(call_id)?.clone();
        let guard = b.lock().ok()?;
        Some(f(&guard))
    }

    /// The writer (for flushing at shutdown).
    pub fn appender(&self) -> &Appender {
        &self.appender
    }

    /// Records still open (calls live or waiting for ACW / a recording).
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// A call serial number (呼叫流水号): local date and time to the
    /// second, then a per-process sequence, e.g. `20261123143005-000042`.
    pub fn next_serial(&self, utc_offset_minutes: i32) -> String {
        let unix = crate::util::unix_now();
        let n = self
            .serials
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let secs = (unix as i64 + i64::from(utc_offset_minutes) * 60).rem_euclid(86_400);
        let (y, m, d) = crate::util::local_date(unix, utc_offset_minutes);
        format!(
            "{y:04}{m:02}{d:02}{:02}{:02}{:02}-{n:06}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    /// A new call: its `call.started` goes out now.
    pub fn start(self: &Arc<Self>, start: CallStart) -> CallRecord {
        let call_id = start.call_id.clone();
        let ids: Arc<dyn crate::events::IdSource> = self.ids.clone();
        match CdrBuilder::started(ids, crate::util::unix_now_ms(), start) {
            Ok((builder, event)) => {
                self.store(vec![event]);
                let builder = Arc::new(Mutex::new(builder));
                self.open.insert(call_id.clone(), builder.clone());
                CallRecord {
                    records: Some(self.clone()),
                    call_id,
                    builder: Some(builder),
                    refused: Mutex::new(HashSet::new()),
                }
            }
            Err(e) => {
                warn!(error = %e, call = %call_id, "call record not started");
                CallRecord::disabled()
            }
        }
    }

    /// Close every record whose call is over (shutdown: the after-call
    /// work they wait for will not be reported any more).
    pub fn close_all(&self) {
        let open: Vec<(String, Arc<Mutex<CdrBuilder>>)> = self
            .open
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        for (call, b) in open {
            let out = match b.lock() {
                Ok(mut g) if !g.is_closed() => g.close(crate::util::unix_now_ms()),
                _ => continue,
            };
            if out.is_ok() {
                self.apply(&call, &b, "close", out, None);
            }
        }
    }

    /// The ACD changed an agent's state: leaving after-call work (to
    /// anything but after-call work) ends it for the call that waits.
    pub fn agent_state(&self, agent: &str, in_acw: bool) {
        if in_acw {
            return;
        }
        let Some((_, call)) = self.acw.remove(agent) else {
            return;
        };
        let Some(b) = self.open.get(&call).map(|b| b.clone()) else {
            return;
        };
        let out = match b.lock() {
            Ok(mut b) => b.acw_ended(crate::util::unix_now_ms(), agent),
            Err(_) => return,
        };
        self.apply(&call, &b, "acw ended", out, None);
    }

    fn store(&self, events: Vec<crate::events::Event>) {
        let mut rows = Vec::with_capacity(events.len());
        for e in events {
            match serde_json::to_string(&e) {
                Ok(body) => rows.push(NewEvent {
                    id: e.id.clone(),
                    call_id: e.call_id.clone(),
                    kind: e.kind().to_string(),
                    body_json: body,
                }),
                Err(err) => warn!(error = %err, id = %e.id, "event not serialisable"),
            }
            if self.bus.receiver_count() > 0 {
                let _ = self.bus.send(Arc::new(e));
            }
        }
        self.appender.send(rows);
    }

    /// Store what a fact emitted; drop the record once `call.ended` is out.
    fn apply(
        &self,
        call: &str,
        builder: &Mutex<CdrBuilder>,
        what: &'static str,
        out: Emitted,
        refused: Option<&Mutex<HashSet<&'static str>>>,
    ) {
        match out {
            Ok(events) => {
                if !events.is_empty() {
                    self.store(events);
                }
                if builder.lock().is_ok_and(|b| b.is_closed()) {
                    self.open.remove(call);
                    self.acw.retain(|_, c| c != call);
                }
            }
            Err(e) => refused_once(call, what, &e, refused),
        }
    }
}

fn refused_once(
    call: &str,
    what: &'static str,
    e: &EventError,
    refused: Option<&Mutex<HashSet<&'static str>>>,
) {
    let first = refused
        .and_then(|r| r.lock().ok().map(|mut r| r.insert(what)))
        .unwrap_or(true);
    if first {
        warn!(%call, fact = what, error = %e, "call record refused a fact");
    } else {
        debug!(%call, fact = what, error = %e, "call record refused a fact again");
    }
}

/// One call's record, held by its task. Without an outbox it does nothing.
pub struct CallRecord {
    records: Option<Arc<CallRecords>>,
    call_id: String,
    builder: Option<Arc<Mutex<CdrBuilder>>>,
    refused: Mutex<HashSet<&'static str>>,
}

impl CallRecord {
    /// A record that records nothing (events off).
    pub fn disabled() -> CallRecord {
        CallRecord {
            records: None,
            call_id: String::new(),
            builder: None,
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// Tell the builder a fact that emits events (`what` names it in logs).
    pub fn fact(&self, what: &'static str, f: impl FnOnce(&mut CdrBuilder, i64) -> Emitted) {
        let (Some(records), Some(b)) = (&self.records, &self.builder) else {
            return;
        };
        let out = match b.lock() {
            Ok(mut guard) => f(&mut guard, crate::util::unix_now_ms()),
            Err(_) => return,
        };
        records.apply(&self.call_id, b, what, out, Some(&self.refused));
    }

    /// Tell the builder a fact that emits nothing.
    pub fn note(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut CdrBuilder) -> Result<(), EventError>,
    ) {
        let Some(b) = &self.builder else { return };
        let res = match b.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(_) => return,
        };
        if let Err(e) = res {
            refused_once(&self.call_id, what, &e, Some(&self.refused));
        }
    }

    /// The caller's leg ended, hung up by `by`; nothing if an earlier
    /// fact already ended it.
    pub fn ended(&self, by: HangupParty, cause: EndCause) {
        if self.is_live() {
            self.fact("ended", |b, t| b.ended(t, by, cause));
        }
    }

    /// Hotline ended the call (`reason`, with the SIP status sent to the
    /// caller if it was refused; `fault`: a system fault, counted as call
    /// loss before an answer).
    pub fn end_by_system(&self, reason: &str, sip_code: Option<u16>, fault: bool) {
        let cause = EndCause {
            sip_code,
            reason: Some(reason.to_string()),
            fault,
        };
        self.ended(HangupParty::System, cause);
    }

    /// Whether the caller is still on the line, as far as the record knows.
    pub fn is_live(&self) -> bool {
        self.builder
            .as_ref()
            .is_some_and(|b| b.lock().is_ok_and(|b| b.is_live()))
    }

    /// `agent` (an ACD agent) was released from this call: the record waits
    /// for the ACD to say their after-call work is over.
    pub fn await_acw(&self, agent: &str) {
        if let Some(r) = &self.records {
            r.acw.insert(agent.to_string(), self.call_id.clone());
        }
    }

    /// `agent` was released and has no after-call work in the ACD (a
    /// direct call to a phone): the record does not wait for it.
    pub fn no_acw(&self, agent: &str) {
        let agent = agent.to_string();
        self.fact("acw ended", move |b, now| b.acw_ended(now, &agent));
    }

    /// The call's task is done. If the record is still open, close it
    /// after the grace period (an incomplete `call.ended`).
    pub fn finish(self) {
        let (Some(records), Some(b)) = (self.records, self.builder) else {
            return;
        };
        if b.lock().is_ok_and(|b| b.is_closed()) {
            return;
        }
        let call = self.call_id;
        tokio::spawn(async move {
            tokio::time::sleep(records.close_after).await;
            let out = match b.lock() {
                Ok(mut g) if !g.is_closed() => g.close(crate::util::unix_now_ms()),
                _ => return,
            };
            warn!(%call, "call record closed incomplete (after-call work or recording never ended)");
            records.apply(&call, &b, "close", out, None);
        });
    }
}
