//! `GET /metrics`: the node's figures in Prometheus's text exposition
//! format (issue 15 §4, docs/ha.md §6), for every node of a cluster alike:
//! calls (in progress, started — its rate is the CPS —, answered,
//! unanswered), SIP dialogs and transactions, registrations, RTP port pairs
//! and media sessions, each skill group's waiting callers and longest wait,
//! agents by state, the RTP loss and jitter of relayed legs (histograms),
//! live audio forks (running, frames sent and dropped, reconnects,
//! results), the events outbox's backlog and dead letters per sink, the store's
//! latency (histogram), whether this node is ready, and each group's
//! agent forecast for the next half hour (issue 19: agents needed under
//! Erlang A and C, ready now, arrivals expected, the 20 s rate expected
//! with the agents signed in; `api::forecast`).
//!
//! Values are read when scraped (a fresh registry per scrape, encoded by
//! the Prometheus project's `prometheus-client`), so nothing here sits on
//! a call's path. No personal data: numbers, group ids and sink names only.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::listener::SwitchView;
use crate::acd::AgentState;

type Labels = Vec<(String, String)>;

/// Prometheus's content type for the text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn gauge(v: impl TryInto<i64>) -> ConstGauge {
    ConstGauge::new(v.try_into().unwrap_or(i64::MAX))
}

fn counter(v: u64) -> ConstCounter {
    ConstCounter::new(v)
}

fn label(name: &str, value: impl Into<String>) -> Labels {
    vec![(name.to_string(), value.into())]
}

/// An agent state's name as the API spells it (`not_ready` …).
fn state_name(s: AgentState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| s.to_string())
}

pub(super) async fn metrics(State(s): State<SwitchView>) -> impl IntoResponse {
    let mut r = Registry::with_prefix("hotline");
    calls_and_sip(&mut r, &s);
    if let Some(queues) = &s.queues {
        if let Some(stats) = queues.snapshot().await {
            acd(&mut r, &stats);
        }
    }
    if let Some(sources) = &s.forecast {
        if let Ok(groups) = super::forecast::compute(sources, crate::util::now(), |_| true).await {
            forecast(&mut r, &groups);
        }
    }
    media(&mut r);
    let blocking = {
        let outbox = s.outbox.clone();
        let readiness = s.readiness.clone();
        tokio::task::spawn_blocking(move || {
            let sinks = outbox.stats(crate::util::unix_now_ms()).ok();
            let ready = readiness.checks().iter().all(|(_, c)| c.is_ok());
            (sinks, ready)
        })
        .await
    };
    let (sinks, ready) = blocking.unwrap_or((None, false));
    if let Some(sinks) = sinks {
        outbox(&mut r, &sinks);
    }
    r.register(
        "ready",
        "1 when this node takes new work (not draining, its store answering), as /readyz",
        gauge(i64::from(ready)),
    );
    if s.cluster.shared() {
        if let Some(peers) = s.cluster.peers() {
            r.register(
                "cluster_peers",
                "Other nodes sharing the store that beat within the dead time",
                gauge(peers),
            );
        }
        r.register(
            "store_following",
            "1 while this node hears the other nodes' registration, roster and block-list changes",
            gauge(i64::from(s.cluster.following())),
        );
        if let Some(leading) = s.cluster.acd_leader() {
            r.register(
                "acd_leader",
                "1 while this node leads the nodes' one ACD (holds the store's lease)",
                gauge(i64::from(leading.is_some())),
            );
            r.register(
                "acd_lease_epoch",
                "The ACD lease's epoch while this node leads (raised at each change of leader); 0 otherwise",
                gauge(leading.unwrap_or(0)),
            );
        }
    }
    r.register(
        "store_latency_seconds",
        "How long the store's calls take, queueing included",
        crate::store::latency::histogram().clone(),
    );
    let mut text = String::new();
    match encode(&mut text, &r) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics could not be encoded: {e}"),
        )
            .into_response(),
    }
}

fn calls_and_sip(r: &mut Registry, s: &SwitchView) {
    let c = &s.counters;
    r.register(
        "calls_active",
        "Calls in progress",
        gauge(c.active.load(Ordering::Relaxed)),
    );
    r.register(
        "calls_started",
        "Calls started (rate() of it is the calls per second)",
        counter(c.started.load(Ordering::Relaxed)),
    );
    r.register(
        "calls_answered",
        "Calls an agent answered",
        counter(c.answered.load(Ordering::Relaxed)),
    );
    r.register(
        "calls_unanswered",
        "Calls that ended without an agent's answer",
        counter(c.unanswered.load(Ordering::Relaxed)),
    );
    r.register(
        "ivr_lookups",
        "Requests of IVR http nodes",
        counter(c.ivr_lookups.load(Ordering::Relaxed)),
    );
    r.register(
        "ivr_lookup_failures",
        "IVR http requests that failed (timeout, no answer, 5xx)",
        counter(c.ivr_lookup_failures.load(Ordering::Relaxed)),
    );
    r.register("sip_dialogs", "SIP dialogs", gauge(s.stack.dialog_count()));
    r.register(
        "sip_transactions",
        "SIP transactions running",
        gauge(s.stack.transaction_count()),
    );
    let gate = s.stack.gate_counts();
    r.register(
        "sip_refused",
        "Requests refused at the ingress gate",
        counter(gate.refused),
    );
    r.register(
        "sip_malformed_dropped",
        "Malformed messages dropped",
        counter(gate.malformed_dropped),
    );
    r.register(
        "registrations",
        "Agents' live registrations (bindings)",
        gauge(s.registrations.count()),
    );
    r.register(
        "rtp_port_pairs_in_use",
        "RTP port pairs in use",
        gauge(s.ports.in_use()),
    );
    r.register(
        "media_sessions",
        "Calls' media sessions on the media workers",
        gauge(crate::media::session::running()),
    );
    let f = crate::media::fork::stats();
    r.register(
        "audio_forks_active",
        "Live audio forks running (issue 18 §1)",
        gauge(f.active),
    );
    r.register(
        "audio_fork_frames_sent",
        "Audio-fork frames sent to receivers",
        counter(f.frames_sent),
    );
    r.register(
        "audio_fork_frames_dropped",
        "Audio-fork frames dropped (receiver slow or gone)",
        counter(f.frames_dropped),
    );
    r.register(
        "audio_fork_reconnects",
        "Audio-fork reconnection attempts",
        counter(f.reconnects),
    );
    r.register(
        "audio_fork_results",
        "Results audio-fork receivers sent back",
        counter(f.results),
    );
    r.register(
        "uptime_seconds",
        "Seconds since the process started",
        gauge(s.started.elapsed().as_secs()),
    );
}

fn acd(r: &mut Registry, stats: &crate::acd::Stats) {
    let waiting = Family::<Labels, Gauge>::default();
    let longest = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let callbacks = Family::<Labels, Gauge>::default();
    let members = Family::<Labels, Gauge>::default();
    for g in &stats.groups {
        let l = label("group", g.group.clone());
        waiting
            .get_or_create(&l)
            .set(i64::try_from(g.calls_waiting).unwrap_or(i64::MAX));
        longest
            .get_or_create(&l)
            .set(g.longest_wait.map_or(0.0, |d| d.as_secs_f64()));
        callbacks
            .get_or_create(&l)
            .set(i64::try_from(g.callbacks_pending).unwrap_or(i64::MAX));
        for (state, n) in &g.agents_by_state {
            let mut l = l.clone();
            l.push(("state".into(), state_name(*state)));
            members
                .get_or_create(&l)
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }
    let agents = Family::<Labels, Gauge>::default();
    for state in AgentState::ALL {
        let n = stats.agents.iter().filter(|a| a.state == state).count();
        agents
            .get_or_create(&label("state", state_name(state)))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    r.register(
        "queue_calls_waiting",
        "Callers waiting in a skill group's queue",
        waiting,
    );
    r.register(
        "queue_longest_wait_seconds",
        "The longest wait of a caller now in the group's queue",
        longest,
    );
    r.register(
        "queue_callbacks_pending",
        "Callbacks not yet answered or given up, per group",
        callbacks,
    );
    r.register("group_agents", "A group's members by state", members);
    r.register("agents", "Agents by state", agents);
}

fn forecast(r: &mut Registry, groups: &[super::forecast::GroupForecast]) {
    type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;
    let needed = Family::<Labels, Gauge>::default();
    let ready = Family::<Labels, Gauge>::default();
    let arrivals = Family::<Labels, F64Gauge>::default();
    let rate = Family::<Labels, F64Gauge>::default();
    for g in groups {
        let f = &g.forecast;
        let l = label("group", g.group.clone());
        for (model, m) in [("erlang_a", &f.erlang_a), ("erlang_c", &f.erlang_c)] {
            let mut l = l.clone();
            l.push(("model".into(), model.into()));
            // More than the search's ceiling shows as that ceiling.
            needed.get_or_create(&l).set(i64::from(
                m.needed.unwrap_or(crate::forecast::erlang::MAX_AGENTS),
            ));
            rate.get_or_create(&l).set(m.rate_20s_signed_in);
        }
        ready.get_or_create(&l).set(i64::from(f.ready));
        arrivals.get_or_create(&l).set(f.arrivals_per_hour);
    }
    r.register(
        "forecast_agents_needed",
        "Ready agents the next 30 minutes need for 90 % within 20 s and 95 % within 30 s, per group and model",
        needed,
    );
    r.register(
        "forecast_agents_ready",
        "A group's members ready for calls now (idle, ringing, talking, holding, after-call work)",
        ready,
    );
    r.register(
        "forecast_arrivals_per_hour",
        "Callers per hour a group expects over the next 30 minutes",
        arrivals,
    );
    r.register(
        "forecast_answer_rate_20s",
        "The 20 s answer rate expected with the agents signed in now, per group and model",
        rate,
    );
}

fn media(r: &mut Registry) {
    let legs = crate::media::relay::histograms::leg_histograms();
    r.register(
        "rtp_leg_loss_fraction",
        "Fraction of RTP packets lost on the way in, per relayed leg",
        legs.loss_fraction.clone(),
    );
    r.register(
        "rtp_leg_jitter_milliseconds",
        "Interarrival jitter at a relayed leg's end (RFC 3550 6.4.1)",
        legs.jitter_ms.clone(),
    );
}

fn outbox(r: &mut Registry, sinks: &[crate::events::outbox::SinkStats]) {
    let backlog = Family::<Labels, Gauge>::default();
    let dead = Family::<Labels, Gauge>::default();
    let delivered = Family::<Labels, prometheus_client::metrics::counter::Counter>::default();
    for s in sinks {
        let l = label("sink", s.sink.clone());
        backlog
            .get_or_create(&l)
            .set(i64::try_from(s.pending + s.in_backoff + s.in_flight).unwrap_or(i64::MAX));
        dead.get_or_create(&l)
            .set(i64::try_from(s.dead).unwrap_or(i64::MAX));
        delivered.get_or_create(&l).inc_by(s.delivered);
    }
    r.register(
        "outbox_backlog",
        "Events not yet delivered to a sink (due, backing off or in flight)",
        backlog,
    );
    r.register("outbox_dead_letters", "Events a sink gave up on", dead);
    r.register("outbox_delivered", "Events delivered to a sink", delivered);
}
